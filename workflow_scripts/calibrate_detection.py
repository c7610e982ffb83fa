"""Calibrate the duplicate detector on legitimate queries. Snakemake rule: calibrate_detection.

The defender sends a stream of legitimate queries (a seeded sample of a split no attack
queries) through its own detector and keeps each query's score; the threshold for a
target false-positive rate is the score quantile that flags that share of the stream.
The scores stay in the record: they are the negatives of the detector's ROC curve.
"""

from pathlib import Path

import numpy as np
import torch

from sslsteal.backbones import load_encoder, representations
from sslsteal.defenses import calibrated_threshold, detector_view, similarity_to_earlier
from sslsteal.io import write_json
from sslsteal.queries import query_pool
from sslsteal.runtime import configure_torch, logged_to
from sslsteal.victim import victim_projector

with logged_to(snakemake.log[0]) as log:
    params = snakemake.params
    device = configure_torch(snakemake.threads, params.precision)
    encoder, meta = load_encoder(snakemake.input.encoder, expect={"config_hash": params.victim_hash})
    projector = victim_projector(meta)
    if projector is None:
        raise ValueError(f"{snakemake.input.encoder} has no projection head: the detector compares projections")
    calibration = params.calibration
    shape = (meta["in_channels"], meta["image_size"], meta["image_size"])
    pool, index = query_pool({"dataset": calibration["dataset"], "split": calibration["split"]}, Path(snakemake.input.dataset).parent, shape)
    if calibration["queries"] > len(pool):
        raise ValueError(
            f"defenses.detection.calibration.queries: {calibration['queries']} exceeds the "
            f"{len(pool)} {calibration['split']} images of {calibration['dataset']}"
        )
    # A random order: a legitimate user's queries arrive in no particular order.
    chosen = np.random.default_rng(calibration["seed"]).choice(len(pool), size=calibration["queries"], replace=False)
    answers = representations(encoder.to(device), pool[torch.from_numpy(chosen)], device=device)
    # The record keeps the scores to 7 decimals; the thresholds and flagged shares are
    # computed from those same rounded scores, so a reader recomputing a flagged share
    # from the record gets the recorded one exactly (with full-precision thresholds a
    # score within 1e-7 of one could land on the other side of it).
    scores = np.round(similarity_to_earlier(detector_view(answers, projector)).numpy().astype(np.float64), 7)
    thresholds = {f"{fpr:g}": calibrated_threshold(scores, fpr) for fpr in params.target_fprs}
    record = {
        "victim": snakemake.wildcards.victim,
        **calibration,
        "thresholds": thresholds,
        # The share of the calibration stream each threshold flags (at most the target).
        "flagged_fraction": {k: float((scores > t).mean()) for k, t in thresholds.items()},
        "images": [int(i) for i in index[chosen]],
        "scores": [float(s) for s in scores],
    }
    write_json(snakemake.output[0], record)
    log.info("calibrated on %d legitimate queries: thresholds %s", len(scores), thresholds)
