"""A quick trial of the watermark recipe: train a SimCLR victim with the rotation task on
the first N Fashion-MNIST training images, then report its secret head's accuracy on
the last 1,000 test images, each rotated by a seeded random angle. Prints; asserts nothing.

    python benchmarks/watermark_trial.py N EPOCHS BATCH_FRACTION WEIGHT
    python benchmarks/watermark_trial.py 30000 2 0.5 2.0   # the default config's recipe
    python benchmarks/watermark_trial.py 30000 2 0.25 1.0

Needs the prepared Fashion-MNIST in data/fashion_mnist (run the data rule first).
The recipe is config.yaml's SimCLR victim's, one thread, bf16.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

from sslsteal.backbones import representations
from sslsteal.data import load_split
from sslsteal.runtime import configure_torch
from sslsteal.victim import train_victim
from sslsteal.watermark import rotated_uint8, rotation_labels

ROOT = Path(__file__).resolve().parents[1]


def main(n: str, epochs: str, batch_fraction: str, weight: str) -> None:
    configure_torch(1, "bf16")
    torch.manual_seed(0)
    train, _ = load_split(ROOT / "data/fashion_mnist", "train")
    test, _ = load_split(ROOT / "data/fashion_mnist", "test")
    recipe = {
        "epochs": int(epochs), "batch_size": 256, "lr": 0.002, "weight_decay": 1e-6, "temperature": 0.2,
        "projection_dim": 128,
        "augmentation": {"crop_scale": [0.3, 1.0], "flip_p": 0.5, "brightness": 0.4, "contrast": 0.4, "jitter_p": 0.8},
        "watermark": {"weight": float(weight), "batch_fraction": float(batch_fraction), "hidden": [256, 128]},
    }
    started = time.perf_counter()
    encoder, heads, history = train_victim(
        "simclr", train[: int(n)], {"name": "small_cnn", "widths": [16, 64, 128, 256]}, recipe,
        torch.Generator().manual_seed(0),
    )
    held_out = test[-1000:]
    angles = torch.rand(len(held_out), generator=torch.Generator().manual_seed(0)) * 360.0
    with torch.no_grad():
        predicted = heads["watermark"](representations(encoder, rotated_uint8(held_out, angles))).argmax(1)
    accuracy = float((predicted == rotation_labels(angles)).float().mean())
    print(f"trained in {time.perf_counter() - started:.0f} s, last epoch loss {history[-1]['loss']:.4f}")
    print(f"watermark accuracy on 1,000 rotated held-out images: {accuracy:.3f}")


if __name__ == "__main__":
    main(*sys.argv[1:])
