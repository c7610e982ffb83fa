"""Linear evaluation (docs/paper.md, "Linear evaluation"): the metric of every encoder.

The protocol of the SSL literature's linear evaluation (the SimCLR paper's: L-BFGS
multinomial logistic regression on frozen features, L2 penalty chosen on a validation
split): the encoder is frozen *in eval mode* (the authors' probe left BatchNorm in train
mode), its representation of every image is computed once, and

1. features are standardised with the probe-training set's mean and standard deviation
   (an affine map composed with a linear layer is still one linear layer; it makes one
   penalty grid fit every encoder, raw pixels included);
2. the probe's training images (never the test images) are split into k seeded,
   stratified folds; in each, for every L2 penalty of the grid, a logistic regression
   is trained *to convergence* (full-batch L-BFGS, gradient's largest entry <= 1e-6) on
   the other folds, standardised with their statistics, and its cross-entropy measured
   on the held-out fold;
3. the penalty of least held-out log-loss over all the folds (the strongest among ties)
   is refit on all the probe's training images and tested once; a choice at an end of
   the grid is flagged.

Why k-fold log-loss (this probe's first rule was the best accuracy on one 20% split,
one penalty a decade): on 200 held-out images accuracy moves in half-points, so
penalties tied or swapped on a rounding of the features; the same encoder's fp32 and
bf16 features got different penalties and test accuracies 3.4 points apart. Log-loss is
smooth in the features and the penalty, and k folds use every labelled image.

Why not SGD/Adam for a fixed number of epochs (this project's earlier probe): it stopped
short of the optimum by an amount that depended on the encoder (hardest-to-fit features
lost the most), so it ranked encoders partly by how easy their features were to fit.
"""

from __future__ import annotations

import base64
import contextlib
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .preprocessing import to_float

# The penalty grid when the config gives none: lambda in loss = CE + lambda/2 ||W||^2
# (mean cross-entropy over images; scikit-learn's C = 1 / (lambda * n)). Three values a
# decade from 1e-5 to 10: np.logspace(-5, 1, 19) to two significant digits (1, 2.2, 4.6
# times a power of ten: steps of 0.32 to 0.34 decades), so that the config and the
# record's keys read as written. One value a decade (this probe's first grid) was too
# coarse: neighbouring penalties differed by several points of accuracy, so a near-tie
# of the criterion decided points of the result.
L2_GRID = (
    1.0e-5, 2.2e-5, 4.6e-5,
    1.0e-4, 2.2e-4, 4.6e-4,
    1.0e-3, 2.2e-3, 4.6e-3,
    1.0e-2, 2.2e-2, 4.6e-2,
    1.0e-1, 2.2e-1, 4.6e-1,
    1.0, 2.2, 4.6,
    10.0,
)  # fmt: skip
# The config's ``probe`` keys that are ``linear_probe``'s protocol (its keyword arguments).
PROTOCOL_KEYS = ("l2_grid", "folds", "max_iter")
# Folds of the cross-validation that chooses the penalty, when the config gives none.
FOLDS = 5
# L-BFGS has converged when the largest entry of the gradient of the (mean) objective is
# at most this.
TOLERANCE = 1e-6
# Criterion values this close are a tie, which goes to the stronger penalty (the simpler
# model; and float summation noise must not decide).
TIE = 1e-12


def raw_pixels(images: torch.Tensor) -> torch.Tensor:
    """The raw-pixel baseline's 'representation': the flattened image, on [-1, 1] as
    before encoders carried their own normalisation (no encoder here; the probe
    standardises every feature anyway, so the scale does not matter)."""
    return (to_float(images) * 2.0 - 1.0).flatten(1)


