"""Train one SSL victim, resuming from its last finished epoch. Snakemake rule: train_victim."""

import time
from pathlib import Path

import pandas as pd

from sslsteal.backbones import save_encoder
from sslsteal.data import load_split
from sslsteal.io import atomic_path, config_hash
from sslsteal.runtime import device_stats, configure_torch, logged_to, seed_everything
from sslsteal.training import resumable
from sslsteal.victim import train_victim

with logged_to(snakemake.log[0]) as log:
    victim = snakemake.params.victim
    fingerprint = config_hash(
        {"victim": victim, "seed": snakemake.params.seed, "threads": snakemake.threads, "precision": snakemake.params.precision}
    )
    device = configure_torch(snakemake.threads, snakemake.params.precision, snakemake.config.get("device", "auto"))
    generator = seed_everything(snakemake.params.seed)
    # STL10 victims train on its 100K unlabeled images (the paper); others on "train".
    images, _ = load_split(Path(snakemake.input.dataset).parent, victim.get("train_split", "train"))
    if victim.get("train_size"):
        images = images[: victim["train_size"]]

    # The per-epoch state lives outside the rule's outputs, so Snakemake's cleanup of
    # an incomplete job (--rerun-incomplete) keeps it; it is only reused when it was
    # made by this exact victim config, seed and thread count.
    partial = Path(snakemake.output.encoder).with_name("partial_state.pt")
    checkpoint = resumable(partial, fingerprint, log)
    resume_from = checkpoint["resume_from"]

    log.info("training %s victim %s on %d images", victim["method"], snakemake.wildcards.victim, len(images))
    started = time.perf_counter()
    encoder, heads, history = train_victim(
        victim["method"], images, victim["backbone"], victim["recipe"], generator, device, **checkpoint
    )
    wall = time.perf_counter() - started
    trained = sum(row["seconds"] for row in history if row["epoch"] > (resume_from or {}).get("epoch", 0))
    epochs_run = len(history) - (resume_from or {}).get("epoch", 0)
    stats = device_stats(device, len(images) * epochs_run, trained)
    log.info("device %s: %s images/s (two views each), GPU peak memory %s MiB", stats["device"], stats["images_per_second"], stats["gpu_max_memory_mib"])
    save_encoder(
        snakemake.output.encoder,
        encoder.cpu(),
        victim["backbone"],
        images.shape[1],
        images.shape[-1],
        heads={name: head.cpu().state_dict() for name, head in heads.items()},
        victim=snakemake.wildcards.victim,
        method=victim["method"],
        config=victim,
        config_hash=config_hash(victim),
        seed=snakemake.params.seed,
    )
    with atomic_path(snakemake.output.train_log) as tmp:
        pd.DataFrame(history).to_csv(tmp, sep="\t", index=False)
    partial.unlink()
    log.info("done in %.1fs (this run), final loss %.4f", wall, history[-1]["loss"])
