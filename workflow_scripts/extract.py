"""Steal the victim's encoder from its answers. Snakemake rules: extract, extract_defended."""

import time
from pathlib import Path

import pandas as pd

from sslsteal.backbones import save_encoder
from sslsteal.defenses import b4b_summary, detection_scores
from sslsteal.dumps import read_dump
from sslsteal.extraction import steal
from sslsteal.io import atomic_path, config_hash, file_sha256
from sslsteal.queries import answered_pool
from sslsteal.runtime import device_stats, configure_torch, logged_to, seed_everything
from sslsteal.training import resumable

with logged_to(snakemake.log[0]) as log:
    wc = snakemake.wildcards
    budget = int(wc.budget)
    device = configure_torch(snakemake.threads, snakemake.params.precision, snakemake.config.get("device", "auto"))
    seed = int(wc.seed)  # the repetition: the stolen encoder's weights and batches
    generator = seed_everything(seed)
    dump = read_dump(
        snakemake.input.dump,
        expect={"victim": wc.victim, "query_set": wc.query_set, "victim_config_hash": snakemake.params.victim_hash},
    )
    if budget > dump.meta["n"]:
        raise ValueError(f"budget {budget} exceeds the {dump.meta['n']} answers in {snakemake.input.dump}")
    # The attacker's own query images, rebuilt from the config: exactly those answered.
    dataset = snakemake.input.get("dataset")
    pool = answered_pool(snakemake.params.query_set, Path(dataset).parent if dataset else None, dump.meta, snakemake.input.dump)
    size, channels = dump.meta["victim_image_size"], dump.meta["victim_in_channels"]
    options = dict(snakemake.params.loss_options)
    lr, batch_size = options.pop("lr"), options.pop("batch_size")
    # The training state, saved every extraction.checkpoint_every_steps steps beside the
    # outputs but not one of them (Snakemake's cleanup of a killed job keeps it), and
    # resumed only by this cell's config, answers and thread count. The interval is read
    # from the config, not the params: it changes no result, so changing it reruns nothing.
    fingerprint = config_hash(
        {"cell": dict(wc.items()), "params": dict(snakemake.params.items()), "threads": snakemake.threads,
         "dump": file_sha256(snakemake.input.dump)}
    )
    partial = Path(snakemake.output.encoder).with_name("partial_state.pt")
    checkpoint = resumable(partial, fingerprint, log, snakemake.config["extraction"]["checkpoint_every_steps"])
    started = time.perf_counter()
    # The budget is the first N images of the pool, so a smaller budget is a prefix.
    stolen, history, accounting = steal(
        wc.approach,
        pool,
        dump,
        budget,
        loss=wc.loss,
        loss_options=options,
        approach_options=snakemake.params.approach_options,
        backbone=snakemake.params.backbone,
        steps=snakemake.params.steps,
        batch_size=batch_size,
        lr=lr,
        weight_decay=snakemake.params.weight_decay,
        generator=generator,
        device=device,
        checkpoint=checkpoint,
    )
    wall = time.perf_counter() - started
    if "flagged" in dump.extra:
        # What the duplicate detector caught among the calls this budget made.
        calls = (slice(None), slice(0, budget)) if dump.representation.ndim == 3 else slice(0, budget)
        accounting.update(detection_scores(dump.extra["flagged"][calls], dump.extra["duplicate"][calls]))
    if "sigma" in dump.extra:
        # B4B's noise on the calls this budget made, and the accounts' coverage.
        calls = (slice(None), slice(0, budget)) if dump.representation.ndim == 3 else slice(0, budget)
        accounting.update(b4b_summary({name: dump.extra[name][calls] for name in ("account", "coverage", "sigma")}))
    if "defense" in dump.meta:
        accounting["defense"] = dump.meta["defense"]
    if "detection_threshold" in dump.meta:
        accounting["detection_threshold"] = dump.meta["detection_threshold"]
    # Images through the stolen encoder: a batch per optimiser step.
    stats = device_stats(device, snakemake.params.steps * min(batch_size, accounting["api_calls"]), wall)
    steal_rows = [row for row in history if row.get("phase", "steal") == "steal"]
    save_encoder(
        snakemake.output.encoder,
        stolen.cpu(),
        snakemake.params.backbone,
        channels,
        size,
        victim=wc.victim,
        approach=wc.approach,
        loss=wc.loss,
        query_set=wc.query_set,
        budget=budget,
        **accounting,
        # The training loss of the last epoch: a cell that stopped far from its
        # optimum shows it here.
        final_loss=steal_rows[-1]["loss"],
        seed=seed,
        victim_checkpoint_sha256=dump.meta.get("victim_checkpoint_sha256", ""),
        victim_config_hash=snakemake.params.victim_hash,
    )
    with atomic_path(snakemake.output.train_log) as tmp:
        pd.DataFrame(history).to_csv(tmp, sep="\t", index=False)
    partial.unlink(missing_ok=True)
    log.info("stole (%s, %s) from %d queries, %d API calls, in %.1fs", wc.approach, wc.loss, budget, accounting["api_calls"], wall)
    log.info("device %s: %s images/s, GPU peak memory %s MiB", stats["device"], stats["images_per_second"], stats["gpu_max_memory_mib"])
