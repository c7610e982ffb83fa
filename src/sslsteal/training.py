"""The one training loop every stage uses (victim SSL, extraction).

Short and direct, in the spirit of facebookresearch/simsiam: shuffle with an explicit
generator, one optimiser step per batch, a cosine learning-rate schedule whose period is
the number of *steps* (the authors' scripts stepped a per-batch period once per epoch),
a tqdm bar, and one log row per epoch.
"""

from __future__ import annotations

import time
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
    optimiser_name: str = "adam",
    momentum: float = 0.9,
    steps: int | None = None,
) -> list[dict]:
    """Train ``modules`` with Adam (or SGD with momentum) and a cosine schedule; return
    the per-epoch log.

    ``batch_loss(indices)`` computes the loss of one batch of item indices; everything
    method-specific (views, targets, heads) lives in it. After every epoch
    ``save_state`` receives everything needed to continue (weights, optimiser, schedule,
    the generator's state, the log); passing that dict back as ``resume_from`` continues
    exactly where it stopped, so a resumed run ends with the same weights as an
    uninterrupted one.

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
    first_epoch = 0
    if resume_from is not None:
        for module, state in zip(modules, resume_from["modules"], strict=True):
            module.load_state_dict(state)
        optimiser.load_state_dict(resume_from["optimiser"])
        schedule.load_state_dict(resume_from["schedule"])
        generator.set_state(resume_from["generator"])
        history = list(resume_from["history"])
        first_epoch = resume_from["epoch"]
        print(f"{description}: resuming after epoch {first_epoch}")
    for epoch in range(first_epoch, epochs):
        for m in modules:
            m.train()
        started = time.perf_counter()
        order = torch.randperm(n_items, generator=generator)
        total, count = 0.0, 0
        bar = tqdm(range(steps_per_epoch), desc=f"{description} epoch {epoch + 1}/{epochs}", mininterval=5)
        for step in bar:
            if epoch * steps_per_epoch + step >= total_steps:
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
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            torch.cuda.synchronize()  # the epoch's time includes its queued GPU work
        seconds = time.perf_counter() - started
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
        if save_state is not None:
            save_state(
                {
                    "epoch": epoch + 1,
                    "modules": [m.state_dict() for m in modules],
                    "optimiser": optimiser.state_dict(),
                    "schedule": schedule.state_dict(),
                    "generator": generator.get_state(),
                    "history": history,
                }
            )
    for m in modules:
        m.eval()
    return history
