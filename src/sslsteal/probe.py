"""Linear evaluation (PAPER.md, "Linear evaluation"): the metric of every encoder.

The encoder is frozen *in eval mode* (the authors' probe left BatchNorm in train mode),
its representation of every image is computed once, and a single linear layer is
trained on it with Adam. Features are standardised with the probe-training set's mean
and standard deviation first: an affine map composed with a linear layer is still one
linear layer, and it makes one optimiser setting fit every encoder, raw pixels included.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .data import model_input, normalise, to_float
from .runtime import to_device
from .training import fit


@torch.no_grad()
def representations(
    encoder: nn.Module, images: torch.Tensor, batch_size: int = 1024, device: torch.device = torch.device("cpu")
) -> torch.Tensor:
    """The frozen encoder's representation of uint8 ``images`` (eval mode, no grad)."""
    encoder.eval()
    size = getattr(encoder, "image_size", None)
    out = [
        encoder(model_input(to_device(images[i : i + batch_size], device), size)).float().cpu()
        for i in range(0, len(images), batch_size)
    ]
    return torch.cat(out)


def raw_pixels(images: torch.Tensor) -> torch.Tensor:
    """The raw-pixel baseline's 'representation': the flattened image."""
    return normalise(to_float(images)).flatten(1)


def linear_probe(
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    test_x: torch.Tensor,
    test_y: torch.Tensor,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    weight_decay: float,
    generator: torch.Generator,
) -> dict:
    """Train one linear layer on (train_x, train_y); return top-1 accuracies."""
    mean = train_x.mean(0, keepdim=True)
    std = train_x.std(0, keepdim=True).clamp_min(1e-6)
    train_x = (train_x - mean) / std
    test_x = (test_x - mean) / std
    num_classes = int(max(train_y.max(), test_y.max())) + 1
    classifier = nn.Linear(train_x.shape[1], num_classes)
    loss_fn = nn.CrossEntropyLoss()

    def batch_loss(indices: torch.Tensor) -> torch.Tensor:
        return loss_fn(classifier(train_x[indices]), train_y[indices])

    history = fit(
        [classifier],
        len(train_x),
        batch_loss,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        weight_decay=weight_decay,
        generator=generator,
        description="probe",
        drop_last=False,
    )
    with torch.no_grad():
        train_accuracy = (classifier(train_x).argmax(1) == train_y).float().mean().item()
        test_accuracy = (classifier(test_x).argmax(1) == test_y).float().mean().item()
    return {
        "accuracy": test_accuracy,
        "train_accuracy": train_accuracy,
        "n_train": len(train_x),
        "n_test": len(test_x),
        "feature_dim": int(train_x.shape[1]),
        "final_loss": history[-1]["loss"] if history else float("nan"),
    }


def subset(n: int, size: int | None, seed: int) -> np.ndarray:
    """A seeded random subset of ``size`` indices out of ``n`` (all when size is None)."""
    if size is None or size >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False))
