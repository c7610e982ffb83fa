"""How much of the representation space each party of the default run covers under B4B's
hash (docs/defenses.md, "B4B"): the share of the 2^bits SimHash buckets (random
hyperplanes on the victim's projections, seed 0) filled by the attacker's queries (the
first 1,000 and 5,000 of the Fashion-MNIST test pool), by the legitimate user (its
probe's 1,000 labelled training images, then the 5,000 test images), and by each of four
sybils sharing the attacker's 5,000 queries. Prints figures; asserts nothing. Needs the
default run's victim and answers:

    snakemake --cores all results/dumps/simclr_fashion_mnist/fashion_mnist_test/answers.h5
    python benchmarks/b4b_coverage.py [bits ...]
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from sslsteal.backbones import load_encoder, representations
from sslsteal.data import load_split
from sslsteal.defenses import detector_view, lsh_buckets, running_coverage
from sslsteal.dumps import read_dump
from sslsteal.probe import per_class_subset
from sslsteal.victim import victim_projector

ROOT = Path(__file__).resolve().parents[1]
VICTIM = "simclr_fashion_mnist"

torch.set_num_threads(1)
encoder, meta = load_encoder(ROOT / f"results/victims/{VICTIM}/encoder.pt")
projector = victim_projector(meta)
attacker = detector_view(read_dump(ROOT / f"results/dumps/{VICTIM}/fashion_mnist_test/answers.h5").representation, projector)
root = ROOT / "data/fashion_mnist"
train_images, train_labels = load_split(root, "train")
test_images, _ = load_split(root, "test")
keep = per_class_subset(train_labels, 100, 0)
user = detector_view(representations(encoder, torch.cat([train_images[keep], test_images[-5000:]])), projector)
print("bits  buckets  attacker@1000  attacker@5000  user@1000  user@6000  each of 4 sybils@1250")
for bits in [int(b) for b in sys.argv[1:]] or [8, 10, 12, 14]:
    hyperplanes = torch.randn(bits, attacker.shape[1], generator=torch.Generator().manual_seed(0))
    n = 2**bits
    seen = running_coverage(lsh_buckets(attacker, hyperplanes), n)
    users = running_coverage(lsh_buckets(user, hyperplanes), n)
    sybils = [running_coverage(lsh_buckets(attacker[k::4], hyperplanes), n)[-1] for k in range(4)]
    print(
        f"{bits:4d} {n:8d} {float(seen[999]):14.3f} {float(seen[4999]):14.3f} {float(users[999]):10.3f} "
        f"{float(users[-1]):10.3f}   {', '.join(f'{float(c):.3f}' for c in sybils)}"
    )
