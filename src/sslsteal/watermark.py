"""The watermark (docs/paper.md, "Defenses the paper examines"): a reactive defense.

The victim is trained with a secret rotation task (is the image rotated by an angle in
[0, 180) or [180, 360)?) through an MLP head on its representation
(:func:`watermark_loss`, added to the SSL loss by ``victim.train_victim``). A suspect
encoder is verified by applying that head (:func:`victim_watermark_head`) to its
representations of rotated held-out images (:func:`rotated_uint8`; the
``verify_watermark`` rules) and testing its accuracy against a null of encoders that
never saw the victim (``defense_tables.watermark_table``), not against chance: innocent
encoders' features carry rotation information too.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def rotate(images: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """Rotate each float image (B x C x H x W) by its angle in degrees (counter-clockwise,
    about the centre, zeros outside), one affine resampling for the whole batch."""
    theta = torch.deg2rad(angles.float())
    cos, sin = torch.cos(theta), torch.sin(theta)
    zeros = torch.zeros_like(cos)
    matrices = torch.stack([torch.stack([cos, -sin, zeros], 1), torch.stack([sin, cos, zeros], 1)], 1)
    grid = F.affine_grid(matrices.to(images.dtype), list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def rotation_labels(angles: torch.Tensor) -> torch.Tensor:
    """The secret task's label: 0 for an angle in [0, 180), 1 for [180, 360)."""
    return (torch.remainder(angles, 360.0) >= 180.0).long()


def watermark_head(dim: int, hidden: tuple[int, ...] = (256, 128)) -> nn.Module:
    """The paper's watermark head, an MLP d-256-128-2 on the representation."""
    sizes = [dim, *hidden]
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers, nn.Linear(sizes[-1], 2))


def rotated_uint8(images: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """uint8 images rotated by ``angles``, as a verifier would send them to a suspect."""
    rotated = rotate(images.float() / 255.0, angles)
    return (rotated * 255.0).round().clamp(0, 255).to(torch.uint8)


def watermark_loss(
    encoder: nn.Module, head: nn.Module, batch: torch.Tensor, watermark: dict, generator: torch.Generator
) -> torch.Tensor:
    """The secret task on a share of the batch: rotate each image by a random angle in
    [0, 360) and classify [0, 180) vs [180, 360) from its representation."""
    n = max(2, round(len(batch) * watermark["batch_fraction"]))
    angles = torch.rand(n, generator=generator) * 360.0
    rotated = rotate(batch[:n], angles.to(batch.device))  # in [0, 1], normalised by the encoder
    logits = head(encoder(rotated).float())
    return F.cross_entropy(logits, rotation_labels(angles).to(batch.device))


def victim_watermark_head(meta: dict) -> nn.Module | None:
    """The watermarked victim's secret head from its checkpoint; None without one."""
    watermark = meta.get("config", {}).get("recipe", {}).get("watermark")
    if not watermark or "watermark" not in meta.get("heads", {}):
        return None
    head = watermark_head(meta["representation_dim"], tuple(watermark["hidden"]))
    head.load_state_dict(meta["heads"]["watermark"])
    return head.eval()
