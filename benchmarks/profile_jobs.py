"""cProfile of the work of the default run's two most common jobs, in one process: an
extraction (one epoch, direct, MSE, 9,000 queries, answers computed as the dump job
would) and a probe (20,000 train and 1,000 test representations, L-BFGS over the L2 grid). Prints
the functions with the most time of their own. Needs the default run's SimCLR victim
and the prepared Fashion-MNIST (run the default workflow first).

    python benchmarks/profile_jobs.py [N_ROWS]
"""

import cProfile
import io
import pstats
import sys
from pathlib import Path

from sslsteal.backbones import load_encoder, representations
from sslsteal.data import load_split
from sslsteal.extraction import train_stolen
from sslsteal.probe import linear_probe, subset
from sslsteal.runtime import configure_torch, seed_everything

ROOT = Path(__file__).resolve().parents[1]

configure_torch(1, "bf16")
victim, _ = load_encoder(ROOT / "results/victims/simclr_fashion_mnist/encoder.pt")
data = ROOT / "data/fashion_mnist"


def extraction_and_probe() -> None:
    test_images, test_labels = load_split(data, "test")
    answers = representations(victim, test_images[:9000])
    train_stolen(
        test_images[:9000], answers, loss="mse", loss_options={}, backbone={"name": "small_cnn", "widths": [16, 64, 128, 256]},
        in_channels=1, image_size=28, with_head=False, steps=9000 // 64, batch_size=64, lr=1e-3, weight_decay=0.0,
        generator=seed_everything(0),
    )
    train_images, train_labels = load_split(data, "train")
    keep = subset(train_labels, 20000, 0)
    linear_probe(
        representations(victim, train_images[keep]), train_labels[keep], representations(victim, test_images[-1000:]),
        test_labels[-1000:], seed=0,
    )


profile = cProfile.Profile()
profile.runcall(extraction_and_probe)
out = io.StringIO()
pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(int(sys.argv[1]) if len(sys.argv) > 1 else 12)
print(out.getvalue())
