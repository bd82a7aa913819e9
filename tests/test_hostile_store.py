"""Untrusted store content (issue 15): crafted job folders must not make singkit read or write
outside the store, or follow a link out of a job folder.

Each job is written by the store's own writers (a real submit: a dry run, or a real local run),
then corrupted as a job container, a Blob mirror or a copied store could leave it. Every case
asserts the exit code, that stderr is one line where a refusal is expected, that nothing from
the sentinel folder outside the store reaches the output, and that the sentinel folder is left
exactly as it was (contents and mtimes). Time is bounded by the subprocess timeout.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from jobreaper import reaped  # noqa: F401  (autouse: cancels whatever a test started)
from jobtools import make_env, make_project, run_cli, wait_done
from singkit.environment import Environment
from singkit.jobs.spec import SubmitRequest
from singkit.jobs.submit import submit
from singkit.store import Job, Store

SECRET = "SENTINEL-6f1d"  # text only the files outside the store hold
METRIC = 424242.5         # a metric value only the outside run.log holds
TIMEOUT = 120


@dataclass
class World:
    project: Path
    env: Environment
    outside: Path

    def cli(self, *args: str) -> "Done":
        done = run_cli(list(args), self.project, self.env, timeout=TIMEOUT)
        return Done(done.returncode, done.stdout, done.stderr)

    @property
    def store(self) -> Store:
        return Store.of(self.env)


@dataclass
class Done:
    code: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return self.err.splitlines()


def fingerprint(folder: Path) -> dict[str, tuple[int, bytes | str]]:
    """Every entry under `folder`, links not followed: (mtime_ns, content or link target)."""
    found: dict[str, tuple[int, bytes | str]] = {}
    for top, dirs, files in os.walk(folder):
        for name in [*dirs, *files]:
            path = Path(top) / name
            st = path.lstat()
            what: bytes | str = os.readlink(path) if path.is_symlink() else path.read_bytes() if path.is_file() else "dir"
            found[str(path.relative_to(folder))] = (st.st_mtime_ns, what)
    return found


@pytest.fixture
def world(tmp_path: Path) -> World:
    project = make_project(tmp_path)
    outside = tmp_path / "outside"
    (outside / "secret").mkdir(parents=True)
    (outside / "run.log").write_text(
        json.dumps({"t": 1.0, "event": "status", "status": "completed", "reason": SECRET, "exit_code": 0}) + "\n"
        + json.dumps({"t": 1.0, "event": "metrics", "step": 1, "metrics": {"loss": METRIC}}) + "\n")
    (outside / "stdout.log").write_text(f"{SECRET} stdout\n")
    (outside / "secret" / "key.txt").write_text(f"{SECRET} key\n")
    (outside / "job.yaml").write_text(f"job: job1\ncommand: {SECRET}\nruns: []\n")
    return World(project, make_env(project), outside)


def dry_job(world: World, runs: int = 1) -> Job:
    return submit(world.env, SubmitRequest(command="true", dry_run=True, runs=runs))


def real_job(world: World, command: str = "true") -> Job:
    job = submit(world.env, SubmitRequest(command=command))
    if command == "true":
        assert wait_done(world.env, job.id) == "completed"
    return job


def rewrite_run_id(job: Job, index: int, new_id: str) -> None:
    """job.yaml as the store wrote it, with one run's id replaced (as a hostile copy could)."""
    spec = job.spec
    spec["runs"][index]["run"] = new_id
    job.write_spec(spec)


def clean(world: World, done: Done, before: dict) -> None:
    """Nothing from outside reached the output; nothing outside changed."""
    assert SECRET not in done.out + done.err, done.out + done.err
    assert str(METRIC) not in done.out and "424242" not in done.out
    assert fingerprint(world.outside) == before


# -- run ids in job.yaml ------------------------------------------------------------------


def escaping_ids(world: World) -> list[str]:
    # from jobs/job1/runs/ (proj/.singkit/jobs/job1/runs), each reaches tmp_path/outside
    return ["../../../../../outside", str(world.outside), "job1.1/../../../../../../outside", "job1.1\nx"]


