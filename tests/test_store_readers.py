"""Readers that must not fail when they need not (issue 16): the job index is a cache, so a full
disk, a read-only store or a damaged index never stops job.list / job.status; a damaged job.yaml
is one line naming the file, and the other jobs are still listed."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobtools import make_env, make_project, run_here
from services import require_service
from singkit.store import Store



def _env_at(project: Path, home: Path):
    """make_env with the store at `home` (on the small disk)."""
    env = make_env(project)
    return type(env)(project_root=project, environ={**env.environ, "SINGKIT_HOME": str(home)},
                     stdout=env.stdout, stderr=env.stderr)


def _completed_jobs(home: Path, n: int = 3) -> Store:
    """n completed local jobs, written by the store's own writers (no runner needed)."""
    store = Store(home)
    for _ in range(n):
        job = store.allocate()
        job.write_spec({"job": job.id, "created": 1.0, "target": {"name": "local"}, "service": {"name": "local", "type": "local"},
                        "command": "true", "runs": [{"run": f"{job.id}.1", "hparams": {"lr": 0.1}}]})
        job.runs[0].create()
        job.runs[0].set_status("running")
        job.runs[0].set_status("completed", exit_code=0)
        store.save(job)
    store.close()
    return store


def _drop_index(home: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{home / 'index.sqlite'}{suffix}").unlink(missing_ok=True)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs: a real file system that answers ENOSPC once it is full."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True, text=True)
    if done.returncode != 0:
        require_service("tmpfs mount", f"`mount -t tmpfs` failed ({done.stderr.strip()}); run the tests as root")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(folder: Path) -> None:
    """Write until the file system says ENOSPC (the boundary every writer hits)."""
    with open(folder / "filler", "wb", buffering=0) as fh:  # unbuffered: no half-written buffer for close to flush
        try:
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()
        except OSError as error:
            assert error.errno == 28, error  # ENOSPC
    with pytest.raises(OSError, match="No space left"):
        with open(folder / "probe", "wb") as fh:
            fh.write(b"x" * 65536)
            fh.flush()


def _listed(done: subprocess.CompletedProcess) -> list[tuple[str, str]]:
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    return [(j["job"], j["status"]) for j in json.loads(done.stdout)]


@pytest.mark.parametrize("index", ["missing", "one job unindexed"])
def test_full_disk_lists_from_the_job_folders(tmp_path: Path, small_disk: Path, index: str) -> None:
    home = small_disk / "store"
    _completed_jobs(home)
    if index == "missing":
        _drop_index(home)
    else:  # the listing has a row to write for job3
        db = sqlite3.connect(home / "index.sqlite")
        db.execute("DELETE FROM jobs WHERE job = 'job3'")
        db.commit()
        db.close()
    _fill(small_disk)
    project = make_project(tmp_path)
    env = _env_at(project, home)
    before = sorted(p.name for p in (home / "jobs").rglob("*"))
    listed = run_here(["job.list", "--json"], project, env)
    assert _listed(listed) == [("job1", "completed"), ("job2", "completed"), ("job3", "completed")]
    assert len(listed.stderr.splitlines()) == 1, listed.stderr
    assert "no space left on device" in listed.stderr and "another singkit" not in listed.stderr, listed.stderr
    status = run_here(["job.status", "job3", "--json"], project, env)
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["status"] == "completed"
    assert "no space left on device" in status.stderr and len(status.stderr.splitlines()) == 1, status.stderr
    filtered = run_here(["job.list", "--json", "--last", "1"], project, env)
    assert _listed(filtered) == [("job3", "completed")]
    assert sorted(p.name for p in (home / "jobs").rglob("*")) == before
    (small_disk / "filler").unlink()  # space again: the next listing indexes as before, no note
    again = run_here(["job.list", "--json"], project, env)
    assert len(_listed(again)) == 3 and again.stderr == "", again.stderr


def test_read_only_store_lists_and_says_read_only(tmp_path: Path, small_disk: Path) -> None:
    home = small_disk / "store"
    _completed_jobs(home)
    _drop_index(home)
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    project = make_project(tmp_path)
    env = _env_at(project, home)
    listed = run_here(["job.list", "--json"], project, env)
    assert [j for j, _ in _listed(listed)] == ["job1", "job2", "job3"]
    assert "read-only" in listed.stderr and "another singkit" not in listed.stderr, listed.stderr
    assert len(listed.stderr.splitlines()) == 1, listed.stderr


