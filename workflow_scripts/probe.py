"""Linear probe of one encoder on one downstream set. Snakemake rules: probe_*."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # the package, even when not pip-installed

import time
from pathlib import Path

import torch

from sslsteal.backbones import build_encoder, load_encoder
from sslsteal.data import load_split
from sslsteal.defenses import DETECTION, defend, detection_scores, parse_defense
from sslsteal.fidelity import fidelity
from sslsteal.io import write_json
from sslsteal.probe import linear_probe, raw_pixels, representations, subset
from sslsteal.runtime import configure_torch, device_stats, logged_to, seed_everything
from sslsteal.victim import victim_projector

with logged_to(snakemake.log[0]) as log:
    started = time.perf_counter()
    kind = snakemake.params.encoder_kind
    downstream = snakemake.params.downstream
    recipe = snakemake.params.recipe
    seed = snakemake.params.seed
    device = configure_torch(snakemake.threads, snakemake.params.precision, snakemake.config.get("device", "auto"))
    generator = seed_everything(seed)
    root = Path(snakemake.input.dataset).parent
    train_images, train_labels = load_split(root, downstream["train_split"])
    test_images, test_labels = load_split(root, downstream["test_split"])
    keep = subset(len(train_images), downstream.get("train_size"), seed)
    train_images, train_labels = train_images[keep], train_labels[keep]
    if downstream.get("test_last"):
        test_images, test_labels = test_images[-downstream["test_last"] :], test_labels[-downstream["test_last"] :]

    record = {"encoder": kind, "downstream": snakemake.wildcards.downstream, "seed": seed}
    if kind == "raw_pixels":
        train_x, test_x = raw_pixels(train_images), raw_pixels(test_images)
    else:
        if kind == "random_init":
            size = snakemake.params.image_size or train_images.shape[-1]
            encoder = build_encoder(snakemake.params.backbone, train_images.shape[1], size)
            record["victim"] = snakemake.wildcards.victim
        else:
            # The victim's, or the stolen copy's record of its victim: made by this config?
            key = "config_hash" if kind == "victim" else "victim_config_hash"
            encoder, meta = load_encoder(snakemake.input.encoder, expect={key: snakemake.params.victim_hash})
            for key in ("victim", "method", "loss", "query_set", "budget", "queries", "api_calls", "defense", *DETECTION):
                if key in meta:
                    record[key] = meta[key]
        encoder = encoder.to(device)
        encoding = time.perf_counter()
        train_x = representations(encoder, train_images, device=device)
        test_x = representations(encoder, test_images, device=device)
        defense = snakemake.params.get("defense")
        if defense:
            # The legitimate user behind a defended API: its train then test images are
            # one stream of queries; the probe sees only the answers it gets.
            answers, _, flags = defend(
                torch.cat([train_x, test_x]),
                parse_defense(defense),
                torch.Generator().manual_seed(seed),
                projector=victim_projector(meta),
            )
            train_x, test_x = answers[: len(train_x)], answers[len(train_x) :]
            record["defense"] = defense
            if flags:
                record.update(detection_scores(flags["flagged"], flags["duplicate"]))
        # Throughput of the frozen encoder's forward passes (the GPU part of a probe);
        # logged, not recorded: the record holds only what the config determines.
        stats = device_stats(device, len(train_images) + len(test_images), time.perf_counter() - encoding)
        log.info("device %s: %s images/s encoded, GPU peak memory %s MiB", stats["device"], stats["images_per_second"], stats["gpu_max_memory_mib"])
        if kind == "stolen":
            victim, _ = load_encoder(snakemake.input.victim, expect={"config_hash": snakemake.params.victim_hash})
            record.update(fidelity(test_x, representations(victim.to(device), test_images, device=device)))
    result = linear_probe(
        train_x,
        train_labels,
        test_x,
        test_labels,
        epochs=recipe["epochs"],
        batch_size=recipe["batch_size"],
        lr=recipe["lr"],
        weight_decay=recipe.get("weight_decay", 0.0),
        generator=generator,
    )
    record.update(result)
    # Times go to the log (and Snakemake's benchmark file), not into the record: same
    # config and seed give the same bytes, so a rebuilt record leaves the tables current.
    write_json(snakemake.output[0], record)
    log.info(
        "%s probe accuracy on %s: %.4f (%.1f s)",
        kind,
        snakemake.wildcards.downstream,
        result["accuracy"],
        time.perf_counter() - started,
    )
