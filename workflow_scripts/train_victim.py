"""Train one SSL victim, resuming from its last finished epoch. Snakemake rule: train_victim."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # the package, even when not pip-installed

import os
import signal
import time
from pathlib import Path

import pandas as pd

from sslsteal.backbones import save_encoder
from sslsteal.data import load_split
from sslsteal.io import CheckpointError, atomic_path, config_hash, load_checkpoint, save_checkpoint
from sslsteal.runtime import configure_torch, logged_to, seed_everything
from sslsteal.victim import train_victim

with logged_to(snakemake.log[0]) as log:
    victim = snakemake.params.victim
    fingerprint = config_hash(
        {"victim": victim, "seed": snakemake.params.seed, "threads": snakemake.threads, "precision": snakemake.params.precision}
    )
    device = configure_torch(snakemake.threads, snakemake.params.precision)
    generator = seed_everything(snakemake.params.seed)
    images, _ = load_split(Path(snakemake.input.dataset).parent, "train")
    if victim.get("train_size"):
        images = images[: victim["train_size"]]

    # The per-epoch state lives outside the rule's outputs, so Snakemake's cleanup of
    # an incomplete job (--rerun-incomplete) keeps it; it is only reused when it was
    # made by this exact victim config, seed and thread count.
    partial = Path(snakemake.output.encoder).with_name("partial_state.pt")
    resume_from = None
    if partial.exists():
        try:
            state = load_checkpoint(partial)
            if state.get("fingerprint") == fingerprint:
                resume_from = state
            else:
                log.info("ignoring %s: made by another config", partial)
        except CheckpointError as err:
            log.warning("ignoring unreadable %s: %s", partial, err)
    kill_after = int(os.environ.get("SSLSTEAL_KILL_AFTER_EPOCH", 0))  # fault injection for tests

    def save_state(state):
        save_checkpoint(partial, fingerprint=fingerprint, **state)
        if state["epoch"] == kill_after:
            os.kill(os.getpid(), signal.SIGKILL)

    log.info("training %s victim %s on %d images", victim["method"], snakemake.wildcards.victim, len(images))
    started = time.perf_counter()
    encoder, heads, history = train_victim(
        victim["method"], images, victim["backbone"], victim["recipe"], generator, device, resume_from, save_state
    )
    wall = time.perf_counter() - started
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