@pytest.mark.parametrize("case", range(4))
def test_status_refuses_a_run_id_leading_out_of_the_store(world: World, case: int) -> None:
    job = dry_job(world)
    bad = escaping_ids(world)[case]
    rewrite_run_id(job, 0, bad)
    before = fingerprint(world.outside)
    done = world.cli("job.status", job.id)
    assert done.code == 2 and len(done.lines) == 1, done.err
    # named by the store's record check (store/records.py) or the run-id grammar (store/safe.py)
    assert ("a run of this job" in done.err or "is not a run of job1" in done.err) and str(job.spec_path) in done.err
    clean(world, done, before)


def test_cancel_writes_no_status_line_outside_the_store(world: World) -> None:
    job = submit(world.env, SubmitRequest(command="sleep 60", runs=2, parallel=1))
    spec = job.spec
    good = spec["runs"][1]["run"]
    rewrite_run_id(job, 1, str(world.outside))
    before = fingerprint(world.outside)
    done = world.cli("job.cancel", job.id)
    assert done.code == 2 and len(done.lines) == 1, done.err
    assert "cancelled" not in done.err
    clean(world, done, before)
    rewrite_run_id(job, 1, good)  # the real job can be cancelled again (and the reaper ends it)
    assert world.cli("job.cancel", job.id).code == 0


def test_extract_refuses_a_run_id_leading_out_before_writing(world: World, tmp_path: Path) -> None:
    job = real_job(world)
    rewrite_run_id(job, 0, "../../../../../outside")
    before = fingerprint(world.outside)
    dest = tmp_path / "dest"
    done = world.cli("job.extract", job.id, "--dest", str(dest))
    assert done.code == 2 and len(done.lines) == 1, done.err
    clean(world, done, before)
    assert not any(p.is_file() for p in dest.rglob("*")) if dest.exists() else True


def test_reports_skip_run_ids_leading_out(world: World) -> None:
    job = real_job(world)
    rewrite_run_id(job, 0, "../../../../../outside")
    before = fingerprint(world.outside)
    for args in (["report.list", "--runs", "--json"], ["report.metrics", job.id, "--json"]):
        done = world.cli(*args)
        assert done.code in (0, 2), done.err
        clean(world, done, before)


def test_report_job_word_is_never_a_path(world: World) -> None:
    dry_job(world)
    (world.outside / "runs" / "job1.1").mkdir(parents=True)
    (world.outside / "runs" / "job1.1" / "run.log").write_text((world.outside / "run.log").read_text())
    before = fingerprint(world.outside)
    for word in ("../../outside", "--job=../../outside"):
        done = world.cli("report.list", "--runs", "--json", word if word.startswith("-") else f"--job={word}")
        assert done.code == 2 and len(done.lines) == 1, done.err
        clean(world, done, before)


# -- links in a job folder ----------------------------------------------------------------


