"""The stolen-accuracy table (CSV + Markdown). Snakemake rule: stolen_accuracy_table."""

import pandas as pd

from sslsteal.runtime import logged_to
from sslsteal.tables import stolen_accuracy_table, write_table

with logged_to(snakemake.log[0]):
    wc = snakemake.wildcards
    table = stolen_accuracy_table(pd.read_csv(snakemake.input[0]))
    title = f"Stolen accuracy: victim {wc.victim}, linear probe on {wc.downstream}"
    write_table(table, snakemake.output.csv, snakemake.output.markdown, title)
