"""Train one SSL victim. Snakemake rule: train_victim."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # the package, even when not pip-installed

import time
from pathlib import Path

import pandas as pd

from sslsteal.backbones import save_encoder
from sslsteal.data import load_split
from sslsteal.io import atomic_path, config_hash
from sslsteal.runtime import configure_torch, logged_to, seed_everything
from sslsteal.victim import train_simclr

with logged_to(snakemake.log[0]) as log:
    victim = snakemake.params.victim
    device = configure_torch(snakemake.threads)
    generator = seed_everything(snakemake.params.seed)
    images, _ = load_split(Path(snakemake.input.dataset).parent, "train")
    if victim.get("train_size"):
        images = images[: victim["train_size"]]
    log.info("training %s victim %s on %d images", victim["method"], snakemake.wildcards.victim, len(images))
    started = time.perf_counter()
    encoder, head, history = train_simclr(images, victim["backbone"], victim["recipe"], generator, device)
    wall = time.perf_counter() - started
    save_encoder(
        snakemake.output.encoder,
        encoder.cpu(),
        victim["backbone"],
        images.shape[1],
        images.shape[-1],
        head=head.cpu().state_dict(),
        victim=snakemake.wildcards.victim,
        config=victim,
        config_hash=config_hash(victim),
        seed=snakemake.params.seed,
        train_seconds=wall,
    )
    with atomic_path(snakemake.output.train_log) as tmp:
        pd.DataFrame(history).to_csv(tmp, sep="\t", index=False)
    log.info("done in %.1fs, final loss %.4f", wall, history[-1]["loss"])
