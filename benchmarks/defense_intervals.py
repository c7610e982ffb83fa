"""The defense figures docs/defenses.md quotes, with their paired 95% intervals over the
three training seeds and the test images, from the probe records of a configs/full.yaml
run: each party's accuracy drop under each defense of the watermarked victim, and the
watermark's cost (the plain SimCLR victim against the watermarked one, same recipe).
Prints figures; asserts nothing. The defense claims themselves are rows of the run's
claims table (paper_figures/full/claims.md). Run after the full run:

    python benchmarks/default_run.py --configfile configs/full.yaml --workdir runs/full \\
        --publish paper_figures/full
    python benchmarks/defense_intervals.py --workdir runs/full
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from sslsteal.io import read_json
from sslsteal.stats import accuracy_interval, decode_correct, difference_interval

ROOT = Path(__file__).resolve().parents[1]
VICTIM, WATERMARKED = "simclr_fashion_mnist", "simclr_wm_fashion_mnist"
CELL = "fashion_mnist_test/5000"
PARTIES = {
    "legitimate user": f"victim/{WATERMARKED}",
    **{
        f"{approach} {loss}": f"stolen/{WATERMARKED}/{approach}/{loss}/{CELL}"
        for approach, loss in (("direct", "infonce"), ("head_recreation", "infonce"), ("contsteal", "infonce"))
    },
}
DEFENSES = ("poisoning_sigma0.3", "poisoning_sigma1", "poisoning_sigma3", "detection_fpr0.05", "b4b_sybils1", "b4b_sybils4")
SEEDS = (0, 1, 2)


def correct(probes: Path, relative: str) -> np.ndarray | None:
    """(seeds, test images) of one cell's probe records; None when a seed is missing."""
    paths = [probes / f"{relative}/seed{seed}.json" for seed in SEEDS]
    if not all(p.exists() for p in paths):
        return None
    return np.stack([decode_correct(r["correct"], r["n_test"]) for r in map(read_json, paths)])


def points(interval) -> str:
    return f"{100 * interval.estimate:.1f} [{100 * interval.low:.1f}, {100 * interval.high:.1f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", default=".", help="the run's working directory (default: the repository)")
    probes = (ROOT / parser.parse_args().workdir / "results/probes/fashion_mnist").resolve()
    for defense in DEFENSES:
        for party, path in PARTIES.items():
            # A legitimate user is one account: under four sybils it gets one account's answers.
            user_defense = "b4b_sybils1" if party == "legitimate user" and defense.startswith("b4b") else defense
            clean, defended = correct(probes, path), correct(probes, f"defended/{user_defense}/{path}")
            if clean is not None and defended is not None:
                print(f"{defense}: accuracy drop of {party}: {points(difference_interval(clean, defended))} points")
    plain, marked = correct(probes, f"victim/{VICTIM}"), correct(probes, f"victim/{WATERMARKED}")
    if plain is not None and marked is not None:
        print(f"probe accuracy: {VICTIM} {points(accuracy_interval(plain))}, {WATERMARKED} {points(accuracy_interval(marked))}")
        print(f"watermark cost (plain - watermarked): {points(difference_interval(plain, marked))} points")


if __name__ == "__main__":
    main()
