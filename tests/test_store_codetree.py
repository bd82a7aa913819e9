"""Jobs on one snapshot share one extracted, read-only code tree (issue 14, singkit.codetree):
hard links into trees/<sha>/, made once and atomically, checked before each use, swept when no
job folder links it."""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

from jobreaper import reaped  # noqa: F401  (autouse: every job ends with its test)
from jobtools import make_env, make_project, wait_done
from singkit.codetree import MANIFEST, TREES, job_view
from singkit.store.trees import sweep_trees
from singkit.jobs.spec import SubmitRequest
from singkit.jobs.submit import submit
from singkit.store import Store


def _job(env, command: str = "cat job.sh") -> Path:
    job = submit(env, SubmitRequest(command=command))
    assert wait_done(env, job.id) == "completed"
    return env.home / "jobs" / job.id


def test_jobs_on_one_snapshot_share_one_read_only_tree_and_changed_code_gets_another(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    env = make_env(project)
    first, second = _job(env), _job(env)
    (project / "job.sh").write_text("echo changed\n")
    third = _job(env)

    inode = [os.stat(job / "code" / "job.sh").st_ino for job in (first, second, third)]
    assert inode[0] == inode[1] != inode[2]
    trees = sorted(p for p in (env.home / TREES).iterdir() if p.is_dir())
    assert len(trees) == 2
    assert {os.stat(t / "job.sh").st_ino for t in trees} == {inode[0], inode[2]}
    assert (third / "code" / "job.sh").read_text() == "echo changed\n"
    shared = os.stat(first / "code" / "job.sh")
    assert not shared.st_mode & 0o222  # read-only: a run that is not root cannot write into it
    assert all(not os.stat(t).st_mode & 0o222 for t in trees)
    assert os.stat(first / "code").st_ino != os.stat(second / "code").st_ino  # each job its own folders


def test_what_a_run_writes_into_its_code_folder_stays_in_its_job(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    env = make_env(project)
    # as root, permission bits do not stop an in-place write: the next job must still get the snapshot
    writer = _job(env, "echo mine > added.txt && echo 'echo edited' >> job.sh && mkdir -p ckpt && echo w > ckpt/m.pt")
    later = _job(env)

    assert (writer / "code" / "added.txt").read_text() == "mine\n"
    assert not (later / "code" / "added.txt").exists() and not (later / "code" / "ckpt").exists()
    assert (later / "code" / "job.sh").read_text() == "echo job script\n"
    out = next((later / "runs").iterdir()) / "stdout.log"
    assert "echo edited" not in out.read_text()
    assert [p.name for p in (env.home / TREES).iterdir() if p.is_dir()] != []
    assert not any(p.name.startswith(".tmp-") for p in (env.home / TREES).iterdir())


def test_a_same_size_rewrite_in_place_is_seen_and_the_next_job_gets_the_snapshot(tmp_path: Path) -> None:
    """The tree check compares mtime too: a run (root) rewriting a shared file in place with as
    many bytes keeps its size, and a size-only check handed the next job the edited file."""
    project = make_project(tmp_path)
    env = make_env(project)
    assert len("echo JOB SCRIPT\n") == len((project / "job.sh").read_text())
    _job(env, "printf 'echo JOB SCRIPT\\n' > job.sh; cat job.sh")
    later = _job(env)
    assert (later / "code" / "job.sh").read_text() == "echo job script\n"


def test_a_kill_while_a_tree_is_made_leaves_nothing_a_later_job_uses(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    for k in range(20):
        (project / f"m{k}.py").write_text(f"x = {k}\n")
    env = make_env(project)
    job = submit(env, SubmitRequest(command="true", dry_run=True))
    store = Store(env.home)
    spec_sha = store.job(job.id).spec["code"]["sha256"]
    killed = tmp_path / "killed"
    killed.mkdir()
    # a maker killed (SIGKILL) after extracting half the files, before the rename
    script = textwrap.dedent(f"""
        import os, signal, sys
        from pathlib import Path
        import singkit.snaparchive as snapshot
        from singkit.codetree import job_view
        real = snapshot.safe_extract
        def half(archive, dest):
            real(archive, dest)
            for path in sorted(Path(dest).glob("m1*.py")):
                path.unlink()
            os.kill(os.getpid(), signal.SIGKILL)
        snapshot.safe_extract = half
        job_view(Path({str(env.home)!r}), Path({str(killed)!r}), Path({str(store.job(job.id).code_archive)!r}), {spec_sha!r})
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == -signal.SIGKILL, done.stderr
    trees = env.home / TREES
    assert not (trees / spec_sha).exists()
    assert not (killed / "code").exists()

    later = _job(env)
    assert sorted(p.name for p in (later / "code").glob("m*.py")) == sorted(f"m{k}.py" for k in range(20))
    assert not any(p.name.startswith(".tmp-") for p in trees.iterdir())
    # the killed job folder gets its view on the next try, from the same tree
    code = job_view(env.home, killed, store.job(job.id).code_archive, spec_sha)
    assert os.stat(code / "m11.py").st_ino == os.stat(later / "code" / "m11.py").st_ino
    assert not list(killed.glob("code.part-*"))


def test_the_sweep_removes_a_tree_only_when_no_job_folder_links_it(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    env = make_env(project)
    first, second = _job(env), _job(env)
    trees = env.home / TREES
    (tree,) = [p for p in trees.iterdir() if p.is_dir()]
    assert sweep_trees(env.home, 0.0) == []
    shutil.rmtree(first)
    assert sweep_trees(env.home, 0.0) == []  # the second job still links it
    assert sweep_trees(env.home, 3600.0) == []
    shutil.rmtree(second)
    assert sweep_trees(env.home, 3600.0) == []  # unlinked just now: kept a while
    assert sweep_trees(env.home, 0.0) == [tree.name]
    assert not tree.exists() and not (trees / f"{tree.name}.lock").exists()
    assert stat.S_ISDIR(os.stat(trees).st_mode) and not (tree / MANIFEST).exists()


def test_concurrent_jobs_on_a_new_snapshot_make_its_tree_once(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    for k in range(300):
        (project / "pkg" / f"m{k}.py").parent.mkdir(exist_ok=True)
        (project / "pkg" / f"m{k}.py").write_text(f"x = {k}\n" * 200)
    env = make_env(project)
    job = submit(env, SubmitRequest(command="true", dry_run=True))
    store = Store(env.home)
    archive, sha = store.job(job.id).code_archive, store.job(job.id).spec["code"]["sha256"]
    script = ("import sys; from pathlib import Path; from singkit.codetree import job_view; "
              "job_view(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4])")
    folders = [tmp_path / f"job{k}" for k in range(4)]
    procs = []
    for folder in folders:
        folder.mkdir()
        procs.append(subprocess.Popen([sys.executable, "-c", script, str(env.home), str(folder), str(archive), sha],
                                      stderr=subprocess.PIPE, text=True))
    errors = [(p.wait(), p.stderr.read()) for p in procs]
    assert all(code == 0 for code, _ in errors), errors
    trees = env.home / TREES
    assert [p.name for p in trees.iterdir() if p.is_dir()] == [sha]
    assert len({os.stat(f / "code" / "pkg" / "m7.py").st_ino for f in folders}) == 1
    assert os.stat(trees / sha / MANIFEST).st_nlink == 1 + len(folders)
