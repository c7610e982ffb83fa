"""Try one victim recipe on Fashion-MNIST and print its linear-probe accuracy.

For tuning SSL recipes on a CPU before they go into config.yaml. Uses the default
config's probe protocol (seeded 20,000 train images, last 1,000 test images) and the
prepared data in data/fashion_mnist (run the data rule first).

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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from sslsteal.data import load_split  # noqa: E402
from sslsteal.probe import linear_probe, representations, subset  # noqa: E402
from sslsteal.runtime import configure_torch, seed_everything  # noqa: E402
from sslsteal.victim import train_victim  # noqa: E402

threads, method, n_train, recipe = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), json.loads(sys.argv[4])
precision = sys.argv[5] if len(sys.argv) > 5 else "fp32"
configure_torch(threads, precision)
train_images, train_labels = load_split(ROOT / "data/fashion_mnist", "train")
test_images, test_labels = load_split(ROOT / "data/fashion_mnist", "test")
backbone = {"name": "small_cnn", "widths": [16, 64, 128, 256]}
started = time.time()
encoder, _, history = train_victim(method, train_images[:n_train], backbone, recipe, seed_everything(0))
print(f"train time {time.time() - started:.0f} s, losses {[round(h['loss'], 3) for h in history]}")
keep = subset(len(train_images), 20000, 0)
train_x = representations(encoder, train_images[keep])
test_x = representations(encoder, test_images[-1000:])
print(f"feature std over the batch (collapse check): {train_x.std(0).mean().item():.4f}")
result = linear_probe(
    train_x, train_labels[keep], test_x, test_labels[-1000:],
    epochs=30, batch_size=256, lr=1e-3, weight_decay=1e-4, generator=torch.Generator().manual_seed(0),
)
print(f"{method} {precision} {json.dumps(recipe)}: victim probe accuracy {result['accuracy']:.4f}")
