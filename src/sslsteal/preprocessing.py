"""Preprocessing: what happens to an image between its dataset and the backbone's first layer.

Datasets hold uint8 images (N, C, H, W). :func:`model_input` turns them into what every
encoder takes: float in [0, 1], resized to the encoder's input size. Each encoder then
applies, as its first steps, the input normalisation its weights expect
(:class:`Normalise`, recorded in its checkpoint) and a :class:`ChannelAdapter` that
matches the image's channels to the backbone's. The SSL augmentations are in ``augment``.
"""

from __future__ import annotations

import torch
from torch import nn


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 images -> float in [0, 1]."""
    return images.float().div_(255.0)


def model_input(images: torch.Tensor, image_size: int | None = None) -> torch.Tensor:
    """uint8 images -> what an encoder takes: float in [0, 1], resized (bilinear,
    antialiased) to ``image_size`` when the encoder expects another size. Each encoder
    then applies its own input normalisation (:class:`Normalise`): it differs
    between encoders ([-1, 1] for those trained here, ImageNet's statistics for the
    imported SimSiam ResNet50), so it is not applied here."""
    x = to_float(images)
    if image_size is not None and x.shape[-1] != image_size:
        x = torch.nn.functional.interpolate(x, size=(image_size, image_size), mode="bilinear", antialias=True)
    return x


# What every encoder trained here sees: (x - 0.5) / 0.5 maps [0, 1] to [-1, 1]. Kept from
# before checkpoints recorded their normalisation, so those numbers do not change.
SYMMETRIC_MEAN, SYMMETRIC_STD = 0.5, 0.5
# ImageNet's per-channel statistics (RGB), which the public SimSiam ResNet50 was trained
# on (facebookresearch/simsiam's main_simsiam.py; docs/paper.md, Victims).
IMAGENET_NORMALISATION = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}


def symmetric_normalisation(channels: int) -> dict:
    """[0, 1] -> [-1, 1] on each of ``channels`` channels."""
    return {"mean": [SYMMETRIC_MEAN] * channels, "std": [SYMMETRIC_STD] * channels}


class Normalise(nn.Module):
    """(x - mean) / std per backbone channel, on images in [0, 1]; output channels-last
    (about 30% faster convolutions on CPU, and what GPUs prefer).

    Applied before the channel adapter, by broadcasting: a grey image against RGB
    statistics gives the RGB-normalised repeated image (what the adapter would have
    repeated), and RGB statistics that are equal on every channel are applied as one
    scalar, so an RGB image for a grey backbone is normalised then averaged, exactly as
    before checkpoints recorded their normalisation. The statistics are buffers outside
    the state dict: the checkpoint records them as metadata (``input_normalisation``).
    """

    def __init__(self, mean: list[float], std: list[float]):
        super().__init__()
        if len(mean) != len(std) or not mean:
            raise ValueError(f"input normalisation needs one mean and one std per channel, got mean {mean}, std {std}")
        if min(std) <= 0:
            raise ValueError(f"input normalisation std must be positive, got {std}")
        self.mean_values, self.std_values = [float(m) for m in mean], [float(s) for s in std]
        uniform = len(set(self.mean_values)) == 1 and len(set(self.std_values)) == 1
        shape = (1, 1 if uniform else len(mean), 1, 1)
        self.register_buffer("mean", torch.tensor(self.mean_values[: shape[1]]).view(shape), persistent=False)
        self.register_buffer("std", torch.tensor(self.std_values[: shape[1]]).view(shape), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ((x - self.mean) / self.std).contiguous(memory_format=torch.channels_last)


class ChannelAdapter(nn.Module):
    """Match the image's channels to the backbone's: grey images are repeated to 3
    channels for RGB backbones, RGB images averaged to grey for 1-channel backbones."""

    def __init__(self, backbone_channels: int):
        super().__init__()
        self.backbone_channels = backbone_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channels = x.shape[1]
        if channels == self.backbone_channels:
            return x
        if channels == 1:
            return x.expand(-1, self.backbone_channels, -1, -1)
        if self.backbone_channels == 1:
            return x.mean(1, keepdim=True)
        raise ValueError(f"cannot feed {channels}-channel images to a {self.backbone_channels}-channel backbone")
