"""Defense: detection table and figure. Snakemake rule: defense_detection_table."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # the package, even when not pip-installed

import pandas as pd

from sslsteal.defense_tables import detection_table, write_detection
from sslsteal.runtime import logged_to

with logged_to(snakemake.log[0]):
    wc, out = snakemake.wildcards, snakemake.output
    probes = pd.read_csv(snakemake.input[0])
    write_detection(detection_table(probes), out.csv, out.markdown, out.figure, f"Duplicate detection: victim {wc.victim}", snakemake.params.style)
