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

# CMD goes to the shell single-quoted and unexpanded, so quotes and $VARS reach the job as typed.
quoted_cmd = '$(subst ','\'',$(value CMD))'

.DEFAULT_GOAL := help
.PHONY: help setup submit wrap monitor status logs cancel list report plot html portal rerun extract summary errors test bench clean

help:
	@echo "make setup                      create .venv with singkit and its dev tools"
	@echo "make submit [TARGET=local] [CMD=...] [HP='lr=0.1,0.01 bs=32'] [DETACH=1]   submit a job and follow it"
	@echo "make wrap DOCKER=pytorch         render, build, validate, push and pin an image"
	@echo "make monitor|status|logs|cancel JOB=jobN"
	@echo "make list                        list jobs"
	@echo "make rerun JOB=jobN | make extract JOB=jobN [DEST=dir]"
	@echo "make report|plot|html JOB=jobN   run table, seaborn plots, HTML page under reports/"
	@echo "make portal JOB=jobN [ARGS=--browse]   Azure ML studio page of a Singularity job"
	@echo "make summary JOB=jobN | make errors [JOB=jobN]   sweep ranking; failed runs by error"
	@echo "make test | make bench"

setup: $(STAMP)
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --upgrade pip
	$(VENV)/bin/python -m pip install -q -e '.[dev]'
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
	$(SINGKIT) job.logs --job=$(JOB) $(if $(RUN),--run=$(RUN)) $(ARGS)
cancel: $(STAMP)
	$(SINGKIT) job.cancel --job=$(JOB) $(if $(RUN),--run=$(RUN)) $(ARGS)
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
	$(SINGKIT) job.portal --job=$(JOB) $(if $(RUN),--run=$(RUN)) $(ARGS)
summary: $(STAMP)
	$(SINGKIT) report.summary --job=$(JOB) $(ARGS)
errors: $(STAMP)
	$(SINGKIT) report.errors $(if $(JOB),--job=$(JOB)) $(ARGS)

test: $(STAMP)
	$(VENV)/bin/pytest -q $(ARGS)
bench: $(STAMP)
	@status=0; for b in bench/bench_*.py; do echo "== $$b"; $(VENV)/bin/python $$b || status=1; done; exit $$status

clean:
	rm -rf $(VENV) .singkit reports/*/ dockerfiles/*.Dockerfile
