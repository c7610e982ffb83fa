"""Losses, one small function each, with the formula and its source.

Notation (docs/paper.md, "Losses"): ``s`` is the stolen encoder's output, ``v`` the victim's
answer, both of shape (B, D). The stealing losses treat ``v`` as a constant target
(``STEALING_LOSSES`` detaches it), so gradients reach only the stolen side. The same
``info_nce`` trains the SimCLR victim on two views, with gradients through both.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from .registry import LOSSES


def mse(s: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Mean squared error: L = 1/(B D) sum_{i,d} (s_id - v_id)^2."""
    return F.mse_loss(s, v)


def _partner_index(batch: int, device: torch.device) -> torch.Tensor:
    """For the stacked rows [s_1..s_B, v_1..v_B], row k's positive is p(k) = k +- B."""
    return torch.cat([torch.arange(batch, 2 * batch), torch.arange(0, batch)]).to(device)


def info_nce(s: torch.Tensor, v: torch.Tensor, temperature: float = 0.07) -> torch.Tensor:
    """InfoNCE / NT-Xent (Chen et al. 2020, SimCLR; docs/paper.md).

    Stack the 2B rows u = [s_1..s_B, v_1..v_B], L2-normalise, S_kj = u_k . u_j / tau;
    L = -1/(2B) sum_k log( exp(S_{k,p(k)}) / sum_{j != k} exp(S_kj) ),
    where p(k) is the row with the same index in the other half.
    """
    batch = s.shape[0]
    u = F.normalize(torch.cat([s, v]), dim=1)
    similarity = u @ u.T / temperature
    # Excluding j == k from the denominator: mask the diagonal to -inf.
    self_mask = torch.eye(2 * batch, dtype=torch.bool, device=u.device)
    similarity = similarity.masked_fill(self_mask, float("-inf"))
    return F.cross_entropy(similarity, _partner_index(batch, u.device))


def soft_nn(s: torch.Tensor, v: torch.Tensor, temperature: float = 100.0, eps: float = 1e-9) -> torch.Tensor:
    """Soft nearest-neighbour loss (Frosst et al. 2019; docs/paper.md).

    Same 2B rows, unnormalised; d_kj = ||u_k - u_j||^2;
    L = -1/(2B) sum_k log( eps + sum_{j != k, same index} exp(-d_kj/T) / sum_{j != k} exp(-d_kj/T) ).
    Each index has exactly one other row, so the numerator is exp(-d_{k,p(k)}/T).
    """
    batch = s.shape[0]
    u = torch.cat([s, v])
    # ||a||^2 + ||b||^2 - 2 a.b: one matrix product, and no square root whose gradient
    # is infinite on the (masked) diagonal.
    squared_norm = (u * u).sum(1)
    distance = (squared_norm[:, None] + squared_norm[None, :] - 2 * u @ u.T).clamp_min(0)
    logits = -distance / temperature
    self_mask = torch.eye(2 * batch, dtype=torch.bool, device=u.device)
    logits = logits.masked_fill(self_mask, float("-inf"))
    # log(num/den) computed stably as logit_p - logsumexp; eps added outside the log ratio.
    log_ratio = logits.gather(1, _partner_index(batch, u.device)[:, None]).squeeze(1) - torch.logsumexp(logits, 1)
    return -torch.log(eps + torch.exp(log_ratio)).mean()


def wasserstein(s: torch.Tensor, v: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """1-D Wasserstein distance between representations read as histograms (docs/paper.md).

    Each non-negative vector is normalised to sum 1 over its feature indices;
    L = 1/B sum_i sum_d |CDF(s_i)_d - CDF(v_i)_d|.
    """
    if (s < 0).any() or (v < 0).any():
        raise ValueError(
            "wasserstein loss needs non-negative representations (histograms); "
            "got negative entries: use an encoder whose output is post-ReLU"
        )
    s_hist = s / (s.sum(dim=1, keepdim=True) + eps)
    v_hist = v / (v.sum(dim=1, keepdim=True) + eps)
    return (torch.cumsum(s_hist, 1) - torch.cumsum(v_hist, 1)).abs().sum(1).mean()


def cosine(s: torch.Tensor, v: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Negative cosine similarity (StolenEncoder's loss: Liu et al., "StolenEncoder:
    Stealing Pre-trained Encoders in Self-supervised Learning", CCS 2022).

    L = -1/B sum_i cos(s_i, v_i), cos(a, b) = a . b / (max(||a||, eps) max(||b||, eps));
    in [-1, 1], -1 when every s_i points where its v_i does (whatever their norms).
    """
    return -(F.normalize(s, dim=1, eps=eps) * F.normalize(v, dim=1, eps=eps)).sum(1).mean()


def stealing_loss(name: str, **options: float) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The extraction loss ``name`` as f(stolen, victim_answer); the answer is detached
    (it came from the API, it has no graph to backpropagate into)."""
    functions = {"mse": mse, "infonce": info_nce, "softnn": soft_nn, "wasserstein": wasserstein, "cosine": cosine}
    if name not in functions:
        raise ValueError(f"unknown loss {name!r}; known: {sorted(functions)}")
    function = functions[name]

    def loss(stolen: torch.Tensor, answer: torch.Tensor) -> torch.Tensor:
        return function(stolen, answer.detach(), **options)

    loss.__name__ = name
    return loss


STEALING_LOSSES = LOSSES  # every name stealing_loss() builds


def negative_cosine(p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """SimSiam's D(p, z) = -mean_i cos(p_i, stopgrad(z_i)) (Chen and He 2021, eq. 1)."""
    return -(F.normalize(p, dim=1) * F.normalize(z.detach(), dim=1)).sum(1).mean()


def simsiam(p1: torch.Tensor, p2: torch.Tensor, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
    """Symmetric SimSiam loss L = D(p1, z2)/2 + D(p2, z1)/2, with a stop-gradient on the
    projections z (the target branch): only the predictor outputs p carry gradients
    into the loss (Chen and He 2021, "Exploring Simple Siamese Representation Learning")."""
    return 0.5 * negative_cosine(p1, z2) + 0.5 * negative_cosine(p2, z1)


def barlow_twins(z1: torch.Tensor, z2: torch.Tensor, off_diagonal_weight: float = 0.0051, eps: float = 1e-5) -> torch.Tensor:
    """Barlow Twins (Zbontar et al. 2021): standardise each projection dimension over the
    batch, C = z1n^T z2n / B (the cross-correlation matrix), and
    L = sum_i (1 - C_ii)^2 + lambda sum_{i != j} C_ij^2, lambda = 0.0051 by default.
    Zero exactly when the two views' standardised projections have C = I."""
    batch = z1.shape[0]
    z1n = (z1 - z1.mean(0)) / torch.sqrt(z1.var(0, unbiased=False) + eps)
    z2n = (z2 - z2.mean(0)) / torch.sqrt(z2.var(0, unbiased=False) + eps)
    correlation = z1n.T @ z2n / batch
    on_diagonal = (torch.diagonal(correlation) - 1).pow(2).sum()
    off_diagonal = (correlation - torch.diag(torch.diagonal(correlation))).pow(2).sum()
    return on_diagonal + off_diagonal_weight * off_diagonal
