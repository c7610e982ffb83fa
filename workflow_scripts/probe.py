"""Linear probe of one encoder on one downstream set. Snakemake rules: probe_*."""

import time
from pathlib import Path

import torch

from sslsteal.backbones import load_encoder, random_init_encoder, representations
from sslsteal.defenses import B4B_SUMMARY, DETECTION, b4b_summary, defend, detection_scores, resolve_defense
from sslsteal.fidelity import fidelity
from sslsteal.io import write_json
from sslsteal.probe import PROTOCOL_KEYS, downstream_images, linear_probe, raw_pixels
from sslsteal.registry import HEADLESS_APPROACHES
from sslsteal.runtime import configure_torch, device_stats, logged_to, seed_everything
from sslsteal.victim import victim_projector

with logged_to(snakemake.log[0]) as log:
    started = time.perf_counter()
    kind = snakemake.params.encoder_kind
    downstream = snakemake.params.downstream
    recipe = snakemake.params.recipe
    # The repetition: draws the labelled subset, the cross-validation folds (and
    # random-init weights); probes with the same seed share them, so their results are
    # paired.
    seed = int(snakemake.wildcards.seed)
    device = configure_torch(snakemake.threads, snakemake.params.precision, snakemake.config.get("device", "auto"))
    generator = seed_everything(seed)
    root = Path(snakemake.input.dataset).parent
    train_images, train_labels, test_images, test_labels = downstream_images(root, downstream, seed, folds=recipe["folds"])

    record = {"encoder": kind, "downstream": snakemake.wildcards.downstream, "seed": seed}
    if kind == "raw_pixels":
        train_x, test_x = raw_pixels(train_images), raw_pixels(test_images)
    else:
        record["victim"] = snakemake.wildcards.victim
        if kind == "random_init":
            size = snakemake.params.image_size or train_images.shape[-1]
            encoder = random_init_encoder(snakemake.params.backbone, train_images.shape[1], size, seed)
        else:
            # The victim's (or its independent twin's) config hash, or a copy's record
            # of its victim's: made by this config?
            key = "config_hash" if kind in ("victim", "independent") else "victim_config_hash"
            encoder, meta = load_encoder(snakemake.input.encoder, expect={key: snakemake.params.victim_hash})
            for key in ("approach", "loss", "query_set", "budget", "queries", "api_calls", "steps", "temperature", "defense", "detection_threshold", *DETECTION, *B4B_SUMMARY):
                if key in meta and kind in ("stolen", "own_ssl"):
                    record[key] = meta[key]
            if "final_loss" in meta:
                record["train_loss"] = meta["final_loss"]  # the extraction's (or own SSL's) last epoch
            if kind == "own_ssl":
                record["approach"] = "own_ssl"
        encoder = encoder.to(device)
        encoding = time.perf_counter()
        train_x = representations(encoder, train_images, device=device)
        test_x = representations(encoder, test_images, device=device)
        defense = snakemake.params.get("defense")
        if defense:
            # The legitimate user behind a defended API: its train then test images are
            # one stream of queries; the probe sees only the answers it gets.
            spec = resolve_defense(defense, snakemake.input.get("calibration", []), snakemake.params.get("b4b"))
            if spec["kind"] == "b4b":
                spec = {**spec, "sybils": 1}  # a legitimate user is one account
            answers, _, flags = defend(
                torch.cat([train_x, test_x]),
                spec,
                torch.Generator().manual_seed(seed),
                projector=victim_projector(meta),
            )
            train_x, test_x = answers[: len(train_x)], answers[len(train_x) :]
            record["defense"] = defense
            if "flagged" in flags:
                record.update(detection_scores(flags["flagged"], flags["duplicate"]))
                record["detection_threshold"] = spec["threshold"]
            if "sigma" in flags:
                record.update(b4b_summary(flags))
        # Throughput of the frozen encoder's forward passes (the GPU part of a probe);
        # logged, not recorded: the record holds only what the config determines.
        stats = device_stats(device, len(train_images) + len(test_images), time.perf_counter() - encoding)
        log.info("device %s: %s images/s encoded, GPU peak memory %s MiB", stats["device"], stats["images_per_second"], stats["gpu_max_memory_mib"])
        if snakemake.input.get("victim") and not defense:
            # Fidelity to the victim on the probe's held-out test images; no cosine for
            # copies trained through a head (their basis is arbitrary), only for those
            # trained to equal the answers (HEADLESS_APPROACHES: the victim's basis).
            victim, _ = load_encoder(snakemake.input.victim, expect={"config_hash": snakemake.params.victim_hash})
            with_cosine = record.get("approach") is None or record["approach"] in HEADLESS_APPROACHES
            record.update(fidelity(test_x, representations(victim.to(device), test_images, device=device), cosine=with_cosine))
    protocol = {key: recipe[key] for key in PROTOCOL_KEYS}
    result = linear_probe(train_x, train_labels, test_x, test_labels, seed=seed, **protocol)
    record.update(result)
    # Times go to the log (and Snakemake's benchmark file), not into the record: same
    # config and seed give the same bytes, so a rebuilt record leaves the tables current.
    write_json(snakemake.output[0], record)
    log.info(
        "%s probe accuracy on %s: %.4f (L2 %g, train accuracy %.4f, %d L-BFGS iterations; %.1f s)",
        kind,
        snakemake.wildcards.downstream,
        result["accuracy"],
        result["l2"],
        result["train_accuracy"],
        result["solver_iterations"],
        time.perf_counter() - started,
    )
