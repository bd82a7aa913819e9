# Thin targets over the invoke tasks; `make help` lists them. Every target sets up .venv first.
PYTHON ?= python3
VENV   := .venv
STAMP  := $(VENV)/.singkit-setup
INVOKE := $(VENV)/bin/invoke

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
	$(INVOKE) job.submit --target=$(TARGET) $(if $(value CMD),--cmd=$(quoted_cmd)) $(foreach h,$(HP),--hp=$(h)) $(if $(DETACH),,--follow) $(ARGS)
wrap: $(STAMP)
	$(INVOKE) image.wrap --docker=$(DOCKER) $(ARGS)
monitor: $(STAMP)
	$(INVOKE) job.monitor --job=$(JOB) $(ARGS)
status: $(STAMP)
	$(INVOKE) job.status --job=$(JOB) $(ARGS)
logs: $(STAMP)
	$(INVOKE) job.logs --job=$(JOB) $(if $(RUN),--run=$(RUN)) $(ARGS)
cancel: $(STAMP)
	$(INVOKE) job.cancel --job=$(JOB) $(if $(RUN),--run=$(RUN)) $(ARGS)
rerun: $(STAMP)
	$(INVOKE) job.rerun --job=$(JOB) $(ARGS)
extract: $(STAMP)
	$(INVOKE) job.extract --job=$(JOB) --dest=$(or $(DEST),extracted/$(JOB)) $(ARGS)
list: $(STAMP)
	$(INVOKE) job.list $(ARGS)
report: $(STAMP)
	$(INVOKE) report.list --runs $(if $(JOB),--job=$(JOB)) $(ARGS)
plot: $(STAMP)
	$(INVOKE) report.plot --job=$(JOB) $(ARGS)
html: $(STAMP)
	$(INVOKE) report.html --job=$(JOB) $(ARGS)
portal: $(STAMP)
	$(INVOKE) job.portal --job=$(JOB) $(if $(RUN),--run=$(RUN)) $(ARGS)
summary: $(STAMP)
	$(INVOKE) report.summary --job=$(JOB) $(ARGS)
errors: $(STAMP)
	$(INVOKE) report.errors $(if $(JOB),--job=$(JOB)) $(ARGS)

test: $(STAMP)
	$(VENV)/bin/pytest -q $(ARGS)
bench: $(STAMP)
	@status=0; for b in bench/bench_*.py; do echo "== $$b"; $(VENV)/bin/python $$b || status=1; done; exit $$status

clean:
	rm -rf $(VENV) .singkit reports/*/ dockerfiles/*.Dockerfile
