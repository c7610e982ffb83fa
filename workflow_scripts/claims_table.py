"""The paper's claims, checked on the probe records. Snakemake rule: claims."""

from sslsteal.claims import claims_table, summarise_claims, write_claims
from sslsteal.io import read_json
from sslsteal.runtime import logged_to
from sslsteal.tables import collect

with logged_to(snakemake.log[0]) as log:
    probes = collect(list(snakemake.input.probes))
    table = claims_table(
        probes,
        query_set_kinds=snakemake.params.query_set_kinds,
        victim_train_sizes=snakemake.params.victim_train_sizes,
        margin_fraction=snakemake.params.margin_fraction,
        inference_records=[read_json(path) for path in snakemake.input.inference],
    )
    summary = summarise_claims(table)
    write_claims(table, summary, snakemake.output.csv, snakemake.output.markdown)
    log.info("%d comparisons: %s", len(table), table["verdict"].value_counts().to_dict() if len(table) else {})
    for row in summary.itertuples():
        log.info("%s: %s (%d holds, %d contradicted, %d inconclusive, %d not tested)", row.claim, row.overall,
                 row.n_holds, row.n_contradicted, row.n_inconclusive, row.n_not_tested)
