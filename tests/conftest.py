import os
import tempfile
from pathlib import Path

# Snakemake imports every executor plugin at start-up, and the SLURM plugin then runs
# `scontrol show config`: on a machine with SLURM's tools but no running controller
# (here, after tests/test_slurm.py stopped its one-node cluster) that waits 9 s in every
# snakemake call. An empty SLURM config makes scontrol fail at once; the test that runs
# a real SLURM removes it for its own duration (tests/test_slurm.py, local_slurm).
if "SLURM_CONF" not in os.environ:
    _EMPTY_SLURM_CONF = Path(tempfile.gettempdir()) / "sslsteal-tests-no-slurm.conf"
    _EMPTY_SLURM_CONF.touch()
    os.environ["SLURM_CONF"] = str(_EMPTY_SLURM_CONF)
