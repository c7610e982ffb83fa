"""Measure the default run: wall time, peak memory, the result table, and the
up-to-date dry run. Prints figures; asserts nothing (targets are in docs/benchmarks.md).

    python benchmarks/default_run.py            # full run from scratch (cleans results/)
    python benchmarks/default_run.py --keep     # reuse what is already computed
    python benchmarks/default_run.py --dry-run-only
    python benchmarks/default_run.py --configfile configs/full.yaml --workdir runs/full \
        --publish paper_figures/full                                      # the full CPU run

--workdir runs the workflow in another folder (its own results/, logs/, data/ and
paper_figures/), so a second config does not overwrite the default run's committed
tables; --publish then copies that run's paper_figures/ to a folder of the repository.

Peak memory is the largest sum of resident memory over snakemake and all its job
processes, sampled every 0.2 s.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import psutil

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT  # the workflow's working directory (--workdir)


def snakemake() -> list[str]:
    return [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), "--directory", str(WORK)]


def tree_rss(process: psutil.Process) -> int:
    total = 0
    for p in [process, *process.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def run_measured(command: list[str]) -> tuple[float, int, int]:
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=WORK)
    watched = psutil.Process(process.pid)
    peak = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, tree_rss(watched))
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    code = process.wait()
    stop.set()
    sampler.join()
    return time.perf_counter() - started, peak, code


def dry_run(extra: list[str]) -> tuple[float, int]:
    started = time.perf_counter()
    result = subprocess.run([*snakemake(), "paper_figures", *extra, "--dry-run", "--quiet", "rules"], capture_output=True, text=True, cwd=WORK)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"dry run failed:\n{result.stderr[-3000:]}")
    total = re.search(r"^total\s+(\d+)", result.stdout + result.stderr, re.M)
    return seconds, int(total.group(1)) if total else 0


def shown(table: pd.DataFrame) -> str:
    table = table.copy()
    for column in table.columns:
        if "accuracy" in column:
            table[column] = (table[column] * 100).round(1)
    return table.round(3).astype(object).where(table.notna(), "").to_string(index=False)


def print_tables() -> None:
    for csv in sorted((WORK / "paper_figures").glob("victim_quality_*.csv")):
        print(f"\n{csv.relative_to(WORK)}\n{shown(pd.read_csv(csv))}")
    for csv in sorted((WORK / "paper_figures").glob("*/*/stolen_accuracy.csv")):
        table = pd.read_csv(csv)
        print(f"\n{csv.relative_to(WORK)}\n{shown(table)}")
        stolen = table[table["encoder"] == "stolen"]
        best = stolen.loc[stolen[stolen["budget"] == stolen["budget"].max()]["accuracy"].idxmax()]
        print(
            f"best stolen at {int(best['budget'])} queries: {best['approach']} {best['loss']} ({best['query_set']}) "
            f"{best['accuracy'] * 100:.1f}% [{best['ci_low'] * 100:.1f}, {best['ci_high'] * 100:.1f}], "
            f"{best['vs_victim'] * 100:+.1f} points from the victim [{best['vs_victim_low'] * 100:.1f}, {best['vs_victim_high'] * 100:.1f}]"
        )
        comparison = csv.with_name("approach_comparison.csv")
        if comparison.exists():
            print(f"\n{comparison.relative_to(WORK)}\n{shown(pd.read_csv(comparison))}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep", action="store_true", help="do not delete results/ first")
    parser.add_argument("--dry-run-only", action="store_true")
    parser.add_argument("--cores", default="all")
    parser.add_argument("--configfile", help="a config to run instead of config.yaml (e.g. configs/full.yaml)")
    parser.add_argument("--workdir", help="run in this folder instead of the repository root (created if missing)")
    parser.add_argument("--publish", help="copy the run's paper_figures/ to this folder of the repository")
    args = parser.parse_args()
    global WORK
    if args.workdir:
        WORK = (ROOT / args.workdir).resolve()
        WORK.mkdir(parents=True, exist_ok=True)
    # The target comes before --configfile: snakemake reads every word after it as a file.
    extra = ["--configfile", str((ROOT / args.configfile).resolve())] if args.configfile else []
    name = Path(args.configfile).stem if args.configfile else "default"
    if not args.dry_run_only:
        if not args.keep:
            for folder in ("results", "logs"):
                shutil.rmtree(WORK / folder, ignore_errors=True)
            for victim_folder in (WORK / "paper_figures").glob("*/"):
                if WORK != ROOT or victim_folder.name != "full":  # the full run's committed tables
                    shutil.rmtree(victim_folder)
        seconds, peak, code = run_measured([*snakemake(), "--cores", args.cores, "paper_figures", *extra])
        if code != 0:
            sys.exit(f"snakemake failed with exit code {code}")
        print(f"{name} run wall time: {seconds / 60:.1f} min ({seconds:.0f} s), data already on disk")
        print(f"{name} run peak memory (snakemake + jobs, summed RSS): {peak / 2**30:.2f} GiB")
        for tsv in sorted((WORK / "results" / "job_times").rglob("*.tsv")):
            if "train_victim" in str(tsv):
                print(f"victim training: {pd.read_csv(tsv, sep=chr(9))['s'].iloc[0]:.0f} s ({tsv.stem})")
        jobs = [(tsv.relative_to(WORK / "results" / "job_times").parts[0], pd.read_csv(tsv, sep="\t")["s"].iloc[0])
                for tsv in (WORK / "results" / "job_times").rglob("*.tsv")]
        by_rule = pd.DataFrame(jobs, columns=["rule", "seconds"]).groupby("rule")["seconds"].agg(["count", "sum"])
        print(f"job seconds by rule (summed over jobs):\n{by_rule.round(0).to_string()}")
    seconds, jobs = dry_run(extra)
    print(f"snakemake -n paper_figures right after: {jobs} jobs, {seconds:.1f} s")
    print_tables()
    claims = WORK / "paper_figures" / "claims.md"
    if claims.exists():
        print(f"\n{claims.relative_to(WORK)}\n{claims.read_text()}")
    if args.publish:
        publish(WORK / "paper_figures", ROOT / args.publish)


def publish(source: Path, destination: Path) -> None:
    """Replace ``destination`` by a copy of ``source``: copied beside it first, then
    renamed, so an interrupted copy never looks like a published run."""
    if source.resolve() == destination.resolve():
        return
    partial = destination.with_name(destination.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    shutil.copytree(source, partial, ignore=shutil.ignore_patterns("full", "*.partial"))
    shutil.rmtree(destination, ignore_errors=True)
    partial.rename(destination)
    print(f"published {source} to {destination.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