def test_a_locked_index_is_the_only_one_called_busy(tmp_path: Path) -> None:
    from singkit.store.index import Index, IndexUnavailable

    home = tmp_path / "home"
    _completed_jobs(home)
    runner = sqlite3.connect(home / "index.sqlite", isolation_level=None)
    runner.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(IndexUnavailable, match="locked.*another singkit may be writing it") as error:
            Index(home / "index.sqlite", timeout=0.05).remove("job1")
        assert error.value.kind == "locked"
        store = Store(home)
        store.index.timeout = 0.05
        store.index._db = None
        job = store.job("job1")
        job.runs[0].append("metrics", metrics={"loss": 1.0})  # news to index: save must write (issue 14)
        assert store.save(job)["status"] == "completed"  # a reader is not failed by a writer's lock
        assert store.index_trouble is not None and store.index_trouble.kind == "locked"
    finally:
        runner.execute("ROLLBACK")
        runner.close()


def _crafted(home: Path, damage: str) -> None:
    path = home / "index.sqlite"
    if damage == "bad JSON row":
        db = sqlite3.connect(path)
        db.execute("UPDATE jobs SET summary = '{not json' WHERE job = 'job2'")
        db.commit()
        db.close()
    elif damage == "row of wrong shape":
        db = sqlite3.connect(path)
        db.execute("""UPDATE jobs SET summary = '{"job": "job2", "num": "two", "status": 3}' WHERE job = 'job2'""")
        db.execute("""UPDATE jobs SET summary = '[1, 2]' WHERE job = 'job1'""")
        db.commit()
        db.close()
    elif damage == "no jobs table":
        db = sqlite3.connect(path)
        db.execute("DROP TABLE jobs")
        db.commit()
        db.close()
    elif damage == "directory":
        _drop_index(home)
        path.mkdir()
        (path / "keep.txt").write_text("mine")
    elif damage == "fifo":
        _drop_index(home)
        os.mkfifo(path)
    elif damage == "not a database":
        _drop_index(home)
        path.write_bytes(b"garbage" * 1000)
    elif damage == "malformed pages":  # the header reads fine: the damage shows only in use
        db = sqlite3.connect(path)
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.close()
        with open(path, "r+b") as fh:
            for offset in range(4096, path.stat().st_size, 4096):
                fh.seek(offset)
                fh.write(b"\xff" * 64)


DAMAGES = ["bad JSON row", "row of wrong shape", "no jobs table", "directory", "fifo", "not a database", "malformed pages"]


@pytest.mark.parametrize("damage", DAMAGES)
def test_a_damaged_index_is_rebuilt_from_the_folders(tmp_path: Path, damage: str) -> None:
    project = make_project(tmp_path)
    env = make_env(project)
    home = Path(env.environ["SINGKIT_HOME"])
    _completed_jobs(home)
    _crafted(home, damage)
    for _ in range(2):  # rebuilt once, then simply used
        listed = run_here(["job.list", "--json"], project, env, timeout=60)
        assert _listed(listed) == [("job1", "completed"), ("job2", "completed"), ("job3", "completed")]
        assert len(listed.stderr.splitlines()) <= 1 and "another singkit" not in listed.stderr, listed.stderr
    assert Path(home / "index.sqlite").is_file()
    assert sorted(j for (j,) in sqlite3.connect(home / "index.sqlite").execute("SELECT job FROM jobs")) == \
        ["job1", "job2", "job3"]
    if damage == "directory":
        assert (home / "index.sqlite.damaged" / "keep.txt").read_text() == "mine"  # moved aside, not deleted


GOOD_SPEC = ('job: {job}\ncreated: 1.0\ntarget: {{name: local}}\nservice: {{name: local, type: local}}\n'
             'command: "true"\nruns:\n- run: {job}.1\n  hparams: {{lr: 0.1}}\n')
DAMAGED_SPECS = {
    "no target": ("job: job2\nservice: {name: local, type: local}\nruns: []\n", "`target` is missing"),
    "not a mapping": ("- just\n- a list\n", "expected a mapping"),
    "bad YAML": ("job: [unclosed\nruns: {\n", "not valid YAML"),
    "empty file": ("", "expected a mapping"),
    "target is text": (GOOD_SPEC.replace("{{name: local}}", "local"), "`target` is text 'local'"),
    "target without name": (GOOD_SPEC.replace("{{name: local}}", "{{shell: sh}}"), "`target.name` is missing"),
    "runs is a number": ("job: job2\ntarget: {name: local}\nservice: {name: local}\nruns: 5\n", "`runs` is a whole number"),
    "run not a mapping": (GOOD_SPEC.replace("- run: {job}.1\n  hparams: {{lr: 0.1}}", "- job2.1"), "`runs[1]` is text"),
    "run id of another job": (GOOD_SPEC.replace("- run: {job}.1", "- run: job9.1"), "`runs[1].run` is 'job9.1'"),
    "run id leaving the store": (GOOD_SPEC.replace("- run: {job}.1", "- run: ../../x"), "`runs[1].run` is '../../x'"),
    "hparams a list": (GOOD_SPEC.replace("{{lr: 0.1}}", "[1, 2]"), "`runs[1].hparams` is a list"),
    "created is text": (GOOD_SPEC.replace("created: 1.0", "created: yesterday"), "`created` is text"),
    "dry_run is text": (GOOD_SPEC + "dry_run: maybe\n", "`dry_run` is text"),
    "parallel is text": (GOOD_SPEC + "parallel: '2'\n", "`parallel` is text"),
}


