"""Prepare one dataset (mirrors first, then download). Snakemake rule: prepare_dataset."""

from pathlib import Path

from sslsteal.data import prepare_dataset
from sslsteal.runtime import logged_to

with logged_to(snakemake.log[0]) as log:
    root = Path(snakemake.output[0]).parent
    dataset = snakemake.wildcards.get("dataset", "imagenet")  # prepare_imagenet has no wildcard
    # Decoding workers (ImageNet): the job's threads.
    manifest = prepare_dataset(dataset, root, snakemake.params.options, workers=snakemake.threads)
    log.info("prepared %s from %s: %s", dataset, manifest["source"], manifest["splits"])
