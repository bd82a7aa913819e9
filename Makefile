# Thin targets over the invoke tasks; `make help` lists them. Every target sets up .venv first.
PYTHON ?= python3
VENV   := .venv
STAMP  := $(VENV)/.singkit-setup
# singkit's own program over the invoke tasks: a mistyped task or option is one line and exit 2
# ("did you mean"), as with `singkit`; make then ends "Error 2" — the code it names is the real one.
SINGKIT := $(VENV)/bin/singkit

TARGET ?= local
DOCKER ?=
JOB    ?=
RUN    ?=
CMD    ?=
HP     ?=
ARGS   ?=
DEST   ?=
DETACH ?=
CONFIRM ?=
SERVICES ?= 1
# The job store clean-store deletes: $SINGKIT_HOME, as singkit reads it, else .singkit here.
STORE  := $(or $(SINGKIT_HOME),.singkit)

# CMD goes to the shell single-quoted and unexpanded, so quotes and $VARS reach the job as typed.
quoted_cmd = '$(subst ','\'',$(value CMD))'

.DEFAULT_GOAL := help
.PHONY: help setup submit wrap monitor status logs cancel list report plot html portal rerun extract summary errors lint test bench mutate clean clean-store

# One column for the texts; a command too long for it has its text on the next line.
help:
	@echo "make help                        this list"
	@echo "make setup                       create .venv with singkit and its dev tools"
	@echo "make submit [TARGET=local] [CMD=...] [HP='lr=0.1,0.01 bs=32'] [DETACH=1]"
	@echo "                                 submit a job and follow it"
	@echo "make wrap DOCKER=pytorch         render, build, validate, push and pin an image"
	@echo "make monitor|status|cancel JOB=jobN [RUN=jobN.K]"
	@echo "                                 follow, show, cancel a job (cancel: one run with RUN=)"
	@echo "make logs JOB=jobN [RUN=jobN.K]  a run's output"
	@echo "make list                        list jobs"
	@echo "make rerun JOB=jobN | make extract JOB=jobN [DEST=dir]"
	@echo "                                 run a job again | copy it out of the store"
	@echo "make report|plot|html JOB=jobN   run table, seaborn plots, HTML page under reports/"
	@echo "make portal JOB=jobN [RUN=jobN.K] [ARGS=--browse]"
	@echo "                                 Azure ML studio page of a Singularity job"
	@echo "make summary JOB=jobN | make errors [JOB=jobN]"
	@echo "                                 sweep ranking | failed runs by error"
	@echo "make lint                        ruff and mypy (make test runs them first)"
	@echo "make test [ARGS='-k config'] [SERVICES=0]"
	@echo "                                 lint, then the tests; as root it first installs and starts"
	@echo "                                 their services (bash .ci/services.sh; SERVICES=0 skips that)"
	@echo "make bench                       the benchmarks"
	@echo "make mutate                      mutation testing of the run.log fold, filters, image resolution"
	@echo "                                 (mutmut; [tool.mutmut] in pyproject.toml; not part of make test)"
	@echo "make clean                       delete build products: .venv, rendered dockerfiles/*.Dockerfile,"
	@echo "                                 reports/*/, caches; never the job store"
	@echo "make clean-store [CONFIRM=1]     delete the job store $(STORE)/ (every job's logs, metrics, outputs):"
	@echo "                                 says how much, then asks (CONFIRM=1: no question, e.g. in scripts);"
	@echo "                                 refuses while a job is queued or running"
	@echo ""
	@echo "variables: TARGET=  DOCKER=  JOB=  RUN=  CMD=  HP=  DETACH=1  DEST=  CONFIRM=1  SERVICES=0  PYTHON=  ARGS=..."
	@echo "           ARGS= passes options on to the task, e.g. make status JOB=job3 ARGS=--json"

setup: $(STAMP)
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --upgrade pip
	$(VENV)/bin/python -m pip install -q -e '.[dev]'
	$(VENV)/bin/python -m compileall -q src  # bytecode once: invoke never writes it
	@touch $@

