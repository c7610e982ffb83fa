"""Linear evaluation (docs/paper.md, "Linear evaluation"): the metric of every encoder.

The protocol of the SSL literature's linear evaluation (the SimCLR paper's: L-BFGS
multinomial logistic regression on frozen features, L2 penalty chosen on a validation
split): the encoder is frozen *in eval mode* (the authors' probe left BatchNorm in train
mode), its representation of every image is computed once, and

1. features are standardised with the probe-training set's mean and standard deviation
   (an affine map composed with a linear layer is still one linear layer; it makes one
   penalty grid fit every encoder, raw pixels included);
2. a seeded, stratified validation split is carved out of the probe's training images
   (never the test images); for every L2 penalty of the grid a logistic regression is
   trained *to convergence* (full-batch L-BFGS) on the rest and scored on it;
3. the penalty with the best validation accuracy (the largest one among ties) is refit
   on all the probe's training images and tested once.

Why not SGD/Adam for a fixed number of epochs (this project's earlier probe): it stopped
short of the optimum by an amount that depended on the encoder (hardest-to-fit features
lost the most), so it ranked encoders partly by how easy their features were to fit.
"""

from __future__ import annotations

import base64

import numpy as np
import torch
from torch import nn

from .preprocessing import to_float

# The penalty grid when the config gives none: lambda in loss = CE + lambda/2 ||W||^2
# (mean cross-entropy over images; scikit-learn's C = 1 / (lambda * n)).
L2_GRID = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0)


def raw_pixels(images: torch.Tensor) -> torch.Tensor:
    """The raw-pixel baseline's 'representation': the flattened image, on [-1, 1] as
    before encoders carried their own normalisation (no encoder here; the probe
    standardises every feature anyway, so the scale does not matter)."""
    return (to_float(images) * 2.0 - 1.0).flatten(1)


def fit_logistic(
    x: torch.Tensor,
    y: torch.Tensor,
    num_classes: int,
    l2: float,
    *,
    max_iter: int = 1000,
    init: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """Multinomial logistic regression minimising mean cross-entropy + l2/2 ||W||^2 (the
    bias unpenalised) by full-batch L-BFGS with a strong-Wolfe line search, until the
    gradient's largest entry is below 1e-6 or ``max_iter`` iterations. Deterministic on
    the CPU (float64). Returns weights (k, d), bias (k,) and {iterations, converged, loss}."""
    x, y = x.double(), y.long()
    weight = torch.zeros(num_classes, x.shape[1], dtype=torch.float64, device=x.device)
    bias = torch.zeros(num_classes, dtype=torch.float64, device=x.device)
    if init is not None:
        weight.copy_(init[0])
        bias.copy_(init[1])
    weight.requires_grad_(True)
    bias.requires_grad_(True)
    optimiser = torch.optim.LBFGS(
        [weight, bias],
        lr=1.0,
        max_iter=max_iter,
        history_size=20,
        tolerance_grad=1e-6,
        tolerance_change=1e-12,
        line_search_fn="strong_wolfe",
    )

    def objective() -> torch.Tensor:
        optimiser.zero_grad()
        loss = nn.functional.cross_entropy(x @ weight.T + bias, y) + 0.5 * l2 * weight.pow(2).sum()
        loss.backward()
        return loss

    optimiser.step(objective)
    loss = objective()
    gradient = max(weight.grad.abs().max().item(), bias.grad.abs().max().item())
    iterations = optimiser.state[optimiser._params[0]]["n_iter"]
    info = {"iterations": int(iterations), "converged": bool(gradient <= 1e-6 or iterations < max_iter), "loss": loss.item()}
    return weight.detach(), bias.detach(), info


def predict(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    return (x.double() @ weight.T + bias).argmax(1)


def validation_split(labels: torch.Tensor, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded stratified split of the probe's training images: (fit, validation)
    indices, ``fraction`` of each class (at least one image) in validation."""
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    validation = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        take = max(1, int(round(fraction * len(members))))
        if take >= len(members):
            raise ValueError(f"class {c} has {len(members)} probe-training images: too few for a validation split")
        validation.append(rng.choice(members, size=take, replace=False))
    validation = np.sort(np.concatenate(validation))
    fit = np.setdiff1d(np.arange(len(labels)), validation)
    return fit, validation


def standardise(train_x: torch.Tensor, *others: torch.Tensor) -> list[torch.Tensor]:
    mean = train_x.mean(0, keepdim=True)
    std = train_x.std(0, keepdim=True).clamp_min(1e-6)
    return [(t - mean) / std for t in (train_x, *others)]


def linear_probe(
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    test_x: torch.Tensor,
    test_y: torch.Tensor,
    *,
    l2_grid: tuple[float, ...] | list[float] = L2_GRID,
    validation_fraction: float = 0.2,
    max_iter: int = 1000,
    seed: int = 0,
) -> dict:
    """The linear evaluation above; returns test accuracy, which test images were
    right (``correct``, for paired intervals), the chosen penalty, validation and
    training accuracy, and the solver's convergence."""
    num_classes = int(max(train_y.max(), test_y.max())) + 1
    fit, held = validation_split(train_y, validation_fraction, seed)
    fit_x, held_x = standardise(train_x[fit], train_x[held])
    validation = {}
    start = None
    # From the strongest penalty down, each fit warm-started from the previous one.
    for l2 in sorted(l2_grid, reverse=True):
        weight, bias, _ = fit_logistic(fit_x, train_y[fit], num_classes, l2, max_iter=max_iter, init=start)
        start = (weight, bias)
        validation[l2] = (predict(held_x, weight, bias) == train_y[held]).double().mean().item()
    best = max(validation.values())
    chosen = max(l2 for l2, accuracy in validation.items() if accuracy == best)
    all_x, all_test = standardise(train_x, test_x)
    weight, bias, info = fit_logistic(all_x, train_y, num_classes, chosen, max_iter=max_iter)
    correct = (predict(all_test, weight, bias) == test_y).numpy()
    return {
        "accuracy": float(correct.mean()),
        "train_accuracy": (predict(all_x, weight, bias) == train_y).double().mean().item(),
        "l2": chosen,
        "validation_accuracy": {f"{l2:g}": validation[l2] for l2 in sorted(validation)},
        "n_train": len(train_x),
        "n_validation": len(held),
        "n_test": len(test_x),
        "feature_dim": int(train_x.shape[1]),
        "solver_iterations": info["iterations"],
        "converged": info["converged"],
        "probe_loss": info["loss"],
        "correct": encode_correct(correct),
    }


def encode_correct(correct: np.ndarray) -> str:
    """Which test images the probe got right, packed 8 to a byte, base64 (5,000 test
    images: 836 characters)."""
    return base64.b64encode(np.packbits(np.asarray(correct, dtype=bool)).tobytes()).decode("ascii")


def decode_correct(text: str, n: int) -> np.ndarray:
    return np.unpackbits(np.frombuffer(base64.b64decode(text), dtype=np.uint8))[:n].astype(bool)


def subset(n: int, size: int | None, seed: int) -> np.ndarray:
    """A seeded random subset of ``size`` indices out of ``n`` (all when size is None)."""
    if size is None or size >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False))


def per_class_subset(labels: torch.Tensor | np.ndarray, per_class: int, seed: int) -> np.ndarray:
    """A seeded subset with ``per_class`` images of every class (a label-scarce task)."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    chosen = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        if len(members) < per_class:
            raise ValueError(f"class {c} has only {len(members)} images, fewer than {per_class} per class")
        chosen.append(rng.choice(members, size=per_class, replace=False))
    return np.sort(np.concatenate(chosen))
