"""Verify a watermark on a suspect encoder. Snakemake rules: verify_watermark_*.

The verifier owns the watermarked victim (its secret head) and can query the suspect:
it sends held-out images, each rotated by a seeded random angle, applies the secret
head to the suspect's representations and counts how often it names the rotation's
half-turn. The watermark table tests that accuracy against the null of encoders that
never saw the victim (a binomial test against 50% would accuse innocents: their
representations carry some rotation information too).
"""

from pathlib import Path

import torch

from sslsteal.backbones import load_encoder, load_suspect, representations
from sslsteal.data import load_split
from sslsteal.io import write_json
from sslsteal.runtime import configure_torch, logged_to
from sslsteal.watermark import rotated_uint8, rotation_labels, victim_watermark_head

with logged_to(snakemake.log[0]) as log:
    params, wc = snakemake.params, snakemake.wildcards
    device = configure_torch(snakemake.threads, params.precision)
    _, meta = load_encoder(snakemake.input.watermarked, expect={"config_hash": params.victim_hash})
    head = victim_watermark_head(meta)
    if head is None:
        raise ValueError(f"{snakemake.input.watermarked} has no trained watermark head (recipe.watermark)")
    seed = int(wc.seed) if params.suspect_kind == "random_init" else None
    suspect, suspect_meta = load_suspect(params.suspect_kind, snakemake.input.get("suspect"), meta, params.suspect_hash, seed)
    verification = params.verification
    images, _ = load_split(Path(snakemake.input.dataset).parent, verification["split"])
    images = images[-verification["last"] :]
    angles = torch.rand(len(images), generator=torch.Generator().manual_seed(verification["seed"])) * 360.0
    answers = representations(suspect.to(device), rotated_uint8(images, angles), device=device)
    if answers.shape[1] != meta["representation_dim"]:
        raise ValueError(
            f"suspect {snakemake.input.suspect} returns {answers.shape[1]}-d representations; "
            f"the watermark head reads {meta['representation_dim']}-d"
        )
    with torch.no_grad():
        correct = int((head(answers).argmax(dim=1) == rotation_labels(angles)).sum())
    record = {
        "watermarked": wc.victim,
        "suspect_kind": params.suspect_kind,
        "suspect": getattr(wc, "suspect", wc.victim),
        "images": len(images),
        "correct": correct,
        "accuracy": correct / len(images),
    }
    if params.suspect_kind == "random_init":
        record["seed"] = int(wc.seed)
    for key in ("approach", "loss", "query_set", "budget", "queries", "api_calls", "seed"):
        if key in suspect_meta:
            record[key] = suspect_meta[key]
    write_json(snakemake.output[0], record)
    log.info("watermark accuracy %.4f on %s", record["accuracy"], snakemake.output[0])
