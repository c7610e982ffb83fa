"""How many optimiser steps does an extraction need? Steal the default victim directly
(5,000 queries, batch 128, seed 0) for each given number of steps, with MSE and InfoNCE,
and print the stolen copy's probe accuracy (the default protocol: 100 labels per class,
label seed 0, the last 5,000 test images) and its final training loss. Needs the
default run's victim dump and Fashion-MNIST (run the default run first).

    python benchmarks/extraction_steps_trial.py 400 1600 3200
"""

import sys
import time
from pathlib import Path

from sslsteal.backbones import representations
from sslsteal.data import load_split
from sslsteal.dumps import read_dump
from sslsteal.extraction import steal
from sslsteal.probe import linear_probe, per_class_subset
from sslsteal.queries import query_pool
from sslsteal.runtime import configure_torch, seed_everything

ROOT = Path(__file__).resolve().parents[1]

configure_torch(1, "bf16")
root = ROOT / "data/fashion_mnist"
dump = read_dump(ROOT / "results/dumps/simclr_fashion_mnist/fashion_mnist_test/answers.h5")
pool, _ = query_pool({"dataset": "fashion_mnist", "split": "test", "exclude_last": 5000}, root, (1, 28, 28))
train_images, train_labels = load_split(root, "train")
test_images, test_labels = load_split(root, "test")
test_images, test_labels = test_images[5000:], test_labels[5000:]
keep = per_class_subset(train_labels, 100, 0)
backbone = {"name": "small_cnn", "widths": [16, 64, 128, 256]}
for loss, lr, options in (("mse", 1e-3, {}), ("infonce", 3e-4, {"temperature": 0.07})):
    for steps in (int(a) for a in sys.argv[1:]):
        started = time.time()
        stolen, history, _ = steal(
            "direct", pool, dump, 5000, loss=loss, loss_options=options, approach_options={}, backbone=backbone,
            steps=steps, batch_size=128, lr=lr, weight_decay=0.0, generator=seed_everything(0),
        )
        result = linear_probe(representations(stolen, train_images[keep]), train_labels[keep],
                              representations(stolen, test_images), test_labels, seed=0)
        print(f"{loss} {steps} steps: probe accuracy {result['accuracy'] * 100:.2f}%, final loss "
              f"{history[-1]['loss']:.4f} ({time.time() - started:.0f} s)", flush=True)
