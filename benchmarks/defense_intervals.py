"""The defense figures docs/defenses.md quotes, with their paired 95% intervals, from the probe
records of configs/full.yaml's defense targets (seed 0, the same test images throughout):
each party's accuracy drop under a defense, the watermark's cost, and the defense claims.
Prints figures; asserts nothing. Run after

    snakemake --cores all paper_figures/simclr_fashion_mnist/fashion_mnist/defense_detection.md \\
        paper_figures/simclr_fashion_mnist/fashion_mnist/defense_poisoning.md \\
        paper_figures/simclr_wm_fashion_mnist/watermark.md --configfile configs/full.yaml
    python benchmarks/defense_intervals.py
"""

from __future__ import annotations

import glob
from pathlib import Path

from sslsteal.claims import claims_table
from sslsteal.io import read_json
from sslsteal.stats import accuracy_interval, decode_correct, difference_interval
from sslsteal.tables import collect

ROOT = Path(__file__).resolve().parents[1]

PROBES = ROOT / "results/probes/fashion_mnist"
VICTIM, WATERMARKED = "simclr_fashion_mnist", "simclr_wm_fashion_mnist"
PARTIES = {
    "legitimate user": f"victim/{VICTIM}/seed0.json",
    **{
        f"{approach} {loss}": f"stolen/{VICTIM}/{approach}/{loss}/fashion_mnist_test/5000/seed0.json"
        for approach, loss in (("direct", "mse"), ("direct", "infonce"), ("head_recreation", "infonce"))
    },
}


def correct(relative: str):
    record = read_json(PROBES / relative)
    return decode_correct(record["correct"], record["n_test"])[None, :]


def points(interval) -> str:
    return f"{100 * interval.estimate:.1f} [{100 * interval.low:.1f}, {100 * interval.high:.1f}]"


def main() -> None:
    for defense in ("detection_fpr0.05", "poisoning_sigma0.3", "poisoning_sigma1", "poisoning_sigma3"):
        for party, path in PARTIES.items():
            defended = PROBES / "defended" / defense / path
            if defended.exists():
                drop = difference_interval(correct(path), correct(f"defended/{defense}/{path}"))
                print(f"{defense}: accuracy drop of {party}: {points(drop)} points")
    plain, marked = correct(f"victim/{VICTIM}/seed0.json"), correct(f"victim/{WATERMARKED}/seed0.json")
    print(f"probe accuracy: {VICTIM} {points(accuracy_interval(plain))}, {WATERMARKED} {points(accuracy_interval(marked))}")
    print(f"watermark cost (plain - watermarked): {points(difference_interval(plain, marked))} points")
    paths = [str(PROBES / path) for path in PARTIES.values()]
    paths += glob.glob(str(PROBES / "defended" / "*" / "**" / f"{VICTIM}" / "**" / "*.json"), recursive=True)
    paths += glob.glob(str(PROBES / "defended" / "*" / "victim" / VICTIM / "seed0.json"))
    table = claims_table(collect(sorted(set(paths))), {VICTIM: {"fashion_mnist_test": "in_distribution"}}, {})
    for row in table[table["claim"].str.contains("poisoning|detection")].itertuples():
        print(f"{row.claim}: {row.comparison}: {100 * row.effect:.1f} [{100 * row.ci_low:.1f}, {100 * row.ci_high:.1f}] {row.verdict}")


if __name__ == "__main__":
    main()