def spectrum(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Eigenvalues s (clamped at 0) and eigenvectors V of x^T x / n, and x V (float64):
    the curvature of the data part of the objective, up to the softmax weights.
    :func:`fit_logistic` preconditions with it; one decomposition (and one rotation of
    the features) serves every penalty of a path.

    With fewer images than features (n < d: a few labels per class on a ResNet50's 2,048
    features) only the n directions of the thin SVD x = U S V^T are kept: the data term's
    gradient has no component outside x's row space, so from W = 0 the penalty keeps W
    there and the optimum is the same (the representer theorem), with n x k unknowns
    instead of d x k and no d x d decomposition."""
    x = x.double()
    n, d = x.shape
    if n < d:
        _, singular, vectors_t = torch.linalg.svd(x, full_matrices=False)
        vectors = vectors_t.T.contiguous()
        return (singular**2 / n).clamp_min(0), vectors, x @ vectors
    values, vectors = torch.linalg.eigh(x.T @ x / n)
    return values.clamp_min(0), vectors, x @ vectors


_BLAS: list = []


def _single_threaded_blas():
    """numpy's BLAS limited to one thread while a probe fits, when ``threadpoolctl`` is
    there (scikit-learn requires it; the GPU check's bare environment lacks it). The
    products are thin (classes x images x features): a multi-threaded OpenBLAS gains
    nothing on them and spins a second thread, the same wall time for twice the CPU,
    taken from the pipeline's other jobs."""
    if not _BLAS:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:
            _BLAS.append(None)
        else:
            _BLAS.append(ThreadpoolController())
    if _BLAS[0] is None:
        return contextlib.nullcontext()
    return _BLAS[0].limit(limits=1, user_api="blas")


def lbfgs(evaluate, theta: np.ndarray, max_iter: int, memory: int = 10) -> tuple[np.ndarray, int]:
    """Minimise a smooth convex function with scipy's L-BFGS-B (``memory`` corrections)
    until ``evaluate`` says it has converged, or ``max_iter`` iterations, or no step
    lowers the function (float64 precision reached). ``evaluate(theta)`` returns (value,
    gradient, converged). Returns the last point and the iterations made.

    scipy's own stopping tests are switched off (``gtol`` and ``ftol`` 0): its gradient
    test would be on the preconditioned coordinates, not the probe's, and a stop on a
    small change of the function (what torch.optim.LBFGS's ``tolerance_change`` does)
    ended about one fit in ten on a random-init CNN's features with the gradient still at
    1-2e-6. The probe's own test is checked after every iteration instead."""
    from scipy.optimize import minimize

    last = {}

    def objective(point: np.ndarray) -> tuple[float, np.ndarray]:
        value, gradient, done = evaluate(point)
        last.update(point=point.copy(), done=done)
        return value, gradient

    def stop_when_converged(intermediate_result) -> None:
        point = intermediate_result.x
        done = last["done"] if np.array_equal(point, last.get("point")) else evaluate(point)[2]
        if done:
            raise StopIteration

    if evaluate(theta)[2]:
        return theta, 0
    result = minimize(
        objective,
        theta,
        jac=True,
        method="L-BFGS-B",
        callback=stop_when_converged,
        options={"maxiter": max_iter, "maxcor": memory, "gtol": 0.0, "ftol": 0.0, "maxfun": 50 * max_iter},
    )
    return result.x, int(result.nit)


def fit_logistic(
    x: torch.Tensor,
    y: torch.Tensor,
    num_classes: int,
    l2: float,
    *,
    max_iter: int = 1000,
    init: tuple[torch.Tensor, torch.Tensor] | None = None,
    restarts: int = 2,
    basis: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """Multinomial logistic regression minimising mean cross-entropy + l2/2 ||W||^2 (the
    bias unpenalised) by full-batch L-BFGS (:func:`lbfgs`, 10 corrections, float64),
    until the gradient's largest entry (the bias's included) is at most ``TOLERANCE``, or
    ``max_iter`` iterations in all. Deterministic on the CPU. Returns weights (k, d),
    bias (k,) and {iterations, converged, gradient_norm, loss, restarts}.

    Preconditioned: L-BFGS runs on U with W = (U * c) V^T, where x^T x / n = V diag(s)
    V^T (``basis``: :func:`spectrum`, computed here when not given) and c = (s + l2)^-1/2.
    It is the same objective in other coordinates (the optimum W is the same); the
    Hessian in U is about the identity instead of having the features' eigenvalue spread
    (1e4 for a random-init CNN's features), which halves the iterations. The tolerance is
    tested on the gradient in W, not U.

    ``converged`` is that test alone: stopping before ``max_iter`` only says that L-BFGS
    stopped (its line search can fail at the limit of float64 precision). Then it is
    restarted from where it stopped with a fresh history, at most ``restarts`` times,
    before giving up (a safeguard: no fit of ~1,150 on random-init CNN features and
    synthetic ones needed it). ``gradient_norm`` is that largest absolute entry."""
    x, y = x.detach().cpu().double(), y.detach().cpu().long()
    n, d = x.shape
    values, vectors, rotated = basis if basis is not None else spectrum(x)
    # The objective in numpy: its two products (classes x images x features) are about
    # twice as fast in single-threaded OpenBLAS as in torch's MKL at these thin shapes.
    scale = (values + l2).rsqrt().numpy()  # c
    basis_t = vectors.T.contiguous().numpy()  # V^T
    rotated = rotated.numpy()  # x V: logits = (x V) (U * c)^T + b
    scaled_t = np.ascontiguousarray((rotated * scale).T)  # classes along rows (k x n)
    labels = y.numpy()
    onehot_t = np.zeros((num_classes, n))
    onehot_t[labels, np.arange(n)] = 1.0
    width = vectors.shape[1]  # d, or n when the basis is thin (spectrum)
    size = num_classes * width
    last = {}

    def evaluate(theta: np.ndarray, exact: bool = False) -> tuple[float, np.ndarray, bool]:
        u, bias = theta[:size].reshape(num_classes, width), theta[size:]
        logits = u @ scaled_t
        logits += bias[:, None]
        top = logits.max(0)
        exp = np.exp(logits - top)
        total = exp.sum(0)
        w_rotated = u * scale
        loss = (np.log(total).sum() + top.sum() - (logits * onehot_t).sum()) / n + 0.5 * l2 * (w_rotated**2).sum()
        residual = (exp / total - onehot_t) / n
        g_rotated = residual @ rotated
        g_rotated += l2 * w_rotated
        g_bias = residual.sum(1)
        # ||g_W||_inf from g_W = g_rotated V^T; each row's 2-norm is the same in both
        # bases and bounds it both ways (||v||_inf <= ||v||_2 <= sqrt(d) ||v||_inf), so the
        # rotation is computed only near the tolerance (or when ``exact``).
        rows = float(np.sqrt((g_rotated**2).sum(1)).max())
        gradient = rows if rows > TOLERANCE * d**0.5 and not exact else float(np.abs(g_rotated @ basis_t).max())
        last.update(gradient=max(gradient, float(np.abs(g_bias).max())), loss=float(loss))
        return last["loss"], np.concatenate([(g_rotated * scale).ravel(), g_bias]), last["gradient"] <= TOLERANCE

    theta = np.zeros(size + num_classes)
    if init is not None:
        theta = np.concatenate([((init[0].double() @ vectors).numpy() / scale).ravel(), init[1].double().numpy()])
    iterations = restarted = 0
    with _single_threaded_blas():
        while True:
            theta, made = lbfgs(evaluate, theta, max_iter - iterations)
            iterations += made
            evaluate(theta, exact=True)
            if last["gradient"] <= TOLERANCE or iterations >= max_iter or restarted >= restarts:
                break
            restarted += 1
    flat = torch.from_numpy(theta)
    weight = (flat[:size].view(num_classes, width) * torch.from_numpy(scale)) @ vectors.T
    info = {
        "iterations": iterations,
        "converged": bool(last["gradient"] <= TOLERANCE),
        "gradient_norm": last["gradient"],
        "loss": last["loss"],
        "restarts": restarted,
    }
    return weight, flat[size:].clone(), info


def predict(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    return (x.double() @ weight.T + bias).argmax(1)


def stratified_folds(labels: torch.Tensor | np.ndarray, folds: int, seed: int) -> np.ndarray:
    """The fold (0 .. folds-1) of every probe-training image: seeded and stratified.

    Each class's images, in a seeded random order, are dealt to the folds in turn,
    starting where the previous class stopped: every fold gets floor or ceil of
    n_c / folds images of class c, and the fold sizes differ by at most one. A class
    with fewer images than folds would be missing from some held-out fold (and its
    penalty choice would rest on nothing): refused, naming the class."""
    labels = np.asarray(labels)
    if folds < 2:
        raise ValueError(f"cross-validation needs at least 2 folds, not {folds}")
    rng = np.random.default_rng(seed)
    fold = np.empty(len(labels), dtype=np.int64)
    dealt = 0
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        if len(members) < folds:
            raise ValueError(
                f"class {c} has {len(members)} probe-training images, fewer than the {folds} folds of the "
                "cross-validation choosing the L2 penalty (probe.folds)"
            )
        fold[rng.permutation(members)] = (dealt + np.arange(len(members))) % folds
        dealt += len(members)
    return fold


def standardise(train_x: torch.Tensor, *others: torch.Tensor) -> list[torch.Tensor]:
    mean = train_x.mean(0, keepdim=True)
    std = train_x.std(0, keepdim=True).clamp_min(1e-6)
    return [(t - mean) / std for t in (train_x, *others)]


def path_start(
    path: list[tuple[float, torch.Tensor, torch.Tensor]], l2: float
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """A warm start for penalty ``l2`` from the solutions already on the ``path``
    ([(l2, weight, bias), ...], strongest first): the quadratic through the last three
    (linear through two, the last one alone), extrapolated in log l2. The solution is a
    smooth curve in log l2; following it rather than restarting from the previous point
    halves L-BFGS's iterations (measured: 1,568 -> 655 on one fold of a random-init
    CNN's features, 19 penalties). Only where it starts, not where it ends: the fit runs to the same
    tolerance."""
    if not path:
        return None
    points = path[-3:]
    logs = [math.log(p[0]) for p in points]
    target = math.log(l2)
    weight = torch.zeros_like(points[-1][1])
    bias = torch.zeros_like(points[-1][2])
    for i, (_, w, b) in enumerate(points):
        factor = math.prod((target - logs[j]) / (logs[i] - logs[j]) for j in range(len(points)) if j != i)
        weight += factor * w
        bias += factor * b
    return weight, bias


def cross_validate(
    x: torch.Tensor,
    y: torch.Tensor,
    num_classes: int,
    l2_grid: tuple[float, ...] | list[float],
    *,
    folds: int = FOLDS,
    seed: int = 0,
    max_iter: int = 1000,
) -> tuple[dict[float, float], dict[float, float], bool]:
    """Held-out log-loss and accuracy of every penalty by stratified k-fold
    cross-validation over the probe's training images ``x``, ``y`` (class indices).

    In every fold the features are standardised with the fold's training part, and the
    penalties are fitted from the strongest down, each warm-started where the path of
    the previous ones points (:func:`path_start`). The criterion is the unpenalised
    cross-entropy summed over every held-out image and divided by their number:
    sum_f n_f CE_f / n, the fold means weighted by fold size.
    Why log-loss and not accuracy: accuracy moves in steps of one image (0.5 points on
    200 images), so penalties tie or swap on a rounding of the features; log-loss is a
    smooth function of the features and the penalty. Returns ({l2: log-loss},
    {l2: accuracy}, whether every fit converged)."""
    x, y = x.detach().cpu().double(), y.detach().cpu().long()
    fold = stratified_folds(y, folds, seed)
    grid = sorted(set(l2_grid), reverse=True)
    loss_sum = dict.fromkeys(grid, 0.0)
    right = dict.fromkeys(grid, 0)
    converged = True
    for f in range(folds):
        held = torch.from_numpy(fold == f)
        fit_x, held_x = standardise(x[~held], x[held])
        basis = spectrum(fit_x)
        path = []
        for l2 in grid:
            weight, bias, info = fit_logistic(
                fit_x, y[~held], num_classes, l2, max_iter=max_iter, init=path_start(path, l2), basis=basis
            )
            path.append((l2, weight, bias))
            converged &= info["converged"]
            logits = held_x.double() @ weight.T + bias
            loss_sum[l2] += nn.functional.cross_entropy(logits, y[held], reduction="sum").item()
            right[l2] += int((logits.argmax(1) == y[held]).sum())
    n = len(y)
    return {l2: loss_sum[l2] / n for l2 in grid}, {l2: right[l2] / n for l2 in grid}, converged


def choose_l2(log_loss: dict[float, float]) -> float:
    """The penalty of least cross-validated log-loss; within ``TIE`` of it, the strongest."""
    best = min(log_loss.values())
    return max(l2 for l2, value in log_loss.items() if value <= best + TIE)


@dataclass(frozen=True)
class LinearProbe:
    """A fitted probe: the standardisation of the probe's training features, the
    logistic regression on it, and the labels its rows stand for."""

    mean: torch.Tensor
    std: torch.Tensor
    weight: torch.Tensor
    bias: torch.Tensor
    classes: torch.Tensor

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return ((x.double() - self.mean) / self.std) @ self.weight.T + self.bias

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        return self.classes[self.logits(x).argmax(1)]


def linear_probe(
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    test_x: torch.Tensor,
    test_y: torch.Tensor,
    *,
    l2_grid: tuple[float, ...] | list[float] = L2_GRID,
    folds: int = FOLDS,
    max_iter: int = 1000,
    seed: int = 0,
    return_probe: bool = False,
) -> dict | tuple[dict, LinearProbe]:
    """The linear evaluation above; returns test accuracy, which test images were
    right (``correct``, for paired intervals), the chosen penalty and whether it is at
    an end of the grid (``l2_at_edge``: "low", "high" or None; the optimum may lie
    beyond it), every penalty's cross-validated log-loss and accuracy, training
    accuracy, and the solver's convergence (``converged``: gradient's largest entry,
    ``gradient_norm``, at most ``TOLERANCE``). Everything is fitted and chosen on
    ``train_x``, ``train_y`` only: the test images are scored once, at the end, and
    a class is one the training labels have (a test label outside them is an error of
    the probe). With ``return_probe`` also the fitted :class:`LinearProbe`."""
    train_x, test_x = train_x.detach().cpu(), test_x.detach().cpu()
    classes, y = torch.unique(torch.as_tensor(train_y).detach().cpu().long(), return_inverse=True)
    num_classes = len(classes)
    log_loss, accuracy, cv_converged = cross_validate(
        train_x, y, num_classes, l2_grid, folds=folds, seed=seed, max_iter=max_iter
    )
    chosen = choose_l2(log_loss)
    grid = sorted(log_loss)
    edge = None
    if len(grid) > 1 and chosen == grid[0]:
        edge = "low"
    elif len(grid) > 1 and chosen == grid[-1]:
        edge = "high"
    mean = train_x.double().mean(0, keepdim=True)
    std = train_x.double().std(0, keepdim=True).clamp_min(1e-6)
    weight, bias, info = fit_logistic((train_x.double() - mean) / std, y, num_classes, chosen, max_iter=max_iter)
    probe = LinearProbe(mean, std, weight, bias, classes)
    correct = (probe.predict(test_x) == torch.as_tensor(test_y).detach().cpu().long()).numpy()
    record = {
        "accuracy": float(correct.mean()),
        "train_accuracy": (probe.predict(train_x) == classes[y]).double().mean().item(),
        "l2": chosen,
        "l2_at_edge": edge,
        "cv_log_loss": {f"{l2:g}": log_loss[l2] for l2 in grid},
        "cv_accuracy": {f"{l2:g}": accuracy[l2] for l2 in grid},
        "cv_converged": cv_converged,
        "folds": int(folds),
        "n_train": len(train_x),
        "n_test": len(test_x),
        "feature_dim": int(train_x.shape[1]),
        "solver_iterations": info["iterations"],
        "converged": info["converged"],
        "gradient_norm": info["gradient_norm"],
        "probe_loss": info["loss"],
        "correct": encode_correct(correct),
    }
    return (record, probe) if return_probe else record


def encode_correct(correct: np.ndarray) -> str:
    """Which test images the probe got right, packed 8 to a byte, base64 (5,000 test
    images: 836 characters)."""
    return base64.b64encode(np.packbits(np.asarray(correct, dtype=bool)).tobytes()).decode("ascii")


def decode_correct(text: str, n: int) -> np.ndarray:
    return np.unpackbits(np.frombuffer(base64.b64decode(text), dtype=np.uint8))[:n].astype(bool)


def subset(labels: torch.Tensor | np.ndarray, size: int | None, seed: int, per_class_floor: int = 0) -> np.ndarray:
    """A seeded random subset of ``size`` of the images (all when size is None) holding
    at least ``per_class_floor`` images of every class: that many drawn from each class
    first, the rest uniformly from the images left. With the floor at the number of
    cross-validation folds, every class is in every held-out fold; a class with fewer
    images than the floor is refused, naming it."""
    labels = np.asarray(labels)
    n = len(labels)
    if size is None or size >= n:
        return np.arange(n)
    floor = per_class_subset(labels, per_class_floor, seed)
    if len(floor) > size:
        raise ValueError(f"{size} images cannot hold {per_class_floor} of each of {len(np.unique(labels))} classes")
    rest = np.setdiff1d(np.arange(n), floor)
    extra = np.random.default_rng([seed, 1]).choice(rest, size=size - len(floor), replace=False)
    return np.sort(np.concatenate([floor, extra]))


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


def downstream_images(root, downstream: dict, seed: int, folds: int = FOLDS):
    """The probe's labelled training images and its test images for one downstream block
    (``probe.downstream.<name>``) and probe seed: the labelled subset drawn by the seed
    (``labels_per_class`` per class, else ``train_size`` images), the last ``test_last``
    test images. Returns (train images, train labels, test images, test labels)."""
    from .data import load_split

    train_images, train_labels = load_split(root, downstream["train_split"])
    test_images, test_labels = load_split(root, downstream["test_split"])
    if downstream.get("labels_per_class"):
        keep = per_class_subset(train_labels, downstream["labels_per_class"], seed)
    else:
        keep = subset(train_labels, downstream.get("train_size"), seed, per_class_floor=folds)
    train_images, train_labels = train_images[keep], train_labels[keep]
    if downstream.get("test_last"):
        test_images, test_labels = test_images[-downstream["test_last"] :], test_labels[-downstream["test_last"] :]
    return train_images, train_labels, test_images, test_labels
