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
) -> list[dict]:
    """Train ``modules`` with Adam + cosine schedule; return the per-epoch log.

    ``batch_loss(indices)`` computes the loss of one batch of item indices; everything
    method-specific (views, targets, heads) lives in it.
    """
    modules = list(modules)
    parameters = [p for m in modules for p in m.parameters()]
    optimiser = torch.optim.Adam(parameters, lr=lr, weight_decay=weight_decay)
    batch_size = min(batch_size, n_items)
    steps_per_epoch = n_items // batch_size if drop_last else -(-n_items // batch_size)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=max(1, epochs * steps_per_epoch))
    history = []
    for epoch in range(epochs):
        for m in modules:
            m.train()
        started = time.perf_counter()
        order = torch.randperm(n_items, generator=generator)
        total, count = 0.0, 0
        bar = tqdm(range(steps_per_epoch), desc=f"{description} epoch {epoch + 1}/{epochs}", mininterval=5)
        for step in bar:
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
        history.append(
            {
                "epoch": epoch + 1,
                "loss": total / max(count, 1),
                "lr": schedule.get_last_lr()[0],
                "seconds": round(time.perf_counter() - started, 3),
            }
        )
        print(f"{description} epoch {epoch + 1}: loss {history[-1]['loss']:.4f} ({history[-1]['seconds']:.1f}s)")
    for m in modules:
        m.eval()
    return history
