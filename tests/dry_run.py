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
    counts = {}
    for line in (result.stdout + result.stderr).splitlines():
        match = re.fullmatch(r"\s*([a-z_]+)\s+(\d+)\s*", line)
        if match and match.group(1) != "total":
            counts[match.group(1)] = int(match.group(2))
    return counts
