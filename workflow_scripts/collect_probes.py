"""Gather one victim's probe results into one row per cell (mean over seeds, 95%
intervals, paired differences from the victim). Snakemake rules: collect_probes,
collect_defense_probes."""

from sslsteal.io import atomic_path
from sslsteal.runtime import logged_to
from sslsteal.tables import collect, summarise_cells

with logged_to(snakemake.log[0]) as log:
    paths = list(snakemake.input)  # every probe JSON the rule lists, in its order
    probes = collect(paths)
    cells = summarise_cells(probes)
    with atomic_path(snakemake.output[0]) as tmp:
        cells.to_csv(tmp, index=False)
    log.info("collected %d probe results into %d cells", len(probes), len(cells))
