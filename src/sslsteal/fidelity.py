"""Fidelity: how close the stolen encoder's representations are to the victim's, on
held-out images no attacker queried (beside accuracy, which only says how useful they are).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def mean_cosine(stolen: torch.Tensor, victim: torch.Tensor) -> float:
    """Mean over images of cos(f_s(x) - mean_s, f_v(x) - mean_v), each representation
    centred by its own mean over the images; defined only when the dimensions match.

    Centred, because post-ReLU features share a large positive mean: uncentred, two
    unrelated encoders (a copy trained on uniform noise) score about 0.7."""
    if stolen.shape != victim.shape:
        raise ValueError(f"cosine needs equal shapes, got {tuple(stolen.shape)} and {tuple(victim.shape)}")
    stolen, victim = stolen.double(), victim.double()
    stolen, victim = stolen - stolen.mean(0, keepdim=True), victim - victim.mean(0, keepdim=True)
    return F.cosine_similarity(stolen, victim, dim=1).mean().item()


def linear_cka(x: torch.Tensor, y: torch.Tensor) -> float:
    """Linear centred kernel alignment (Kornblith et al. 2019, "Similarity of Neural
    Network Representations Revisited"), for n images with representations x (n, d1)
    and y (n, d2), columns centred:

        CKA = ||y^T x||_F^2 / (||x^T x||_F ||y^T y||_F).

    1 for identical representations, invariant to orthogonal maps and isotropic
    scaling, defined for different widths."""
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"CKA needs the same images: {x.shape[0]} vs {y.shape[0]} rows")
    x = x.double() - x.double().mean(0, keepdim=True)
    y = y.double() - y.double().mean(0, keepdim=True)
    cross = torch.linalg.matrix_norm(y.T @ x) ** 2
    norms = torch.linalg.matrix_norm(x.T @ x) * torch.linalg.matrix_norm(y.T @ y)
    return (cross / norms).item() if norms > 0 else float("nan")


# Fixed contiguous blocks of the test images for the delete-a-block jackknife: every
# probe record carries its leave-one-block-out values on the same blocks, so two records
# (a copy and the independent twin) can be paired block by block.
JACKKNIFE_BLOCKS = 20


def _blocks(n: int, groups: int) -> torch.Tensor:
    """Block index of each of ``n`` images: ``groups`` contiguous blocks of (near) equal size."""
    return torch.arange(n) * groups // n


def cka_jackknife(x: torch.Tensor, y: torch.Tensor, groups: int = JACKKNIFE_BLOCKS) -> tuple[float, list[float]]:
    """Linear CKA and its ``groups`` delete-a-block replicates (CKA of the images left
    after removing each contiguous block in turn). Each replicate comes from per-block
    sums (sum x, sum y, x^T x, y^T y, y^T x), so all of them cost about one more CKA."""
    n = x.shape[0]
    x, y = x.double(), y.double()
    blocks = _blocks(n, groups)
    parts = []
    for g in range(groups):
        xb, yb = x[blocks == g], y[blocks == g]
        parts.append((len(xb), xb.sum(0), yb.sum(0), xb.T @ xb, yb.T @ yb, yb.T @ xb))
    total = [sum(p[k] for p in parts) for k in range(6)]

    def cka(stats) -> float:
        m, sx, sy, xx, yy, yx = stats
        xx, yy, yx = xx - torch.outer(sx, sx) / m, yy - torch.outer(sy, sy) / m, yx - torch.outer(sy, sx) / m
        norms = torch.linalg.matrix_norm(xx) * torch.linalg.matrix_norm(yy)
        return float(torch.linalg.matrix_norm(yx) ** 2 / norms) if norms > 0 else float("nan")

    return cka(total), [cka([t - p for t, p in zip(total, part)]) for part in parts]


def cosine_jackknife(stolen: torch.Tensor, victim: torch.Tensor, groups: int = JACKKNIFE_BLOCKS) -> list[float]:
    """The ``groups`` delete-a-block replicates of :func:`mean_cosine`: each recomputed
    (centring included) on the images left after removing one contiguous block."""
    blocks = _blocks(stolen.shape[0], groups)
    return [mean_cosine(stolen[blocks != g], victim[blocks != g]) for g in range(groups)]


def jackknife_se(replicates) -> float:
    """The delete-a-group jackknife standard error sqrt((G - 1) / G * sum (r_g - mean r)^2)."""
    import math

    replicates = torch.as_tensor(replicates, dtype=torch.float64)
    groups = len(replicates)
    return math.sqrt((groups - 1) / groups * float(((replicates - replicates.mean()) ** 2).sum()))


def cka_interval(x: torch.Tensor, y: torch.Tensor, groups: int = JACKKNIFE_BLOCKS) -> tuple[float, float]:
    """95% interval of linear CKA over images: the delete-a-group jackknife
    (:func:`cka_jackknife`), CKA +- 1.96 standard errors, clipped to [0, 1]."""
    if x.shape[0] < 2 * groups:
        return float("nan"), float("nan")
    estimate, replicates = cka_jackknife(x, y, groups)
    se = jackknife_se(replicates)
    return max(0.0, estimate - 1.96 * se), min(1.0, estimate + 1.96 * se)


def fidelity(stolen: torch.Tensor, victim: torch.Tensor, cosine: bool = True) -> dict:
    """Centred cosine (None when the widths differ or ``cosine`` is false: a copy
    trained through a head matches the victim only up to a change of basis, which
    cosine would punish and CKA does not) and linear CKA with its 95% interval over
    images (:func:`cka_interval`); and their delete-a-block jackknife replicates on
    ``JACKKNIFE_BLOCKS`` fixed contiguous blocks of the images (``cka_blocks``,
    ``cosine_blocks``; None where the value is), which the claims table pairs block by
    block between two encoders scored on the same images."""
    with_cosine = cosine and stolen.shape == victim.shape
    low = high = float("nan")
    cka_blocks = cosine_blocks = None
    if stolen.shape[0] >= 2 * JACKKNIFE_BLOCKS:
        estimate, cka_blocks = cka_jackknife(stolen, victim)
        se = jackknife_se(cka_blocks)
        low, high = max(0.0, estimate - 1.96 * se), min(1.0, estimate + 1.96 * se)
        cosine_blocks = cosine_jackknife(stolen, victim) if with_cosine else None
    return {
        "cosine": mean_cosine(stolen, victim) if with_cosine else None,
        "cka": linear_cka(stolen, victim),
        "cka_low": low,
        "cka_high": high,
        "cka_blocks": cka_blocks,
        "cosine_blocks": cosine_blocks,
    }
