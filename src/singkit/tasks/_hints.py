"""What the job tasks suggest next, spelled as the README teaches it (`invoke …`, and the Make
target where one exists): command names belong to the edge, not to the library."""

from __future__ import annotations

NO_JOBS_YET = "no jobs yet; submit one with `invoke job.submit` (make submit)"


def detach_hint(job_id: str) -> str:
    """The line after Ctrl-C while following a job: it keeps running, and how to reach it again."""
    return (f"detached from {job_id}; it keeps running. Cancel it with `invoke job.cancel {job_id}` "
            f"(make cancel JOB={job_id}), follow it again with `invoke job.monitor {job_id}`")


def next_steps(job_id: str) -> str:
    """The commands that follow a detached submit, one per line."""
    return "\n".join([
        f"  monitor: invoke job.monitor {job_id}    (make monitor JOB={job_id})",
        f"  logs:    invoke job.logs {job_id}       (make logs JOB={job_id})",
        f"  status:  invoke job.status {job_id}     (make status JOB={job_id})",
        f"  cancel:  invoke job.cancel {job_id}     (make cancel JOB={job_id})",
        f"  report:  invoke report.list --runs --job={job_id}  (make report JOB={job_id})",
    ])
