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


def fidelity(stolen: torch.Tensor, victim: torch.Tensor, cosine: bool = True) -> dict:
    """Centred cosine (None when the widths differ or ``cosine`` is false: a copy
    trained through a head matches the victim only up to a change of basis, which
    cosine would punish and CKA does not) and linear CKA."""
    return {
        "cosine": mean_cosine(stolen, victim) if cosine and stolen.shape == victim.shape else None,
        "cka": linear_cka(stolen, victim),
    }
