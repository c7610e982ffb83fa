"""Our numbers next to the paper's published cells. Snakemake rule: paper_comparison."""

from sslsteal.runtime import logged_to
from sslsteal.tables import paper_comparison, write_paper_comparison

with logged_to(snakemake.log[0]) as log:
    matches = snakemake.params.matches
    table = paper_comparison(matches["entries"])
    write_paper_comparison(table, snakemake.output.csv, snakemake.output.markdown, matches["source"])
    log.info("%d published cells, %d run by this config", len(matches["entries"]), int((table["status"] == "run").sum()))
