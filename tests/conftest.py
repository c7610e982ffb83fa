import os
import tempfile
from pathlib import Path

# Snakemake imports every executor plugin at start-up, and the SLURM plugin then runs
# `scontrol show config`: on a machine whose SLURM config names a controller that does
# not answer (e.g. a slurm.conf in /etc/slurm without its daemons) that waits 9 s in
# every snakemake call. An empty SLURM config makes scontrol fail at once; the test that
# runs a real SLURM points SLURM_CONF at its own cluster's config for its duration
# (tests/test_slurm.py, local_slurm), and leaves /etc as it found it.
if "SLURM_CONF" not in os.environ:
    _EMPTY_SLURM_CONF = Path(tempfile.gettempdir()) / "sslsteal-tests-no-slurm.conf"
    _EMPTY_SLURM_CONF.touch()
    os.environ["SLURM_CONF"] = str(_EMPTY_SLURM_CONF)