submit: $(STAMP)
	$(SINGKIT) job.submit --target=$(TARGET) $(if $(value CMD),--cmd=$(quoted_cmd)) $(foreach h,$(HP),--hp=$(h)) $(if $(DETACH),,--follow) $(ARGS)
wrap: $(STAMP)
	$(SINGKIT) image.wrap --docker=$(DOCKER) $(ARGS)
monitor: $(STAMP)
	$(SINGKIT) job.monitor --job=$(JOB) $(ARGS)
status: $(STAMP)
	$(SINGKIT) job.status --job=$(JOB) $(ARGS)
logs: $(STAMP)
	$(SINGKIT) job.logs $(if $(JOB),--job=$(JOB)) $(if $(RUN),--run=$(RUN)) $(ARGS)
cancel: $(STAMP)
	$(SINGKIT) job.cancel $(if $(JOB),--job=$(JOB)) $(if $(RUN),--run=$(RUN)) $(ARGS)
rerun: $(STAMP)
	$(SINGKIT) job.rerun --job=$(JOB) $(ARGS)
extract: $(STAMP)
	$(SINGKIT) job.extract --job=$(JOB) --dest=$(or $(DEST),extracted/$(JOB)) $(ARGS)
list: $(STAMP)
	$(SINGKIT) job.list $(ARGS)
report: $(STAMP)
	$(SINGKIT) report.list --runs $(if $(JOB),--job=$(JOB)) $(ARGS)
plot: $(STAMP)
	$(SINGKIT) report.plot --job=$(JOB) $(ARGS)
html: $(STAMP)
	$(SINGKIT) report.html --job=$(JOB) $(ARGS)
portal: $(STAMP)
	$(SINGKIT) job.portal $(if $(JOB),--job=$(JOB)) $(if $(RUN),--run=$(RUN)) $(ARGS)
summary: $(STAMP)
	$(SINGKIT) report.summary --job=$(JOB) $(ARGS)
errors: $(STAMP)
	$(SINGKIT) report.errors $(if $(JOB),--job=$(JOB)) $(ARGS)

# As root (a fresh machine, as CI is) the services the tests need are installed and started
# first (.ci/services.sh is idempotent: quick when they are up). Otherwise the tests that need
# them skip, said in one summary line with the command that enables them (tests/skipsummary.py).
# CI's own environment (SINGKIT_REQUIRE_SERVICES=1, services.env sourced) is left as it is.
# Quiet when clean: ruff and mypy print only what they find (mypy: seconds once .mypy_cache exists).
lint: $(STAMP)
	@$(VENV)/bin/ruff check --quiet src tests bench
	@$(VENV)/bin/mypy --no-error-summary
test: $(STAMP) lint
	@if [ "$(SERVICES)" != 0 ] && [ -z "$$SINGKIT_TEST_AZURITE_CMD" ] && [ "$$(id -u)" = 0 ]; then \
	    echo "make test: installing and starting the test services (bash .ci/services.sh; SERVICES=0 skips this)" >&2; \
	    bash .ci/services.sh >/dev/null || echo "make test: .ci/services.sh failed (see above); tests that need its services skip" >&2; \
	fi; \
	if [ -z "$$SINGKIT_TEST_AZURITE_CMD" ] && [ -f .ci/services.env ]; then . ./.ci/services.env; fi; \
	$(VENV)/bin/pytest -q $(ARGS)
bench: $(STAMP)
	@status=0; for b in bench/bench_*.py; do echo "== $$b"; $(VENV)/bin/python $$b || status=1; done; exit $$status

# Mutants of the modules [tool.mutmut] in pyproject.toml names, each run against the fast unit tests
# listed there (minutes, not the suite); ends with the survivors per module. Not part of `make test`.
# `mutmut results --all true` says "    singkit.store.runlog.x_job_status__mutmut_3: survived";
# `mutmut show NAME` shows one mutant's diff.
mutate: $(STAMP)
	@$(VENV)/bin/mutmut run --max-children $(or $(JOBS),2); status=$$?; \
	$(VENV)/bin/mutmut results --all true | awk '{ n = split($$1, part, "."); module = part[1]; \
	    for (i = 2; i < n; i++) module = module "." part[i]; \
	    state = $$2; for (i = 3; i <= NF; i++) state = state " " $$i; seen[module]++; count[module, state]++ } \
	    END { for (m in seen) printf "mutate: %s: %d mutants, %d survived, %d killed, %d without a covering test\n", \
	          m, seen[m], count[m, "survived"], count[m, "killed"], count[m, "no tests"] }' | sort; exit $$status

