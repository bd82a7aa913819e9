"""git's "racy" rule has one window in the store (fsutil.RACY_NS): each user of a stamp trusts
one taken just outside the window and distrusts one taken just inside it."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest

from singkit.fsutil import RACY_NS
from singkit.statcache import KEY, StatCache, _key
from singkit.store import Store, speccache

MARGIN_NS = 500_000_000  # far more than the test takes between setting a time and asking


def _changed(path: Path, ago_ns: int) -> None:
    when = time.time_ns() - ago_ns
    os.utime(path, ns=(when, when))


@pytest.mark.parametrize("ago_ns, trusted", [(RACY_NS - MARGIN_NS, False), (RACY_NS + MARGIN_NS, True)])
def test_a_job_yaml_is_kept_only_outside_the_window(tmp_path: Path, ago_ns: int, trusted: bool) -> None:
    spec = tmp_path / "job.yaml"
    spec.write_text("job: job1\n")
    _changed(spec, ago_ns)
    stamp = speccache.stamp(spec)
    assert stamp is not None and speccache.settled(stamp) is trusted
    assert (speccache.row("job1", stamp, stamp, {"job": "job1"}) is not None) is trusted


@pytest.mark.parametrize("ago_ns, trusted", [(RACY_NS - MARGIN_NS, False), (RACY_NS + MARGIN_NS, True)])
def test_jobs_folder_mtime_is_trusted_only_outside_the_window(tmp_path: Path, ago_ns: int, trusted: bool) -> None:
    store = Store(tmp_path / ".singkit")
    store.jobs_dir.mkdir(parents=True)
    _changed(store.jobs_dir, ago_ns)
    assert (store._jobs_stamp() is not None) is trusted


@pytest.mark.parametrize("ago_ns, trusted", [(RACY_NS - MARGIN_NS, False), (RACY_NS + MARGIN_NS, True)])
def test_a_snapshot_hash_is_reused_only_outside_the_window(tmp_path: Path, ago_ns: int, trusted: bool) -> None:
    code = tmp_path / "train.py"
    code.write_text("print(1)\n")
    recorded = time.time_ns()  # the moment the hash was recorded (the cache's stamp)
    when = recorded - ago_ns
    os.utime(code, ns=(when, when))
    st = os.stat(code)
    sha = hashlib.sha256(code.read_bytes()).hexdigest()
    cache = StatCache(None, tmp_path, {"train.py": 0}, _key(st) + bytes.fromhex(sha), stamp_ns=recorded)
    assert len(_key(st)) == KEY.size
    assert cache.lookup({"train.py": st}) == ({"train.py": sha} if trusted else {})
