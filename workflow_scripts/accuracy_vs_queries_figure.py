"""Accuracy vs number of queries. Snakemake rule: accuracy_vs_queries_figure."""

import pandas as pd

from sslsteal.runtime import logged_to
from sslsteal.tables import accuracy_vs_queries, stolen_accuracy_table

with logged_to(snakemake.log[0]):
    wc = snakemake.wildcards
    table = stolen_accuracy_table(pd.read_csv(snakemake.input[0]))
    query_set = snakemake.params.query_set
    title = f"victim {wc.victim}\nqueries from {query_set}, probe on {wc.downstream}"
    accuracy_vs_queries(table, snakemake.output[0], title, snakemake.params.style, query_set)
