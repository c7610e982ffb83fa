"""Each victim next to the random-init floor. Snakemake rule: victim_quality_table."""

from sslsteal.runtime import logged_to
from sslsteal.tables import collect, victim_quality_table, write_victim_quality

with logged_to(snakemake.log[0]):
    probes = collect(list(snakemake.input))
    write_victim_quality(victim_quality_table(probes), snakemake.output.csv, snakemake.output.markdown)
