"""Encoders (backbones) and projection heads.

The representation an encoder returns is what the victim's API answers with and what
the linear probe reads. Its dimension is measured from the model (a dummy forward),
never hard-coded.
"""

from __future__ import annotations

import torch
from torch import nn


class SmallCNN(nn.Module):
    """A small conv net for 2-core CPUs: 3x3 convs with BatchNorm/ReLU, stride-2
    downsampling after the first block, global average pooling. The first block runs at
    full resolution, so it is kept narrow (16 channels: 1.75x faster than 32 on CPU). The representation is
    non-negative (post-ReLU), which the Wasserstein loss needs."""

    def __init__(self, in_channels: int = 1, widths: tuple[int, ...] = (16, 64, 128, 256)):
        super().__init__()
        layers: list[nn.Module] = []
        previous = in_channels
        for i, width in enumerate(widths):
            stride = 1 if i == 0 else 2
            layers += [
                nn.Conv2d(previous, width, 3, stride=stride, padding=1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
            ]
            previous = width
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.pool(self.features(x)), 1)


def build_encoder(spec: dict, in_channels: int, image_size: int) -> nn.Module:
    """Build an encoder from its config ``spec`` (``{"name": ..., **options}``).

    Sets ``encoder.representation_dim`` by running one dummy image through it.
    """
    name = spec["name"]
    if name == "small_cnn":
        encoder = SmallCNN(in_channels, tuple(spec.get("widths", (16, 64, 128, 256))))
    else:
        raise ValueError(f"unknown backbone {name!r}; known: small_cnn")
    encoder = encoder.to(memory_format=torch.channels_last)  # matches data.normalise
    encoder.representation_dim = representation_dim(encoder, in_channels, image_size)
    return encoder


@torch.no_grad()
def representation_dim(encoder: nn.Module, in_channels: int, image_size: int) -> int:
    was_training = encoder.training
    encoder.eval()
    dim = encoder(torch.zeros(2, in_channels, image_size, image_size)).shape[1]
    encoder.train(was_training)
    return int(dim)


def projection_head(in_dim: int, out_dim: int = 128) -> nn.Module:
    """SimCLR's head g: Linear(d, d) - ReLU - Linear(d, out_dim) (PAPER.md, Victims)."""
    return nn.Sequential(nn.Linear(in_dim, in_dim), nn.ReLU(inplace=True), nn.Linear(in_dim, out_dim))


def save_encoder(path, encoder: nn.Module, backbone: dict, in_channels: int, image_size: int, **meta) -> None:
    """Checkpoint an encoder with everything needed to rebuild it (and what made it)."""
    from .io import save_checkpoint

    save_checkpoint(
        path,
        encoder=encoder.state_dict(),
        backbone=backbone,
        in_channels=in_channels,
        image_size=image_size,
        representation_dim=encoder.representation_dim,
        **meta,
    )


def load_encoder(path) -> tuple[nn.Module, dict]:
    """Rebuild an encoder from :func:`save_encoder`'s checkpoint (``weights_only=True``)."""
    from .io import CheckpointError, load_checkpoint

    checkpoint = load_checkpoint(path)
    missing = [k for k in ("encoder", "backbone", "in_channels", "image_size") if k not in checkpoint]
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks {missing}; it was not written by save_encoder")
    encoder = build_encoder(checkpoint["backbone"], checkpoint["in_channels"], checkpoint["image_size"])
    try:
        encoder.load_state_dict(checkpoint["encoder"])
    except RuntimeError as err:
        raise CheckpointError(f"checkpoint {path} does not fit backbone {checkpoint['backbone']}: {err}") from err
    encoder.eval()
    meta = {k: v for k, v in checkpoint.items() if k not in ("encoder", "head")}
    return encoder, meta
