"""open_stored, as the cold listing uses it for every run.log (issue 15): the folders on the way
are looked at in plain strings and the file itself is left to O_NOFOLLOW; what it refuses, and
what it says when it does, is what the look at every part said before."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from singkit.store import runlog
from singkit.store.safe import NotAFile, StoreLink, link_in_job, open_stored


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    folder = tmp_path / ".singkit/jobs/job1/runs/job1.1"
    folder.mkdir(parents=True)
    (folder / "run.log").write_text('{"event": "status", "status": "running"}\n')
    return folder


def test_a_plain_run_log_is_read(run_dir: Path) -> None:
    with open_stored(run_dir / "run.log") as fh:
        assert fh.read().startswith(b"{")
    assert runlog.state(run_dir / "run.log").status == "running"


def test_a_run_log_that_is_a_link_is_refused_naming_it_and_its_target(run_dir: Path, tmp_path: Path) -> None:
    outside = tmp_path / "secret.log"
    outside.write_text('{"event": "status", "status": "completed"}\n')
    log = run_dir / "run.log"
    log.unlink()
    log.symlink_to(outside)
    with pytest.raises(StoreLink) as caught:
        open_stored(log)
    assert caught.value.filename == str(log) and repr(str(outside)) in caught.value.strerror
    assert runlog.state(log).status == "queued"  # read as missing, never followed


@pytest.mark.parametrize("linked", ["job1.1", "runs", "job1"])
def test_a_folder_on_the_way_that_is_a_link_is_refused_naming_it(run_dir: Path, tmp_path: Path, linked: str) -> None:
    folder = next(p for p in [run_dir, *run_dir.parents] if p.name == linked)
    real = tmp_path / f"real-{linked}"
    folder.rename(real)
    folder.symlink_to(real)
    log = run_dir / "run.log"
    with pytest.raises(StoreLink) as caught:
        open_stored(log)
    assert caught.value.filename == str(folder) == link_in_job(log)


def test_a_run_log_that_is_a_fifo_or_a_folder_is_no_file(run_dir: Path) -> None:
    log = run_dir / "run.log"
    log.unlink()
    os.mkfifo(log)
    with pytest.raises(NotAFile):
        open_stored(log)  # at once: a FIFO is never waited on
    log.unlink()
    log.mkdir()
    with pytest.raises(NotAFile):
        open_stored(log)