@pytest.mark.parametrize("damage", list(DAMAGED_SPECS))
def test_a_damaged_job_yaml_is_one_line_and_the_others_are_listed(tmp_path: Path, damage: str) -> None:
    text, said = DAMAGED_SPECS[damage]
    project = make_project(tmp_path)
    env = make_env(project)
    home = Path(env.environ["SINGKIT_HOME"])
    _completed_jobs(home)
    spec = home / "jobs" / "job2" / "job.yaml"
    spec.write_text(text.format(job="job2") if "{job}" in text else text)
    _drop_index(home)  # every folder is read again
    listed = run_here(["job.list", "--json"], project, env)
    assert _listed(listed) == [("job1", "completed"), ("job3", "completed")]
    assert len(listed.stderr.splitlines()) == 1, listed.stderr
    assert listed.stderr.startswith("warning: skipped job2: ") and f"{spec}" in listed.stderr, listed.stderr
    assert said in listed.stderr and "KeyError" not in listed.stderr, listed.stderr
    for args in (["job.status", "job2"], ["job.logs", "job2"], ["job.cancel", "job2"]):
        done = run_here(args, project, env)
        assert done.returncode == 2 and len(done.stderr.splitlines()) == 1, (args, done.stderr)
        assert done.stderr.startswith(f"error: {spec}") and said in done.stderr, (args, done.stderr)
        assert "fix the file, or move its job folder aside" in done.stderr
    assert run_here(["job.status", "job3"], project, env).returncode == 0


@pytest.mark.parametrize("record", ["[1, 2]", '{"pid": "abc", "start": 1}', "nul\0l", "{"])
def test_damaged_runner_and_backend_records_are_taken_as_missing(tmp_path: Path, record: str) -> None:
    """A running job whose runner.json and backend.json are damaged: its runner is taken as gone
    (the run fails with a reason) instead of an AttributeError or ValueError in every reader."""
    project = make_project(tmp_path)
    env = make_env(project)
    home = Path(env.environ["SINGKIT_HOME"])
    store = _completed_jobs(home, 1)
    job = store.allocate()
    job.write_spec({"job": job.id, "created": 1.0, "target": {"name": "local"},
                    "service": {"name": "local", "type": "local"}, "command": "sleep 1000",
                    "runs": [{"run": f"{job.id}.1", "hparams": {}}]})
    run = job.runs[0]
    run.create()
    run.set_status("running")
    for path in (job.runner_path, run.backend_path):
        path.write_text(record)
    store.close()
    status = run_here(["job.status", job.id, "--json"], project, env)
    assert status.returncode == 0 and "internal error" not in status.stderr, status.stderr
    assert json.loads(status.stdout)["status"] == "failed"
    assert _listed(run_here(["job.list", "--json"], project, env)) == [("job1", "completed"), (job.id, "failed")]


CACHE_DAMAGES = {  # what the reports keep in the store's index (issue 14: the one index)
    "not a database": None,
    "directory": None,
    "fifo": None,
    "spec row not JSON": "UPDATE specs SET spec = '{bad'",
    "spec row a list": "UPDATE specs SET spec = '[1, 2]'",
    "spec stamp not a number": "UPDATE specs SET size = 'x'",
    # (a run's row keeps its fold and its listing columns, which report.list reads: both damaged)
    "fold not JSON": "UPDATE runs SET fold = '{bad', listing = '[bad'",
    "fold of another shape": """UPDATE runs SET fold = json_set(fold, '$.metrics', json('{"loss": 3}')),
                                listing = json_set(listing, '$[9]', json('{"loss": 3}'))""",
    "fold not a mapping": """UPDATE runs SET fold = '"x"', listing = '"x"'""",
    "fold stamp not a number": "UPDATE runs SET log_size = 'x'",
    "config value not JSON": "UPDATE meta SET value = '{bad'",
    "config value a list": "UPDATE meta SET value = '[1]'",
    "table of another shape": "DROP TABLE specs; CREATE TABLE specs (other TEXT)",
}


