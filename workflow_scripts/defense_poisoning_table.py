"""Defense: poisoning table and figure. Snakemake rule: defense_poisoning_table."""

import pandas as pd

from sslsteal.defense_tables import poisoning_table, write_poisoning
from sslsteal.runtime import logged_to

with logged_to(snakemake.log[0]):
    wc, out = snakemake.wildcards, snakemake.output
    probes = pd.read_csv(snakemake.input[0])
    write_poisoning(poisoning_table(probes), probes, out.csv, out.markdown, out.figure, f"Prediction poisoning: victim {wc.victim}", snakemake.params.style)
