"""Try one victim recipe on Fashion-MNIST and print its linear-probe accuracy.

For tuning SSL recipes on a CPU before they go into config.yaml. Uses the default
config's probe protocol (L-BFGS logistic regression, L2 chosen by 5-fold cross-validation;
100 labels per class, seeds 0-2; the last 5,000 test images) and the prepared data in
data/fashion_mnist (run the data rule first). Prints the victim's accuracy per label
seed next to raw pixels' and a random-init encoder's.

    python benchmarks/victim_recipe_trial.py THREADS METHOD N_TRAIN 'RECIPE_JSON' [PRECISION]
    python benchmarks/victim_recipe_trial.py 1 barlow_twins 60000 \
        '{"epochs": 4, "batch_size": 256, "lr": 0.002, "weight_decay": 1e-5, "hidden_dim": 512,
          "projection_dim": 512, "augmentation": {"crop_scale": [0.3, 1.0]}}'
"""

import json
import sys
import time
from pathlib import Path

import torch

from sslsteal.backbones import build_encoder, representations
from sslsteal.data import load_split
from sslsteal.probe import linear_probe, per_class_subset, raw_pixels
from sslsteal.runtime import configure_torch, seed_everything
from sslsteal.victim import train_victim

ROOT = Path(__file__).resolve().parents[1]

threads, method, n_train, recipe = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), json.loads(sys.argv[4])
precision = sys.argv[5] if len(sys.argv) > 5 else "fp32"
configure_torch(threads, precision)
train_images, train_labels = load_split(ROOT / "data/fashion_mnist", "train")
test_images, test_labels = load_split(ROOT / "data/fashion_mnist", "test")
backbone = {"name": "small_cnn", "widths": [16, 64, 128, 256]}
started = time.time()
encoder, _, history = train_victim(method, train_images[:n_train], backbone, recipe, seed_everything(0))
print(f"train time {time.time() - started:.0f} s, losses {[round(h['loss'], 3) for h in history]}")
test_images, test_labels = test_images[-5000:], test_labels[-5000:]
torch.manual_seed(0)
random_init = build_encoder(backbone, 1, 28)
for name, features in (
    ("victim", lambda images: representations(encoder, images)),
    ("raw pixels", raw_pixels),
    ("random init", lambda images: representations(random_init, images)),
):
    train_x, test_x = features(train_images), features(test_images)
    accuracies = []
    for seed in (0, 1, 2):
        keep = per_class_subset(train_labels, 100, seed)
        accuracies.append(linear_probe(train_x[keep], train_labels[keep], test_x, test_labels, seed=seed)["accuracy"])
    print(f"{name}: probe accuracy per label seed {[round(a, 4) for a in accuracies]}, mean {sum(accuracies) / 3:.4f}")
print(f"{method} {precision} {json.dumps(recipe)}")