@pytest.mark.parametrize("damage", list(CACHE_DAMAGES))
def test_a_damaged_index_is_rebuilt_for_the_reports(tmp_path: Path, damage: str) -> None:
    from storegen import RunSpec, curve, write_job

    project = make_project(tmp_path)
    env = make_env(project)
    home = Path(env.environ["SINGKIT_HOME"])
    for job in ("job1", "job2"):
        spec = write_job(home, job, [RunSpec(hparams={"lr": 0.1}, metrics=curve(5, 1.0, 0.2)), RunSpec(hparams={"lr": 0.2})]) / "job.yaml"
        old = os.stat(spec).st_mtime_ns - 3600 * 10**9  # not written just now: its parse is kept (git's racy rule)
        os.utime(spec, ns=(old, old))
    args = ["report.list", "--runs", "--json"]
    first = run_here(args, project, env)
    assert first.returncode == 0, first.stderr
    cache = home / "index.sqlite"
    db = sqlite3.connect(cache)
    assert db.execute("SELECT count(*) FROM meta WHERE key = 'reports:config-general'").fetchone() == (1,)
    db.close()
    sql = CACHE_DAMAGES[damage]
    if sql is not None:
        db = sqlite3.connect(cache)
        db.executescript(sql)
        db.commit()
        db.close()
    else:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{cache}{suffix}").unlink(missing_ok=True)
        if damage == "not a database":
            cache.write_bytes(b"garbage" * 1000)
        elif damage == "directory":
            cache.mkdir()
        else:
            os.mkfifo(cache)
    for _ in range(2):
        again = run_here(args, project, env, timeout=60)
        assert again.returncode == 0 and again.stderr == "", again.stderr
        assert json.loads(again.stdout) == json.loads(first.stdout)
    db = sqlite3.connect(cache)  # a working index again, holding both jobs
    assert sorted(j for (j,) in db.execute("SELECT job FROM specs")) == ["job1", "job2"]
    folds = dict(db.execute("SELECT run, fold FROM runs WHERE fold IS NOT NULL"))
    assert sorted(folds) == ["job1.1", "job1.2", "job2.1", "job2.2"]
    assert [json.loads(folds[run])["metrics"]["loss"][4] for run in ("job1.1", "job2.1")] == [5, 5]


@pytest.mark.parametrize("text", ["job: [unclosed\n", "\xff\xfe not text"])
def test_reports_show_the_other_jobs_beside_a_damaged_job_yaml(tmp_path: Path, text: str) -> None:
    from storegen import RunSpec, curve, write_job

    project = make_project(tmp_path)
    env = make_env(project)
    home = Path(env.environ["SINGKIT_HOME"])
    for job in ("job1", "job2"):
        write_job(home, job, [RunSpec(hparams={"lr": 0.1}, metrics=curve(5, 1.0, 0.2))])
    spec = home / "jobs" / "job2" / "job.yaml"
    spec.write_bytes(text.encode("latin-1"))
    for args in (["report.list", "--runs", "--json"], ["report.list", "--jobs", "--json"]):
        done = run_here(args, project, env)
        assert done.returncode == 0, done.stderr
        assert len(done.stderr.splitlines()) == 1 and f"{spec}" in done.stderr, done.stderr
        assert done.stderr.startswith("warning: job2 shown from its run folders only: "), done.stderr
        listed = json.loads(done.stdout)
        assert [r.get("run", r.get("job")) for r in listed][0].startswith("job1") and len(listed) == 2, listed


def test_run_log_fields_of_the_wrong_type_are_not_trusted(tmp_path: Path) -> None:
    """A job writes its own run.log: a status line whose time is text, exit code text and reason a
    mapping hid the job from job.list (its times no longer compared) or failed job.status."""
    project = make_project(tmp_path)
    env = make_env(project)
    home = Path(env.environ["SINGKIT_HOME"])
    store = _completed_jobs(home, 1)
    job = store.allocate()
    job.write_spec({"job": job.id, "created": 1.0, "target": {"name": "local"},
                    "service": {"name": "local", "type": "local"}, "command": "true",
                    "runs": [{"run": f"{job.id}.1", "hparams": {}}, {"run": f"{job.id}.2", "hparams": {}}]})
    for run in job.runs:
        run.create()
        with open(run.log_path, "a") as fh:
            fh.write(json.dumps({"event": "status", "status": "running", "t": "noon"}) + "\n")
            fh.write(json.dumps({"event": "metrics", "step": "s", "metrics": {"loss": 1}}) + "\n")
            fh.write(json.dumps({"event": "status", "status": "failed", "t": [1], "exit_code": "x",
                                 "reason": {"why": 1}}) + "\n")
    store.close()
    listed = run_here(["job.list", "--json"], project, env)
    assert _listed(listed) == [("job1", "completed"), ("job2", "failed")]
    status = run_here(["job.status", "job2", "--json"], project, env)
    assert status.returncode == 0, status.stderr
    runs = json.loads(status.stdout)["runs"]
    assert [(r["exit_code"], r["reason"], r["started"]) for r in runs] == [(None, None, None), (None, None, None)]
    assert run_here(["job.status", "job2"], project, env).returncode == 0
