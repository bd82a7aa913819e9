"""Jobs on every target: the submit pipeline (submit), the detached runner of embedded jobs
(runner), following and steering submitted jobs (follow, control)."""
