"""Victim SSL training (docs/paper.md, "Victims"): SimCLR, SimSiam and Barlow Twins.

Each method sees two augmented views of every image, runs them through the encoder f
and its own head(s), and applies its loss from ``losses``. The encoder f is what the API
serves; the heads are kept in the checkpoint for the attacks that need them.

- SimCLR (Chen et al. 2020): head Linear(d,d)-ReLU-Linear(d,k); InfoNCE between views.
- SimSiam (Chen and He 2021): 3-layer projector with BatchNorm (last BN without affine)
  and a bottleneck predictor; symmetric negative cosine, stop-gradient on the target.
- Barlow Twins (Zbontar et al. 2021): 3-layer projector with BatchNorm; the views'
  cross-correlation driven to the identity, off-diagonal weight lambda.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from .augment import simclr_view
from .backbones import build_encoder, projection_head
from .losses import barlow_twins, info_nce, simsiam
from .preprocessing import to_float
from .registry import SSL_METHODS
from .runtime import to_device
from .training import fit
from .watermark import watermark_head, watermark_loss



def mlp(sizes: list[int], last_bn: bool = False, last_bn_affine: bool = True) -> nn.Sequential:
    """Linear-BN-ReLU blocks; the last layer is linear (optionally followed by BN)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        last = i == len(sizes) - 2
        layers.append(nn.Linear(a, b, bias=last and not last_bn))
        if not last:
            layers += [nn.BatchNorm1d(b), nn.ReLU(inplace=True)]
        elif last_bn:
            layers.append(nn.BatchNorm1d(b, affine=last_bn_affine))
    return nn.Sequential(*layers)


def make_heads(method: str, dim: int, recipe: dict) -> dict[str, nn.Module]:
    out = recipe.get("projection_dim", 128)
    hidden = recipe.get("hidden_dim", dim)
    if method == "simclr":
        return {"projector": projection_head(dim, out)}
    if method == "simsiam":
        return {
            "projector": mlp([dim, hidden, hidden, out], last_bn=True, last_bn_affine=False),
            "predictor": mlp([out, recipe.get("predictor_hidden_dim", max(out // 4, 8)), out]),
        }
    if method == "barlow_twins":
        return {"projector": mlp([dim, hidden, hidden, out])}
    raise ValueError(f"unknown victim method {method!r}; known: {', '.join(SSL_METHODS)}")


def method_loss(method: str, encoder: nn.Module, heads: dict[str, nn.Module], recipe: dict):
    """f(view1, view2) -> loss for one batch of views in [0, 1] (the encoder normalises them)."""
    projector = heads["projector"]
    if method == "simclr":

        def loss(v1: torch.Tensor, v2: torch.Tensor) -> torch.Tensor:
            # One forward over both views: BatchNorm sees the whole 2B batch, as in SimCLR.
            z1, z2 = projector(encoder(torch.cat([v1, v2]))).chunk(2)
            return info_nce(z1, z2, temperature=recipe["temperature"])

    elif method == "simsiam":
        predictor = heads["predictor"]

        def loss(v1: torch.Tensor, v2: torch.Tensor) -> torch.Tensor:
            z1, z2 = projector(encoder(v1)), projector(encoder(v2))
            return simsiam(predictor(z1), predictor(z2), z1, z2)

    else:

        def loss(v1: torch.Tensor, v2: torch.Tensor) -> torch.Tensor:
            z1, z2 = projector(encoder(v1)), projector(encoder(v2))
            return barlow_twins(z1, z2, off_diagonal_weight=recipe.get("off_diagonal_weight", 0.0051))

    return loss


def train_victim(
    method: str,
    images: torch.Tensor,
    backbone: dict,
    recipe: dict,
    generator: torch.Generator,
    device: torch.device = torch.device("cpu"),
    resume_from: dict | None = None,
    save_state: Callable[[dict], None] | None = None,
    steps: int | None = None,
    save_every: int | None = None,
) -> tuple[nn.Module, dict[str, nn.Module], list[dict]]:
    """Train an SSL encoder with ``method`` on uint8 ``images``; return (encoder, heads, log).
    ``steps`` replaces the recipe's epochs with that many optimiser steps (the attacker's
    own SSL baseline gets the extraction's steps); ``resume_from``, ``save_state`` and
    ``save_every`` are fit()'s."""
    in_channels, image_size = images.shape[1], images.shape[-1]
    encoder = build_encoder(backbone, in_channels, image_size).to(device)
    heads = {k: h.to(device) for k, h in make_heads(method, encoder.representation_dim, recipe).items()}
    augmentation = recipe.get("augmentation", {})
    two_view_loss = method_loss(method, encoder, heads, recipe)
    watermark = recipe.get("watermark")
    if watermark:
        # Its own entry in the heads, so fit() hands its parameters to the optimiser
        # (the authors' script never did: their watermark head stayed random).
        heads["watermark"] = watermark_head(encoder.representation_dim, tuple(watermark["hidden"])).to(device)

    def batch_loss(indices: torch.Tensor) -> torch.Tensor:
        batch = to_float(to_device(images[indices], device))  # views made on the device
        # Views in [0, 1]: the encoder applies its own input normalisation.
        v1 = simclr_view(batch, generator, augmentation)
        v2 = simclr_view(batch, generator, augmentation)
        loss = two_view_loss(v1, v2)
        if watermark:
            loss = loss + watermark["weight"] * watermark_loss(encoder, heads["watermark"], batch, watermark, generator)
        return loss

    history = fit(
        [encoder, *heads.values()],
        images.shape[0],
        batch_loss,
        epochs=recipe["epochs"],
        batch_size=recipe["batch_size"],
        lr=recipe["lr"],
        weight_decay=recipe.get("weight_decay", 0.0),
        generator=generator,
        description=f"victim {method}",
        resume_from=resume_from,
        save_state=save_state,
        save_every=save_every,
        optimiser_name=recipe.get("optimiser", "adam"),
        momentum=recipe.get("momentum", 0.9),
        steps=steps,
    )
    return encoder, heads, history


def victim_projector(meta: dict) -> nn.Module | None:
    """The trained victim's projection head g_v from its checkpoint metadata (what an API
    exposing the head returns: z = g_v(f_v(x))); None for a victim without one."""
    heads = meta.get("heads")
    if not heads or "projector" not in heads:
        return None
    projector = make_heads(meta["method"], meta["representation_dim"], meta["config"]["recipe"])["projector"]
    projector.load_state_dict(heads["projector"])
    return projector.eval()
