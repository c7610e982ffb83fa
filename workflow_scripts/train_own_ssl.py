"""The attacker's own SSL, no API: the victim's method and recipe on exactly the first
``budget`` images of the query set, for the extraction's number of optimiser steps with
the extraction's images per step (``config.own_ssl_batch_size``). Snakemake rule:
train_own_ssl."""

import time
from pathlib import Path

import pandas as pd

from sslsteal.backbones import save_encoder
from sslsteal.dumps import read_dump
from sslsteal.io import atomic_path, config_hash
from sslsteal.queries import answered_pool
from sslsteal.runtime import configure_torch, logged_to, seed_everything
from sslsteal.training import resumable
from sslsteal.victim import train_victim

with logged_to(snakemake.log[0]) as log:
    wc = snakemake.wildcards
    budget, seed = int(wc.budget), int(wc.seed)
    victim = snakemake.params.victim
    device = configure_torch(snakemake.threads, snakemake.params.precision, snakemake.config.get("device", "auto"))
    generator = seed_everything(seed)
    # The API's input format and the checksum of the queries, nothing it answered.
    meta = read_dump(
        snakemake.input.dump,
        expect={"victim": wc.victim, "query_set": wc.query_set, "victim_config_hash": snakemake.params.victim_hash},
    ).meta
    dataset = snakemake.input.get("dataset")
    pool = answered_pool(snakemake.params.query_set, Path(dataset).parent if dataset else None, meta, snakemake.input.dump)
    size, channels = meta["victim_image_size"], meta["victim_in_channels"]
    if budget > len(pool):
        raise ValueError(f"budget {budget} exceeds the {len(pool)} images of query set {wc.query_set}")
    from sslsteal.preprocessing import model_input

    images = pool[:budget]
    if images.shape[-1] != size:
        # Out-of-distribution pools are resized to the victim's input, as the API would
        # (model_input: [0, 1]).
        images = (model_input(images, size).clamp(0, 1) * 255).round().to(pool.dtype)
    # Resumable as an extraction is (workflow_scripts/extract.py): its state every
    # extraction.checkpoint_every_steps steps, reused only by this job's config and queries.
    fingerprint = config_hash(
        {"cell": dict(wc.items()), "params": dict(snakemake.params.items()), "threads": snakemake.threads,
         "queries": meta}
    )
    partial = Path(snakemake.output.encoder).with_name("partial_state.pt")
    checkpoint = resumable(partial, fingerprint, log, snakemake.config["extraction"]["checkpoint_every_steps"])
    started = time.perf_counter()
    # The victim's recipe but the extraction's images per step: same steps, same images.
    recipe = {**victim["recipe"], "batch_size": snakemake.params.batch_size}
    encoder, _, history = train_victim(
        victim["method"], images, victim["backbone"], recipe, generator, device, steps=snakemake.params.steps,
        **checkpoint,
    )
    save_encoder(
        snakemake.output.encoder,
        encoder.cpu(),
        victim["backbone"],
        channels,
        size,
        victim=wc.victim,
        method=victim["method"],
        query_set=wc.query_set,
        budget=budget,
        queries=0,
        api_calls=0,
        steps=snakemake.params.steps,
        batch_size=snakemake.params.batch_size,
        final_loss=history[-1]["loss"],
        seed=seed,
        victim_config_hash=snakemake.params.victim_hash,
    )
    with atomic_path(snakemake.output.train_log) as tmp:
        pd.DataFrame(history).to_csv(tmp, sep="\t", index=False)
    partial.unlink(missing_ok=True)
    log.info("own SSL (%s) on %d query images, %d steps, in %.1fs", victim["method"], budget, snakemake.params.steps, time.perf_counter() - started)
