"""The runtime under the backends: what runs a job's command, on this machine or in a job.

- `workdir`: the job's code folder, each run's paths, environment, shell and command line (the
  local and docker backends use it as is; the Singularity backend stages the same for Azure ML);
- `setup`: a setup record's steps as shell lines, for every backend alike;
- `variables`: the variables singkit gives a run (hparams) and the ones it withholds (credentials);
- `runner`: the detached runner of an embedded (local/docker) job, `python -m singkit.backends.runtime.runner`.

It sits in the backends layer, below the submit pipeline (singkit.jobs) that drives them.
"""
