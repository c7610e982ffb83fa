"""Dataset inference on a suspect encoder. Snakemake rules: verify_dataset_inference_*.

The victim's owner sends a suspect its own training images (the score sample, never
used for the fit) and unseen test images (the last unseen_last, which no attacker
queried), scores the suspect's representations under the victim's density model and
tests whether the training images score higher (Welch's one-sided t-test). A suspect
whose representations have another width than the victim's is recorded as not testable.
"""

from pathlib import Path

from sslsteal import dataset_inference as di
from sslsteal.backbones import load_encoder, load_suspect, representations
from sslsteal.data import load_split
from sslsteal.io import read_json, write_json
from sslsteal.runtime import configure_torch, logged_to

with logged_to(snakemake.log[0]) as log:
    params, wc = snakemake.params, snakemake.wildcards
    options = params.options
    stored = read_json(snakemake.input.density)
    if stored["options"] != options:
        raise ValueError(f"{snakemake.input.density} was fitted with other options: rebuild it (snakemake --forcerun fit_dataset_inference)")
    model = di.model_from_json(stored)
    device = configure_torch(snakemake.threads, params.precision)
    _, meta = load_encoder(snakemake.input.victim, expect={"config_hash": params.victim_hash})
    seed = int(wc.seed) if params.suspect_kind == "random_init" else None
    suspect, suspect_meta = load_suspect(params.suspect_kind, snakemake.input.get("suspect"), meta, params.suspect_hash, seed)
    root = Path(snakemake.input.dataset).parent
    train, _ = load_split(root, options["train_split"])
    train = train[: options["train_images"]]
    _, score_idx = di.samples(len(train), options["fit_images"], options["score_images"], options["seed"])
    unseen, _ = load_split(root, "test")
    unseen = unseen[-options["unseen_last"] :]
    suspect = suspect.to(device)
    train_answers = representations(suspect, train[score_idx], device=device).numpy()
    record = {
        "victim": wc.victim,
        "suspect_kind": params.suspect_kind,
        "suspect": getattr(wc, "suspect", wc.victim),
        "significance": options["significance"],
        "representation_dim": int(train_answers.shape[1]),
    }
    if params.suspect_kind == "defended_stolen":
        record["defense"] = wc.defense
    # The cell from the path (older checkpoints name the approach `method`), the calls
    # from the checkpoint.
    for key in ("approach", "loss", "query_set", "budget", "seed"):
        value = getattr(wc, key, None)
        if value is not None:
            record[key] = int(value) if key in ("budget", "seed") else value
    for key in ("queries", "api_calls"):
        if key in suspect_meta:
            record[key] = suspect_meta[key]
    result = di.verify(
        model,
        train_answers,
        lambda: representations(suspect, unseen, device=device).numpy(),
        options["significance"],
    )
    record.update(result)
    if result["testable"]:
        log.info("gap %.3f [%.3f, %.3f], p = %.3g, flagged %s", result["difference"], result["difference_low"],
                 result["difference_high"], result["p_value"], result["flagged"])
    else:
        log.info("not testable: %s", result["reason"])
    write_json(snakemake.output[0], record)
