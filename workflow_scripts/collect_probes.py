"""Gather one victim's probe results into a CSV. Snakemake rules: collect_probes, collect_defense_probes."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # the package, even when not pip-installed

from sslsteal.io import atomic_path
from sslsteal.runtime import logged_to
from sslsteal.tables import collect

with logged_to(snakemake.log[0]) as log:
    paths = list(snakemake.input)  # every probe JSON the rule lists, in its order
    probes = collect(paths)
    with atomic_path(snakemake.output[0]) as tmp:
        probes.to_csv(tmp, index=False)
    log.info("collected %d probe results", len(probes))
