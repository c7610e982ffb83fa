"""Victim SSL training: SimCLR (Chen et al. 2020), PAPER.md "Victims".

Two augmented views of each image go through the encoder f and the projection head g;
InfoNCE (``losses.info_nce``) pulls the two views of an image together. The encoder f
is what the API serves; the head is kept in the checkpoint for later attacks.
"""

from __future__ import annotations

import torch

from .augment import simclr_view
from .backbones import build_encoder, projection_head
from .data import normalise, to_float
from .losses import info_nce
from .training import fit


def train_simclr(
    images: torch.Tensor,
    backbone: dict,
    recipe: dict,
    generator: torch.Generator,
    device: torch.device = torch.device("cpu"),
) -> tuple[torch.nn.Module, torch.nn.Module, list[dict]]:
    """Train a SimCLR encoder + head on uint8 ``images``; return (encoder, head, log)."""
    in_channels, image_size = images.shape[1], images.shape[-1]
    encoder = build_encoder(backbone, in_channels, image_size).to(device)
    head = projection_head(encoder.representation_dim, recipe["projection_dim"]).to(device)
    augmentation = recipe["augmentation"]

    def batch_loss(indices: torch.Tensor) -> torch.Tensor:
        batch = to_float(images[indices]).to(device)
        views = torch.cat([simclr_view(batch, generator, augmentation), simclr_view(batch, generator, augmentation)])
        # One forward over both views: BatchNorm sees the whole 2B batch, as in SimCLR.
        z = head(encoder(normalise(views)))
        z1, z2 = z.chunk(2)
        return info_nce(z1, z2, temperature=recipe["temperature"])

    history = fit(
        [encoder, head],
        images.shape[0],
        batch_loss,
        epochs=recipe["epochs"],
        batch_size=recipe["batch_size"],
        lr=recipe["lr"],
        weight_decay=recipe["weight_decay"],
        generator=generator,
        description="victim simclr",
    )
    return encoder, head, history
