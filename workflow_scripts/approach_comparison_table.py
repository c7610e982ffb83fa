"""Approach x loss at one query set and budget. Snakemake rule: approach_comparison_table."""

import pandas as pd

from sslsteal.runtime import logged_to
from sslsteal.tables import approach_comparison, stolen_accuracy_table, write_comparison

with logged_to(snakemake.log[0]):
    wc, params = snakemake.wildcards, snakemake.params
    table = approach_comparison(stolen_accuracy_table(pd.read_csv(snakemake.input[0])), params.query_set, params.budget)
    title = (
        f"Extraction approaches: victim {wc.victim}, {params.budget:,} queries from {params.query_set}, "
        f"linear probe on {wc.downstream}"
    )
    write_comparison(table, snakemake.output.csv, snakemake.output.markdown, title)
