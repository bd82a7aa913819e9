"""singkit's invoke collections: config, image, job, report."""

from invoke import Collection

from singkit.tasks import config, image, job, report

ns = Collection()
for module in (config, image, job, report):
    ns.add_collection(Collection.from_module(module))
