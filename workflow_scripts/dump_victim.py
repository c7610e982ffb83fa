"""Answer a query pool with the victim's representations (and projections, or the
answers to augmented views). Snakemake rules: dump_victim, dump_victim_views."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # the package, even when not pip-installed

from pathlib import Path

from sslsteal.api import answer_query_set
from sslsteal.dumps import write_dump
from sslsteal.runtime import configure_torch, logged_to

with logged_to(snakemake.log[0]) as log:
    device = configure_torch(snakemake.threads, snakemake.params.precision)
    query_set = snakemake.params.query_set
    dataset = snakemake.input.get("dataset")
    answers, index, info, projection = answer_query_set(
        snakemake.input.encoder,
        query_set,
        Path(dataset).parent if dataset else None,
        views=snakemake.params.get("views"),
        device=device,
        victim_hash=snakemake.params.victim_hash,
    )
    meta = {
        "victim": snakemake.wildcards.victim,
        "query_set": snakemake.wildcards.query_set,
        "dataset": query_set.get("dataset", "uniform_noise"),
        "split": query_set.get("split", ""),
        **info,
    }
    write_dump(
        snakemake.output.dump,
        answers.numpy(),
        index,
        meta,
        projection=None if projection is None else projection.numpy(),
    )
    log.info("dumped %s answers of dimension %d", tuple(answers.shape[:-1]), answers.shape[-1])
