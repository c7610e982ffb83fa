"""SimCLR augmentations applied to whole batches of tensors.

Per-image PIL transforms in DataLoader workers dominate the cost of training a small
encoder on a 2-core CPU, so the views are made batch-wise: one affine grid per image
(random resized crop + horizontal flip) sampled with ``grid_sample``, then per-image
colour jitter. Every random draw uses an explicit generator, so a seed fixes the views.
Inputs and outputs are float images in [0, 1], shape (B, C, H, W).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def _uniform(n: int, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    return torch.rand(n, generator=generator) * (high - low) + low


def random_resized_crop_flip(
    images: torch.Tensor,
    generator: torch.Generator,
    scale: tuple[float, float] = (0.2, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    flip_p: float = 0.5,
) -> torch.Tensor:
    """Crop a random area fraction in ``scale`` with aspect ratio in ``ratio``, resize it
    back to the input size, and flip horizontally with probability ``flip_p``."""
    n = images.shape[0]
    area = _uniform(n, *scale, generator)
    log_ratio = _uniform(n, math.log(ratio[0]), math.log(ratio[1]), generator)
    aspect = torch.exp(log_ratio)
    width = torch.sqrt(area * aspect).clamp(max=1.0)
    height = torch.sqrt(area / aspect).clamp(max=1.0)
    # Crop centre in normalised [-1, 1] coordinates, kept inside the image.
    centre_x = (torch.rand(n, generator=generator) * 2 - 1) * (1 - width)
    centre_y = (torch.rand(n, generator=generator) * 2 - 1) * (1 - height)
    flip = torch.where(torch.rand(n, generator=generator) < flip_p, -1.0, 1.0)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = width * flip
    theta[:, 0, 2] = centre_x
    theta[:, 1, 1] = height
    theta[:, 1, 2] = centre_y
    grid = F.affine_grid(theta.to(images.device), list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def colour_jitter(
    images: torch.Tensor,
    generator: torch.Generator,
    brightness: float = 0.4,
    contrast: float = 0.4,
    saturation: float = 0.4,
    p: float = 0.8,
    grayscale_p: float = 0.2,
) -> torch.Tensor:
    """Per-image brightness/contrast (and saturation, random grayscale for RGB) jitter,
    each image jittered with probability ``p``."""
    n, channels = images.shape[:2]
    device = images.device

    def factor(strength: float) -> torch.Tensor:
        f = _uniform(n, 1 - strength, 1 + strength, generator)
        apply = torch.rand(n, generator=generator) < p
        return torch.where(apply, f, torch.ones(n)).view(n, 1, 1, 1).to(device)

    out = images * factor(brightness)
    mean = out.mean(dim=(1, 2, 3), keepdim=True)
    out = (out - mean) * factor(contrast) + mean
    if channels == 3:
        grey = (out * torch.tensor([0.299, 0.587, 0.114], device=device).view(1, 3, 1, 1)).sum(1, keepdim=True)
        out = (out - grey) * factor(saturation) + grey
        to_grey = (torch.rand(n, generator=generator) < grayscale_p).view(n, 1, 1, 1).to(device)
        grey = (out * torch.tensor([0.299, 0.587, 0.114], device=device).view(1, 3, 1, 1)).sum(1, keepdim=True)
        out = torch.where(to_grey, grey.expand_as(out), out)
    return out.clamp(0.0, 1.0)


def simclr_view(images: torch.Tensor, generator: torch.Generator, cfg: dict) -> torch.Tensor:
    """One SimCLR view of a batch; ``cfg`` holds the augmentation strengths."""
    out = random_resized_crop_flip(
        images, generator, scale=tuple(cfg.get("crop_scale", (0.2, 1.0))), flip_p=cfg.get("flip_p", 0.5)
    )
    return colour_jitter(
        out,
        generator,
        brightness=cfg.get("brightness", 0.4),
        contrast=cfg.get("contrast", 0.4),
        saturation=cfg.get("saturation", 0.4),
        p=cfg.get("jitter_p", 0.8),
        grayscale_p=cfg.get("grayscale_p", 0.2),
    )
