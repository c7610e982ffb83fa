"""Apply a defense to the victim's cached answers. Snakemake rule: defend_answers."""

import torch

from sslsteal.backbones import load_encoder
from sslsteal.defenses import defend, detection_scores, resolve_defense
from sslsteal.dumps import read_dump, write_dump
from sslsteal.io import file_sha256
from sslsteal.runtime import configure_torch, logged_to
from sslsteal.victim import victim_projector

with logged_to(snakemake.log[0]) as log:
    wc = snakemake.wildcards
    configure_torch(snakemake.threads, "fp32")
    spec = resolve_defense(wc.defense, snakemake.input.get("calibration", []), snakemake.params.get("b4b"))
    dump = read_dump(
        snakemake.input.dump,
        expect={"victim": wc.victim, "query_set": wc.query_set, "victim_config_hash": snakemake.params.victim_hash},
    )
    if "defense" in dump.meta:
        raise ValueError(f"{snakemake.input.dump} is already defended ({dump.meta['defense']})")
    projector = None
    if spec["kind"] in ("detection", "b4b"):
        # Both read the victim's projections of the answers (the head is the defender's).
        _, meta = load_encoder(snakemake.input.encoder, expect={"config_hash": snakemake.params.victim_hash})
        projector = victim_projector(meta)
    # Its own stream of random numbers, fixed by the seed: same config, same answers.
    generator = torch.Generator().manual_seed(snakemake.params.seed)
    answers, projection, record = defend(dump.representation, spec, generator, dump.projection, projector)
    meta = {**dump.meta, "defense": wc.defense, "undefended_sha256": file_sha256(snakemake.input.dump)}
    if "threshold" in spec:
        meta["detection_threshold"] = spec["threshold"]
    write_dump(
        snakemake.output.dump,
        answers.numpy(),
        dump.index,
        meta,
        projection=None if projection is None else projection.numpy(),
        extra={name: values.numpy() for name, values in record.items()},
    )
    if "flagged" in record:
        log.info("%s on the whole pool: %s", wc.defense, detection_scores(record["flagged"], record["duplicate"]))
    if "sigma" in record:
        log.info("%s on the whole pool: noise sigma mean %.3f, max %.3f", wc.defense, record["sigma"].mean(), record["sigma"].max())
    log.info("defended %s answers with %s", tuple(answers.shape[:-1]), spec)
