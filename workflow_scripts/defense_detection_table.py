"""Defense: detection table, accuracy and ROC figures. Snakemake rule: defense_detection_table."""

import pandas as pd

from sslsteal.defense_tables import detection_table, write_detection
from sslsteal.io import read_json
from sslsteal.runtime import logged_to

with logged_to(snakemake.log[0]) as log:
    wc, out = snakemake.wildcards, snakemake.output
    probes = pd.read_csv(snakemake.input.probes)
    calibration = read_json(snakemake.input.calibration)
    table, curves = detection_table(probes, calibration, snakemake.params.attacks)
    paths = {"csv": out.csv, "markdown": out.markdown, "figure": out.figure, "roc": out.roc}
    write_detection(table, curves, calibration, paths, f"Duplicate detection: victim {wc.victim}", snakemake.params.style)
    for label, curve in curves.items():
        log.info("%s: ROC AUC %.3f [%.3f, %.3f]", label, curve["auc"], curve["auc_low"], curve["auc_high"])
