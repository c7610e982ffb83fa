"""Answer a query pool with the victim's representations (and projections, or the
answers to augmented views). Snakemake rules: dump_victim, dump_victim_views."""

import time
from pathlib import Path

from sslsteal.api import answer_query_set
from sslsteal.dumps import write_dump
from sslsteal.runtime import device_stats, configure_torch, logged_to

with logged_to(snakemake.log[0]) as log:
    device = configure_torch(snakemake.threads, snakemake.params.precision, snakemake.config.get("device", "auto"))
    query_set = snakemake.params.query_set
    dataset = snakemake.input.get("dataset")
    started = time.perf_counter()
    answers, index, info, projection = answer_query_set(
        snakemake.input.encoder,
        query_set,
        Path(dataset).parent if dataset else None,
        views=snakemake.params.get("views"),
        device=device,
        victim_hash=snakemake.params.victim_hash,
    )
    answered = answers.shape[0] * (answers.shape[1] if answers.ndim == 3 else 1)
    stats = device_stats(device, answered, time.perf_counter() - started)
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
    log.info("device %s: %s images/s (loading included), GPU peak memory %s MiB", stats["device"], stats["images_per_second"], stats["gpu_max_memory_mib"])
