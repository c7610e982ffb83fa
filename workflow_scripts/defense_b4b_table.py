"""Defense: B4B table and figure. Snakemake rule: defense_b4b_table."""

import pandas as pd

from sslsteal.defense_tables import b4b_table, write_b4b
from sslsteal.runtime import logged_to

with logged_to(snakemake.log[0]):
    wc, out = snakemake.wildcards, snakemake.output
    probes = pd.read_csv(snakemake.input[0])
    write_b4b(b4b_table(probes), probes, out.csv, out.markdown, out.figure, f"B4B: victim {wc.victim}", snakemake.params.style)
