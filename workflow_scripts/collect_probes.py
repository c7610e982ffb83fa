"""Gather one victim's probe results into a CSV. Snakemake rule: collect_probes."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # the package, even when not pip-installed

from sslsteal.io import atomic_path
from sslsteal.runtime import logged_to
from sslsteal.tables import collect

with logged_to(snakemake.log[0]) as log:
    paths = [snakemake.input.victim, snakemake.input.random_init, snakemake.input.raw_pixels, *snakemake.input.stolen]
    probes = collect(paths)
    with atomic_path(snakemake.output[0]) as tmp:
        probes.to_csv(tmp, index=False)
    log.info("collected %d probe results", len(probes))
