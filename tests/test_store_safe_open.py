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


def _outcome(read, path: Path) -> object:
    try:
        return read(path)
    except OSError as error:
        return type(error), error.errno


def test_reading_many_files_at_once_refuses_what_open_stored_refuses(tmp_path: Path, monkeypatch) -> None:
    """safe.read_stored (a listing's every run.log, each folder opened once) gives each file's
    bytes or None exactly where open_stored gives its bytes or FileNotFoundError, and raises
    what open_stored raises, whatever stands in the store."""
    from singkit.store.safe import read_stored

    jobs = tmp_path / ".singkit/jobs"
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "run.log").write_text("secret\n")
    for job in ("job1", "job2", "job3"):
        for k in range(1, 9):
            folder = jobs / job / "runs" / f"{job}.{k}"
            folder.mkdir(parents=True)
            (folder / "run.log").write_text(f"{job}.{k}\n")
    runs = jobs / "job1/runs"
    (runs / "job1.2/run.log").unlink()
    (runs / "job1.2/run.log").symlink_to(outside / "run.log")  # the file a link
    os.rename(runs / "job1.3", tmp_path / "moved")
    (runs / "job1.3").symlink_to(tmp_path / "moved")  # its folder a link
    (runs / "job1.4/run.log").unlink()
    os.mkfifo(runs / "job1.4/run.log")
    (runs / "job1.5/run.log").unlink()
    (runs / "job1.5/run.log").mkdir()
    (runs / "job1.6/run.log").unlink()  # missing
    os.rename(runs / "job1.7", tmp_path / "gone")
    (runs / "job1.7").write_text("a file where a folder should be\n")
    os.rename(jobs / "job2/runs", tmp_path / "job2-runs")
    (jobs / "job2/runs").symlink_to(tmp_path / "job2-runs")  # runs/ a link
    os.rename(jobs / "job3", tmp_path / "job3")
    (jobs / "job3").symlink_to(tmp_path / "job3")  # the job folder a link
    (jobs / "job4").mkdir()
    (jobs / "job4/job.yaml").write_text("job: job4\n")  # a file right in the job folder
    (jobs / "top.log").write_text("beside the job folders\n")
    paths = [jobs / job / "runs" / f"{job}.{k}" / "run.log" for job in ("job1", "job2", "job3") for k in range(1, 10)]
    paths += [jobs / "job4/job.yaml", jobs / "top.log", jobs / "job1/runs/job1.1/run.log"]
    expected = [_outcome(lambda p: _read_or_none(p), p) for p in paths]
    found = []
    for path in paths:
        found.append(_outcome(lambda p: next(read_stored([str(p)])), path))
    assert found == expected
    fine = [p for p, e in zip(paths, expected) if not isinstance(e, tuple)]
    assert list(read_stored([str(p) for p in fine])) == [_read_or_none(p) for p in fine]  # in one call
    assert sum(e is not None and not isinstance(e, tuple) for e in expected) == 5  # (the test holds files)
    from singkit.store import safe

    asked: list[str] = []
    monkeypatch.setattr(safe, "_read_one", lambda p: asked.append(p) or _read_or_none(p))
    plain = [str(runs / "job1.1/run.log"), str(runs / "job1.8/run.log")]
    assert list(read_stored(plain)) == [b"job1.1\n", b"job1.8\n"] and asked == []  # read through the open folders


def _read_or_none(path: Path) -> bytes | None:
    try:
        with open_stored(path) as fh:
            return fh.read()
    except FileNotFoundError:
        return None


def test_the_folds_of_many_run_logs_at_once_are_those_of_each(tmp_path: Path) -> None:
    import storegen
    from storegen import RunSpec, curve

    storegen.write_job(tmp_path / ".singkit", "job1", [RunSpec({"lr": 0.1 * k}, curve(12, 2.0, 1.0)) for k in range(4)])
    logs = sorted(str(p) for p in (tmp_path / ".singkit/jobs/job1/runs").glob("*/run.log"))
    logs.append(logs[0].replace("job1.1", "job1.9"))  # missing: an empty fold, as runlog.state gives
    assert [s.to_json() for s in runlog.states(logs)] == [runlog.state(p).to_json() for p in logs]


@pytest.mark.parametrize("known", [0, 1, 4999, 5000, 5001, 70_000])
def test_a_file_read_at_once_is_read_to_its_end_whatever_size_fstat_said(tmp_path: Path, known: int) -> None:
    """read_stored reads a run.log with one os.read of the size fstat gave; a file that grew since
    (a writer appending: fstat said less) or a short read (said more) reads on to the end."""
    from singkit.store.safe import _read_all

    path = tmp_path / "run.log"
    data = os.urandom(5000)
    path.write_bytes(data)
    fd = os.open(path, os.O_RDONLY)
    try:
        assert _read_all(fd, known) == data
    finally:
        os.close(fd)
