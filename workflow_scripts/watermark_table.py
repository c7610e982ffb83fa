"""Watermark verification table and figure. Snakemake rule: watermark_table."""

from sslsteal.defense_tables import watermark_table, write_watermark
from sslsteal.runtime import logged_to

with logged_to(snakemake.log[0]) as log:
    inputs, out = snakemake.input, snakemake.output
    table, summary = watermark_table(
        inputs.suspects,
        inputs.null,
        inputs.watermarked[0],
        inputs.plain[0] if inputs.plain else None,
        snakemake.params.false_positive_rate,
    )
    title = f"Watermark: victim {snakemake.wildcards.victim}"
    write_watermark(table, summary, out.csv, out.markdown, out.figure, title, snakemake.params.style)
    log.info("null of %d encoders: %s", summary["null_encoders"], summary)
