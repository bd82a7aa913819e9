"""What singkit knows about Singularity itself, with no azure import: the instance-type
catalog (catalog.py), the AISuperComputer keys (aisc.py), how a target resolves into what
a job sends (target.py) and which GPU vendor a wrapped image is for (accelerator.py). config.validate and the Singularity backend both build on it."""
