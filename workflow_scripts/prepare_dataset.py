"""Prepare one dataset (mirrors first, then download). Snakemake rule: prepare_dataset."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # the package, even when not pip-installed

from pathlib import Path

from sslsteal.data import prepare_dataset
from sslsteal.runtime import logged_to

with logged_to(snakemake.log[0]) as log:
    root = Path(snakemake.output[0]).parent
    manifest = prepare_dataset(snakemake.wildcards.dataset, root, snakemake.params.options)
    log.info("prepared %s from %s: %s", snakemake.wildcards.dataset, manifest["source"], manifest["splits"])
