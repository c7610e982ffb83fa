"""Answer a query pool with the victim's representations. Snakemake rule: dump_victim."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # the package, even when not pip-installed

from pathlib import Path

from sslsteal.backbones import load_encoder
from sslsteal.data import index_range, load_split
from sslsteal.dumps import write_dump
from sslsteal.io import file_sha256
from sslsteal.probe import representations
from sslsteal.runtime import configure_torch, logged_to

with logged_to(snakemake.log[0]) as log:
    device = configure_torch(snakemake.threads)
    query_set = snakemake.params.query_set
    encoder, meta = load_encoder(snakemake.input.encoder)
    images, _ = load_split(Path(snakemake.input.dataset).parent, query_set["split"])
    index = index_range(len(images), exclude_last=query_set.get("exclude_last", 0))
    answers = representations(encoder.to(device), images[index], device=device)
    write_dump(
        snakemake.output.dump,
        answers.numpy(),
        index,
        {
            "victim": snakemake.wildcards.victim,
            "query_set": snakemake.wildcards.query_set,
            "dataset": query_set["dataset"],
            "split": query_set["split"],
            "victim_config_hash": meta["config_hash"],
            "victim_image_size": meta["image_size"],
            "victim_in_channels": meta["in_channels"],
            "victim_checkpoint_sha256": file_sha256(snakemake.input.encoder),
        },
    )
    log.info("dumped %d answers of dimension %d", answers.shape[0], answers.shape[1])
