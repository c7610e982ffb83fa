"""Which attack beats which defense: table and figure. Snakemake rule: attack_vs_defense_table."""

from sslsteal.defense_tables import attack_vs_defense_table, write_attack_vs_defense
from sslsteal.runtime import logged_to

with logged_to(snakemake.log[0]):
    params, out = snakemake.params, snakemake.output
    table = attack_vs_defense_table(params.cells, params.watermark_null, params.watermark_fpr)
    write_attack_vs_defense(table, out.csv, out.markdown, out.figure, params.style)