def link(path: Path, to: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        for child in path.iterdir():
            child.unlink()
        path.rmdir()
    else:
        path.unlink(missing_ok=True)
    path.symlink_to(to)


def test_logs_do_not_read_a_stdout_log_linked_out(world: World) -> None:
    job = real_job(world)
    run = job.runs[0]
    link(run.stdout_path, world.outside / "stdout.log")
    before = fingerprint(world.outside)
    done = world.cli("job.logs", job.id)
    assert done.code == 0 and len(done.lines) == 1 and "symbolic link" in done.err, done.err
    clean(world, done, before)


def test_status_and_reports_do_not_read_a_run_log_linked_out(world: World) -> None:
    job = dry_job(world)
    run = job.runs[0]
    run.dir.mkdir(parents=True, exist_ok=True)
    link(run.log_path, world.outside / "run.log")
    before = fingerprint(world.outside)
    for args in (["job.status", job.id, "--json"], ["report.list", "--runs", "--json"],
                 ["report.metrics", job.id, "--json"], ["report.errors", job.id, "--json"]):
        done = world.cli(*args)
        assert done.code in (0, 2), (args, done.err)
        assert len(done.lines) <= 1, done.err
        clean(world, done, before)


def test_a_run_folder_linked_out_is_not_read(world: World) -> None:
    job = dry_job(world)
    run = job.runs[0]
    run.dir.parent.mkdir(parents=True, exist_ok=True)
    link(run.dir, world.outside)
    before = fingerprint(world.outside)
    for args in (["job.status", job.id, "--json"], ["job.logs", job.id], ["report.list", "--runs", "--json"]):
        done = world.cli(*args)
        assert done.code in (0, 2) and len(done.lines) <= 1, (args, done.err)
        clean(world, done, before)


def test_cancel_does_not_write_through_a_run_log_linked_out(world: World) -> None:
    job = submit(world.env, SubmitRequest(command="sleep 60", runs=2, parallel=1))
    queued = job.runs[1]  # not started: only cancel writes its run.log
    saved = queued.log_path.read_bytes()
    link(queued.log_path, world.outside / "run.log")
    before = fingerprint(world.outside)
    done = world.cli("job.cancel", job.id)
    assert done.code == 2 and len(done.lines) == 1 and "symbolic link" in done.err, done.err
    clean(world, done, before)
    queued.log_path.unlink()
    queued.log_path.write_bytes(saved)
    assert world.cli("job.cancel", job.id).code == 0


def test_job_yaml_linked_out_is_not_read(world: World) -> None:
    job = dry_job(world)
    link(job.spec_path, world.outside / "job.yaml")
    before = fingerprint(world.outside)
    for args in (["job.status", job.id], ["job.extract", job.id, "--dest", str(world.project.parent / "dest")]):
        done = world.cli(*args)
        assert done.code == 2 and len(done.lines) == 1 and "symbolic link" in done.err, (args, done.err)
        clean(world, done, before)
    # the reports list the other jobs beside a damaged job.yaml: one warning, the link not followed
    done = world.cli("report.list", "--jobs", "--json")
    assert done.code == 0 and len(done.lines) == 1 and "symbolic link" in done.err, done.err
    clean(world, done, before)


def test_extract_copies_no_log_linked_out(world: World, tmp_path: Path) -> None:
    job = real_job(world)
    link(job.runs[0].stdout_path, world.outside / "stdout.log")
    before = fingerprint(world.outside)
    dest = tmp_path / "dest"
    done = world.cli("job.extract", job.id, "--dest", str(dest), "--what", "logs")
    assert done.code == 0, done.err
    assert any("skipped" in line and "stdout.log" in line for line in done.lines), done.err
    clean(world, done, before)
    copied = dest / "runs" / job.runs[0].id
    assert (copied / "run.log").is_file() and not (copied / "stdout.log").exists()
    assert all(SECRET.encode() not in p.read_bytes() for p in dest.rglob("*") if p.is_file())


def test_extract_follows_no_outputs_link_out(world: World, tmp_path: Path) -> None:
    job = real_job(world)
    outputs = job.runs[0].outputs_dir
    (outputs / "model.bin").write_bytes(b"weights")
    (outputs / "latest").symlink_to("model.bin")  # a link inside the outputs: kept as a link
    (outputs / "data").symlink_to(world.outside / "secret")
    (outputs / "abs").symlink_to(world.outside / "stdout.log")
    before = fingerprint(world.outside)
    dest = tmp_path / "dest"
    done = world.cli("job.extract", job.id, "--dest", str(dest), "--what", "outputs")
    assert done.code == 0, done.err
    assert sum("skipped" in line for line in done.lines) == 2, done.err
    clean(world, done, before)
    copied = dest / "runs" / job.runs[0].id / "outputs"
    assert (copied / "model.bin").read_bytes() == b"weights"
    assert os.readlink(copied / "latest") == "model.bin"
    assert not (copied / "data").exists() and not (copied / "data").is_symlink()
    assert not (copied / "abs").is_symlink()
    assert all(SECRET.encode() not in p.read_bytes() for p in copied.rglob("*") if p.is_file() and not p.is_symlink())


def test_a_second_extract_writes_through_no_link_in_dest(world: World, tmp_path: Path) -> None:
    """An earlier extract (or the user) left `ckpt` in the destination as a link to a folder
    outside; the store holds a real `ckpt/` folder: the copy replaces the link, never writes
    through it."""
    job = real_job(world)
    outputs = job.runs[0].outputs_dir
    (outputs / "ckpt").mkdir()
    (outputs / "ckpt" / "key.txt").write_text("new checkpoint\n")
    (outputs / "run.txt").write_text("result\n")
    dest = tmp_path / "dest"
    copied = dest / "runs" / job.runs[0].id / "outputs"
    copied.mkdir(parents=True)
    (copied / "ckpt").symlink_to(world.outside / "secret")
    (copied / "run.txt").symlink_to(world.outside / "stdout.log")
    before = fingerprint(world.outside)
    done = world.cli("job.extract", job.id, "--dest", str(dest), "--what", "outputs")
    assert done.code == 0, done.err
    clean(world, done, before)
    assert not (copied / "ckpt").is_symlink() and (copied / "ckpt" / "key.txt").read_text() == "new checkpoint\n"
    assert not (copied / "run.txt").is_symlink() and (copied / "run.txt").read_text() == "result\n"


# -- code archives ------------------------------------------------------------------------


def replace_archive(job: Job, data: bytes) -> None:
    """The job's code.tar.gz (a read-only hard link to the snapshot) replaced by `data`."""
    job.code_archive.unlink()
    job.code_archive.write_bytes(data)


def tar_gz(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def job_folders(world: World) -> list[str]:
    return sorted(p.name for p in world.store.jobs_dir.iterdir())


def test_rerun_refuses_an_archive_member_leading_out_before_queueing(world: World) -> None:
    job = dry_job(world)
    replace_archive(job, tar_gz({"job.sh": b"true\n", "../../escaped.txt": b"x"}))
    job.spec["code"]["archive"] = "code-of-job1.tar.gz"  # gone: the rerun takes the job's own archive
    job.write_spec(job.spec)
    folders = job_folders(world)
    before = fingerprint(world.outside)
    done = world.cli("job.rerun", job.id)
    assert done.code == 2 and len(done.lines) == 1, done.err
    assert "../../escaped.txt" in done.err and str(job.code_archive) in done.err
    assert job_folders(world) == folders  # no job was queued
    clean(world, done, before)


def test_rerun_refuses_an_archive_name_leading_out(world: World) -> None:
    job = dry_job(world)
    with tarfile.open(world.outside / "code.tar.gz", "w:gz") as tar:
        tar.add(world.outside / "stdout.log", arcname="stdout.log")
    job.spec["code"]["archive"] = "../outside/code.tar.gz"
    job.write_spec(job.spec)
    folders = job_folders(world)
    before = fingerprint(world.outside)
    done = world.cli("job.rerun", job.id)
    assert done.code == 2 and len(done.lines) == 1, done.err
    assert "would lead outside" in done.err
    assert job_folders(world) == folders
    clean(world, done, before)


@pytest.mark.parametrize("kind", ["truncated", "not-gzip", "empty", "gzip-not-tar"])
def test_damaged_code_archive_is_one_line(world: World, tmp_path: Path, kind: str) -> None:
    job = dry_job(world)
    whole = job.code_archive.read_bytes()
    data = {"truncated": whole[: len(whole) // 2], "not-gzip": b"PK\x03\x04 not a tar.gz at all",
            "empty": b"", "gzip-not-tar": gzip.compress(b"hello, not a tar archive\n" * 10)}[kind]
    replace_archive(job, data)
    job.spec["code"]["archive"] = "code-of-job1.tar.gz"
    job.write_spec(job.spec)
    folders = job_folders(world)
    for args in (["job.rerun", job.id], ["job.extract", job.id, "--dest", str(tmp_path / "dest"), "--what", "code"]):
        done = world.cli(*args)
        assert done.code == 2 and len(done.lines) == 1, (args, done.err)
        assert str(job.code_archive) in done.err
        assert ("truncated" in done.err) if kind == "truncated" else ("not a gzip archive" in done.err), done.err
        assert "internal error" not in done.err
    assert job_folders(world) == folders


# -- the Blob mirror of a Singularity run (its blob names are the job's) ----------------------


def test_blob_mirror_appends_through_no_link(azurite_container, tmp_path: Path) -> None:
    from singkit.backends.singularity.mirror import _copy_new
    from singkit.store.safe import UnsafeStoreContent

    target = tmp_path / "outside.log"
    target.write_text("keep\n")
    run_dir = tmp_path / ".singkit" / "jobs" / "job1" / "runs" / "job1.1"
    run_dir.mkdir(parents=True)
    (run_dir / "run.log").symlink_to(target)
    azurite_container.upload_blob("p/run.log", b'{"event": "status", "status": "running"}\n')
    with pytest.raises(UnsafeStoreContent, match="run.log"):  # the link leads outside: refused, one line
        _copy_new(azurite_container, "p", {}, run_dir, lambda: None)
    assert target.read_text() == "keep\n"


@pytest.mark.parametrize("planted", ["runs", "runs/job1.1", "code"])
def test_extract_writes_through_no_folder_link_planted_in_the_destination(world: World, tmp_path: Path,
                                                                          planted: str) -> None:
    job = real_job(world)
    dest = tmp_path / "dest"
    victim = tmp_path / "victim"
    victim.mkdir()
    (dest / planted).parent.mkdir(parents=True, exist_ok=True)
    (dest / planted).symlink_to(victim, target_is_directory=True)
    done = world.cli("job.extract", job.id, "--dest", str(dest))
    assert done.code == 0, done.err
    assert list(victim.iterdir()) == []  # nothing written through the link
    assert not (dest / planted).is_symlink() and (dest / planted).is_dir()
    assert (dest / "runs" / job.runs[0].id / "run.log").is_file() and (dest / "code").is_dir()


@pytest.mark.parametrize("kind", ["fifo", "folder"])
def test_a_run_log_that_is_no_file_is_read_as_missing_not_waited_on(world: World, kind: str) -> None:
    # a FIFO's open waited for a writer for ever; a folder made every command on the job fail
    job = dry_job(world, runs=2)
    run = job.runs[0]
    run.dir.mkdir(parents=True, exist_ok=True)
    run.log_path.unlink(missing_ok=True)
    os.mkfifo(run.log_path) if kind == "fifo" else run.log_path.mkdir()
    for args in (["job.status", job.id, "--json"], ["report.list", "--runs", "--json"],
                 ["report.metrics", job.id, "--json"], ["report.errors", job.id, "--json"]):
        done = run_cli(list(args), world.project, world.env, timeout=30)
        assert done.returncode == 0, (args, done.stderr)
    status = json.loads(run_cli(["job.status", job.id, "--json"], world.project, world.env, timeout=30).stdout)
    assert [r["run"] for r in status["runs"]] == [run.id, job.runs[1].id]
    # one status everywhere: the reports said `queued` where job.status said `unknown`
    listed = json.loads(run_cli(["report.list", "--runs", job.id, "--json"], world.project, world.env, timeout=30).stdout)
    assert status["runs"][0]["status"] == listed[0]["status"] == "unknown", (status["runs"][0], listed[0])


def test_a_job_yaml_that_is_a_fifo_is_one_line_not_a_hang(world: World) -> None:
    job = dry_job(world)
    job.spec_path.unlink()
    os.mkfifo(job.spec_path)
    done = world.cli("job.status", job.id)
    assert done.code == 2 and len(done.lines) == 1 and "not a regular file" in done.err, done.err


def test_a_job_folder_without_its_job_yaml_says_so_not_did_you_mean_itself(world: World) -> None:
    job = dry_job(world)
    job.spec_path.rename(world.outside / "moved.yaml")
    done = world.cli("job.status", job.id)
    assert done.code == 2 and len(done.lines) == 1, done.err
    assert "job.yaml is missing" in done.err and "did you mean" not in done.err, done.err


@pytest.mark.parametrize("kind", ["fifo", "folder"])
def test_cancel_of_a_run_whose_run_log_is_no_file_is_one_line_not_a_hang(world: World, kind: str) -> None:
    # the append opened the FIFO for writing, which waits for a reader for ever
    job = submit(world.env, SubmitRequest(command="sleep 60", runs=2, parallel=1))
    queued = job.runs[1]  # not started: only cancel writes its run.log
    saved = queued.log_path.read_bytes()
    queued.log_path.unlink()
    os.mkfifo(queued.log_path) if kind == "fifo" else queued.log_path.mkdir()
    done = world.cli("job.cancel", job.id)
    assert done.code == 2 and len(done.lines) == 1 and "not a regular file" in done.err, done.err
    assert queued.id in done.err and job.runs[0].state().status == "cancelled"  # the healthy run all the same
    os.unlink(queued.log_path) if kind == "fifo" else queued.log_path.rmdir()
    queued.log_path.write_bytes(saved)
    assert world.cli("job.cancel", job.id).code == 0
