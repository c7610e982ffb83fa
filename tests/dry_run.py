"""Jobs per rule of a Snakemake dry run, for the tests that count a target's jobs."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def planned(workdir: Path, config: Path, *target: str) -> dict[str, int]:
    """Jobs per rule that ``snakemake -n`` of ``target`` in ``workdir`` would run."""
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), "--directory", str(workdir),
               "--configfile", str(config), "--cores", "1", *target, "--dry-run", "--quiet", "rules"]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    return job_counts(result.stdout + result.stderr)


def job_counts(output: str) -> dict[str, int]:
    """The per-rule job counts of a ``--quiet rules`` dry run's output (without the total)."""
    counts = {}
    for line in output.splitlines():
        match = re.fullmatch(r"\s*([a-z_]+)\s+(\d+)\s*", line)
        if match and match.group(1) != "total":
            counts[match.group(1)] = int(match.group(2))
    return counts