# Build products only: everything here is made again by `make setup`, `image.render`, the report
# tasks or Python itself. The job store is not a build product (clean-store): wherever
# SINGKIT_HOME puts it (reports/store, .venv/x, …), a path that holds it or lies in it is kept.
clean:
	@store=$$(realpath -m '$(STORE)'); \
	for path in $(VENV) reports/*/ dockerfiles/*.Dockerfile build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache; do \
	    [ -e "$$path" ] || continue; \
	    full=$$(realpath -m "$$path"); \
	    case "$$store/" in "$$full"/*) echo "clean: kept $$path: it holds the job store $(STORE) (make clean-store deletes that)"; continue;; esac; \
	    case "$$full/" in "$$store"/*) echo "clean: kept $$path: it is in the job store $(STORE)"; continue;; esac; \
	    echo "rm -rf $$path"; rm -rf "$$path"; \
	done; \
	find "$$PWD" \( -path "$$store" -o -path "$$PWD/.singkit" -o -path "$$PWD/.git" \) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

# The job store holds every job's logs, metrics and outputs: deleting it is its own target, which
# says what it holds, then asks on a terminal, or needs CONFIRM=1 without one (scripts, CI).
# It refuses while a job is queued or running: `job.list` reads each job's status as singkit does
# (a run whose runner died is not live), and deleting the store under a live job would leave its
# processes running with no way to cancel them (job.cancel finds no job). The counts are the
# store's own (a dry run's runs count, though they have no folder).
STORE_USAGE = import json, shlex, sys; from singkit import fmt; \
  jobs = json.load(sys.stdin); \
  live = [j["job"] + " is " + j["status"] for j in jobs if j["status"] not in ("completed", "failed", "cancelled", "dry-run")]; \
  print("jobs=%d runs=%d size=%s" % (len(jobs), sum(j["runs_total"] for j in jobs), shlex.quote(fmt.nbytes(int(sys.argv[1]))))); \
  print("live=" + shlex.quote(", ".join(live))); \
  print("cancel=" + shlex.quote(", ".join("`invoke job.cancel %s`" % j.split()[0] for j in live)))
clean-store:
	@store='$(STORE)'; \
	if [ ! -d "$$store" ]; then echo "clean-store: no job store at $$store; nothing to delete"; exit 0; fi; \
	if [ ! -x $(SINGKIT) ]; then echo "clean-store: kept $$store: without $(SINGKIT) whether its jobs still run cannot be read; run \`make setup\` first" >&2; exit 2; fi; \
	usage=$$(SINGKIT_HOME="$$store" $(SINGKIT) job.list --json | $(VENV)/bin/python -c '$(STORE_USAGE)' "$$(du -sb "$$store" | cut -f1)" 2>/dev/null) \
	    || { echo "clean-store: kept $$store: the status of its jobs could not be read (\`invoke job.list\` says why)" >&2; exit 2; }; \
	eval "$$usage"; \
	if [ -n "$$live" ]; then echo "clean-store: kept $$store: $$live; cancel first ($$cancel) or wait until they end" >&2; exit 2; fi; \
	echo "clean-store: $$store holds $$jobs job(s), $$runs run(s), $$size: every job's logs, metrics and outputs"; \
	if [ "$(CONFIRM)" != 1 ]; then \
	    if [ ! -t 0 ]; then echo "clean-store: not deleted: no terminal to ask; run \`make clean-store CONFIRM=1\` to delete it" >&2; exit 2; fi; \
	    printf 'delete it? [y/N] '; read answer; \
	    case "$$answer" in y|Y|yes|YES) ;; *) echo "clean-store: kept $$store; nothing deleted"; exit 0;; esac; \
	fi; \
	rm -rf "$$store"; \
	echo "clean-store: deleted $$store: $$jobs job(s), $$runs run(s), $$size"
