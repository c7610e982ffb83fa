"""Dataset-inference table and figure. Snakemake rule: dataset_inference_table."""

from sslsteal import dataset_inference as di
from sslsteal.runtime import logged_to

with logged_to(snakemake.log[0]) as log:
    inputs, out = snakemake.input, snakemake.output
    table, summary = di.table(inputs.suspects, inputs.null)
    title = f"Dataset inference: victim {snakemake.wildcards.victim}"
    di.write_table(table, summary, out.csv, out.markdown, out.figure, title, snakemake.params.style)
    log.info("null of %d encoders: %s", summary["null_encoders"], summary)
