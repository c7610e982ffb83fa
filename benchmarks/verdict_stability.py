"""Do the claims' verdicts survive a second set of training seeds? Runs the default
grid's claim cells with two disjoint seed sets in one results folder and prints each
comparison's two verdicts, then how many kept their verdict and how many went from
holds to contradicted or back. Prints figures; asserts nothing (the targets are in
docs/protocol.md: no holds <-> contradicted flip, at least 90% kept).

    python benchmarks/verdict_stability.py                       # seeds {0,1,2} vs {3,4,5}
    python benchmarks/verdict_stability.py --seed-sets 0,1,2 3,4,5 --configfile config.yaml
    python benchmarks/verdict_stability.py --no-run               # compare what is on disk

Each seed set is the config's ``seeds`` replaced (the victim, its twin and every other
seed-free job are shared), the claim cells' probes made with Snakemake
(``targets.claims_probes``), then the claims table computed from each set's records alone
exactly as the ``claims`` rule does. Only the rule's own inputs change: same victim,
same test images, same protocol.
"""

from __future__ import annotations

import argparse
import copy
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from sslsteal import config as cfg  # noqa: E402
from sslsteal import targets  # noqa: E402
from sslsteal.claims import claims_table, compare_verdicts, flip_counts  # noqa: E402
from sslsteal.io import read_json  # noqa: E402
from sslsteal.tables import collect  # noqa: E402


def seeded_config(base: dict, seeds: list[int]) -> dict:
    config = copy.deepcopy(base)
    config["seeds"] = seeds
    return config


def claims_for(config_file: Path, seeds: list[int], *, run: bool, cores: str) -> pd.DataFrame:
    base = cfg.read_config_file(config_file)
    raw = seeded_config(base, seeds)
    config = cfg.load(copy.deepcopy(raw), workdir=ROOT)
    probes = targets.claims_probes(config)
    inference = targets.claims_inference_records(config)
    if run:
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as handle:
            yaml.safe_dump(raw, handle, sort_keys=False)
        # The targets first: --configfile and --rerun-triggers take several values.
        command = [
            sys.executable, "-m", "snakemake", *probes, *inference,
            "--snakefile", str(ROOT / "Snakefile"), "--directory", str(ROOT), "--cores", cores,
            # Shared upstream jobs (victim, dumps) must not rerun because another seed set's
            # config differs in a parameter they do not read.
            "--rerun-triggers", "mtime", "--quiet", "rules", "--configfile", handle.name,
        ]
        print(f"seeds {seeds}: making {len(probes)} probe records", flush=True)
        subprocess.run(command, check=True, cwd=ROOT)
    records = collect([ROOT / path for path in probes])
    figures = config["paper_figures"]
    return claims_table(
        records,
        query_set_kinds=cfg.query_set_kinds(config),
        victim_train_sizes=cfg.victim_train_sizes(config),
        margin_fraction=figures["claims"]["margin_fraction"],
        inference_records=[read_json(ROOT / path) for path in inference],
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configfile", default="config.yaml")
    parser.add_argument("--seed-sets", nargs=2, default=["0,1,2", "3,4,5"], metavar="SEEDS")
    parser.add_argument("--cores", default="all")
    parser.add_argument("--no-run", action="store_true", help="compare the records already on disk")
    args = parser.parse_args(argv)
    sets = [[int(s) for s in text.split(",")] for text in args.seed_sets]
    if set(sets[0]) & set(sets[1]):
        sys.exit(f"the seed sets {sets[0]} and {sets[1]} overlap: they must be disjoint")
    tables = [claims_for(ROOT / args.configfile, seeds, run=not args.no_run, cores=args.cores) for seeds in sets]
    joined = compare_verdicts(*tables)
    pd.set_option("display.width", 250, "display.max_colwidth", 90, "display.max_rows", 500)
    print(joined.to_string(index=False))
    counts = flip_counts(joined)
    print()
    print(f"seed sets {sets[0]} and {sets[1]}: {counts}")


if __name__ == "__main__":
    main()
