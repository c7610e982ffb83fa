"""Fit dataset inference's density model on the victim. Snakemake rule: fit_dataset_inference.

The victim's owner computes the victim's representations of a seeded sample of the
images it trained on (fit_images; disjoint from the score sample the suspects are
tested on) and fits standardise + PCA + a diagonal Gaussian mixture on them, stored as
plain arrays in JSON (sslsteal.dataset_inference).
"""

from pathlib import Path

from sslsteal import dataset_inference as di
from sslsteal.backbones import load_encoder, representations
from sslsteal.data import load_split
from sslsteal.io import write_json
from sslsteal.runtime import configure_torch, logged_to

with logged_to(snakemake.log[0]) as log:
    params = snakemake.params
    options = params.options
    device = configure_torch(snakemake.threads, params.precision)
    encoder, meta = load_encoder(snakemake.input.encoder, expect={"config_hash": params.victim_hash})
    images, _ = load_split(Path(snakemake.input.dataset).parent, options["train_split"])
    images = images[: options["train_images"]]
    fit_idx, _ = di.samples(len(images), options["fit_images"], options["score_images"], options["seed"])
    answers = representations(encoder.to(device), images[fit_idx], device=device).numpy()
    model = di.fit(answers, options["components"], options["pca_dim"], options["seed"])
    train_ll = di.log_likelihood(model, answers)
    record = {
        "victim": snakemake.wildcards.victim,
        "options": options,
        "fit_images": len(fit_idx),
        "fit_mean_log_likelihood": float(train_ll.mean()),
        **di.model_to_json(model),
    }
    write_json(snakemake.output[0], record)
    log.info("density of %d %d-d representations (converged %s): mean log-likelihood %.3f", len(fit_idx), model["dim"],
             model["converged"], record["fit_mean_log_likelihood"])
