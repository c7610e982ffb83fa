"""The one training loop every stage uses (victim SSL, extraction).

Short and direct, in the spirit of facebookresearch/simsiam: shuffle with an explicit
generator, one optimiser step per batch, a cosine learning-rate schedule whose period is
the number of *steps* (the authors' scripts stepped a per-batch period once per epoch),
a tqdm bar, and one log row per epoch. Its state can be saved every epoch or every N
steps and resumed exactly (``resumable``: a workflow job killed mid-way continues).
"""

from __future__ import annotations

import logging
import os
import signal
import time
from pathlib import Path
from typing import Callable, Iterable

import torch
from torch import nn
from tqdm import tqdm


def fit(
    modules: Iterable[nn.Module],
    n_items: int,
    batch_loss: Callable[[torch.Tensor], torch.Tensor],
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    weight_decay: float,
    generator: torch.Generator,
    description: str = "train",
    drop_last: bool = True,
    resume_from: dict | None = None,
    save_state: Callable[[dict], None] | None = None,
    save_every: int | None = None,
    optimiser_name: str = "adam",
    momentum: float = 0.9,
    steps: int | None = None,
) -> list[dict]:
    """Train ``modules`` with Adam (or SGD with momentum) and a cosine schedule; return
    the per-epoch log.

    ``batch_loss(indices)`` computes the loss of one batch of item indices; everything
    method-specific (views, targets, heads) lives in it. ``save_state`` receives
    everything needed to continue (weights, optimiser, schedule, the generator's state,
    the log, and mid-epoch the epoch's order of items and running loss) after every
    epoch, or when ``save_every`` is given after every that many optimiser steps, also
    mid-epoch; passing that dict back as ``resume_from`` continues exactly where it
    stopped, so a resumed run ends with the same weights and log as an uninterrupted one.

    ``steps``, when given, replaces ``epochs``: exactly that many optimiser steps (the
    last epoch cut short), whatever the number of items and the batch size, so runs that
    differ in those still get the same optimisation.
    """
    modules = list(modules)
    parameters = [p for m in modules for p in m.parameters()]
    if optimiser_name == "adam":
        optimiser = torch.optim.Adam(parameters, lr=lr, weight_decay=weight_decay)
    elif optimiser_name == "sgd":  # SimSiam's and Barlow Twins' own recipes use SGD
        optimiser = torch.optim.SGD(parameters, lr=lr, momentum=momentum, weight_decay=weight_decay)
    else:
        raise ValueError(f"unknown optimiser {optimiser_name!r}; known: adam, sgd")
    batch_size = min(batch_size, n_items)
    steps_per_epoch = n_items // batch_size if drop_last else -(-n_items // batch_size)
    if steps is not None:
        epochs = -(-steps // steps_per_epoch)
    total_steps = steps if steps is not None else epochs * steps_per_epoch
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=max(1, total_steps))
    history: list[dict] = []
    done = 0  # optimiser steps taken
    within = None  # a resumed epoch's order of items and running totals
    if resume_from is not None:
        for module, state in zip(modules, resume_from["modules"], strict=True):
            module.load_state_dict(state)
        optimiser.load_state_dict(resume_from["optimiser"])
        schedule.load_state_dict(resume_from["schedule"])
        generator.set_state(resume_from["generator"])
        history = list(resume_from["history"])
        done = resume_from.get("step", resume_from["epoch"] * steps_per_epoch)  # older states: epochs only
        within = resume_from.get("within_epoch")
        if within:
            print(f"{description}: resuming after step {done} of {total_steps} (in epoch {len(history) + 1})")
        else:
            print(f"{description}: resuming after epoch {len(history)} (step {done} of {total_steps})")

    def state(within_epoch: dict | None = None) -> dict:
        return {
            "epoch": len(history),
            "step": done,
            "within_epoch": within_epoch,
            "modules": [m.state_dict() for m in modules],
            "optimiser": optimiser.state_dict(),
            "schedule": schedule.state_dict(),
            "generator": generator.get_state(),
            "history": list(history),
        }

    for epoch in range(len(history), epochs):
        for m in modules:
            m.train()
        started = time.perf_counter()
        if within is None:
            within = {"order": torch.randperm(n_items, generator=generator), "total": 0.0, "count": 0, "seconds": 0.0}
        order, total, count = within["order"], within["total"], within["count"]
        first = done - epoch * steps_per_epoch
        bar = tqdm(range(first, steps_per_epoch), desc=f"{description} epoch {epoch + 1}/{epochs}", mininterval=5)
        for step in bar:
            if done >= total_steps:
                break  # the configured number of steps ends inside this epoch
            indices = order[step * batch_size : (step + 1) * batch_size]
            loss = batch_loss(indices)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"{description}: loss became {loss.item()} at epoch {epoch + 1}")
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
            total += loss.item() * len(indices)
            count += len(indices)
            done += 1
            epoch_ends = step == steps_per_epoch - 1 or done == total_steps
            if save_state is not None and save_every and done % save_every == 0 and not epoch_ends:
                seconds = within["seconds"] + time.perf_counter() - started
                save_state(state({"order": order, "total": total, "count": count, "seconds": seconds}))
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            torch.cuda.synchronize()  # the epoch's time includes its queued GPU work
        seconds = within["seconds"] + time.perf_counter() - started
        within = None
        row = {
            "epoch": epoch + 1,
            "loss": total / max(count, 1),
            "lr": schedule.get_last_lr()[0],
            "seconds": round(seconds, 3),
            # Items (images; for a victim, images of which it sees two views) per second.
            "images_per_second": round(count / seconds, 1) if seconds > 0 else None,
        }
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            row["gpu_max_memory_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
        history.append(row)
        gpu = f", GPU peak {row['gpu_max_memory_mib']:.0f} MiB" if "gpu_max_memory_mib" in row else ""
        print(
            f"{description} epoch {epoch + 1}: loss {row['loss']:.4f} ({row['seconds']:.1f}s, "
            f"{row['images_per_second']} images/s{gpu})"
        )
        if save_state is not None and (not save_every or done % save_every == 0):
            save_state(state())
    for m in modules:
        m.eval()
    return history


def resumable(partial: str | os.PathLike, fingerprint: str, log: logging.Logger, save_every: int | None = None) -> dict:
    """fit()'s ``resume_from``, ``save_state`` and ``save_every`` for a workflow job whose
    partial state lives in the file ``partial``.

    The file sits beside the job's outputs but is not one of them, so Snakemake's cleanup
    of an incomplete job (--rerun-incomplete, a SLURM retry) keeps it; it is written
    atomically and only resumed from when ``fingerprint`` (the job's config) made it. The
    job deletes it once its outputs are written. Fault injection for tests:
    SSLSTEAL_KILL_AFTER_EPOCH / SSLSTEAL_KILL_AFTER_STEP SIGKILL the job right after the
    state at that epoch's end / that optimiser step is saved.
    """
    from .errors import CheckpointError
    from .io import load_checkpoint, save_checkpoint

    partial = Path(partial)
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
    kill_after_epoch = os.environ.get("SSLSTEAL_KILL_AFTER_EPOCH")
    kill_after_step = os.environ.get("SSLSTEAL_KILL_AFTER_STEP")

    def save_state(state: dict) -> None:
        save_checkpoint(partial, fingerprint=fingerprint, **state)
        at_epoch = kill_after_epoch and state["within_epoch"] is None and state["epoch"] == int(kill_after_epoch)
        if at_epoch or (kill_after_step and state["step"] == int(kill_after_step)):
            os.kill(os.getpid(), signal.SIGKILL)

    return {"resume_from": resume_from, "save_state": save_state, "save_every": save_every}
