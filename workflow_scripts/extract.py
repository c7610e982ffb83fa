"""Steal the victim's encoder from its answers. Snakemake rule: extract."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # the package, even when not pip-installed

import time
from pathlib import Path

import pandas as pd

from sslsteal.backbones import save_encoder
from sslsteal.data import load_split
from sslsteal.dumps import read_dump
from sslsteal.extraction import steal_direct
from sslsteal.io import atomic_path
from sslsteal.runtime import configure_torch, logged_to, seed_everything

with logged_to(snakemake.log[0]) as log:
    wc = snakemake.wildcards
    budget = int(wc.budget)
    device = configure_torch(snakemake.threads)
    generator = seed_everything(snakemake.params.seed)
    dump = read_dump(snakemake.input.dump, expect={"victim": wc.victim, "query_set": wc.query_set})
    if budget > dump.meta["n"]:
        raise ValueError(f"budget {budget} exceeds the {dump.meta['n']} answers in {snakemake.input.dump}")
    images, _ = load_split(Path(snakemake.input.dataset).parent, dump.meta["split"])
    # The budget is the first N queries of the pool, so a smaller budget is a prefix.
    query_images = images[dump.index[:budget]]
    answers = dump.representation[:budget]
    options = dict(snakemake.params.loss_options)
    lr, batch_size = options.pop("lr"), options.pop("batch_size")
    started = time.perf_counter()
    stolen, history = steal_direct(
        query_images,
        answers,
        loss=wc.loss,
        loss_options=options,
        backbone=snakemake.params.backbone,
        epochs=snakemake.params.epochs,
        batch_size=batch_size,
        lr=lr,
        weight_decay=snakemake.params.weight_decay,
        generator=generator,
        device=device,
        image_size=dump.meta.get("victim_image_size"),
    )
    wall = time.perf_counter() - started
    save_encoder(
        snakemake.output.encoder,
        stolen.cpu(),
        snakemake.params.backbone,
        query_images.shape[1],
        stolen.image_size,
        victim=wc.victim,
        method=wc.method,
        loss=wc.loss,
        query_set=wc.query_set,
        budget=budget,
        queries=budget,
        api_calls=budget,
        seed=snakemake.params.seed,
        train_seconds=wall,
        victim_checkpoint_sha256=dump.meta.get("victim_checkpoint_sha256", ""),
    )
    with atomic_path(snakemake.output.train_log) as tmp:
        pd.DataFrame(history).to_csv(tmp, sep="\t", index=False)
    log.info("stole with %s from %d queries in %.1fs", wc.loss, budget, wall)
