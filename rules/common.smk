# The hub of the workflow: the config checked and completed by sslsteal.config before
# any job runs, and the input functions that turn a rule's wildcards into the paths
# sslsteal.targets names. The logic lives in those modules (tested without Snakemake).

import os

from snakemake.utils import min_version

from sslsteal import config as cfg
from sslsteal import targets
from sslsteal.config import canonical
from sslsteal.defense_spec import B4B_SETTINGS, needs_calibration, parse_defense
from sslsteal.io import config_hash
from sslsteal.registry import APPROACHES, DEFENSE_KINDS, LOSSES, wildcard_pattern

min_version("9.0")

try:
    # Also fills in the schema's defaults (Snakemake's validate()).
    cfg.load(config, configfiles=workflow.configfiles)
except cfg.ConfigError as error:
    raise ValueError(str(error)) from None

DATA_ROOT = cfg.data_root(config)
VICTIMS = sorted(config["victims"])
TRAINED_VICTIMS = cfg.trained_victims(config)
EXTERNAL_VICTIMS = [v for v in VICTIMS if v not in TRAINED_VICTIMS]
TRAINED_VICTIMS_PATTERN = wildcard_pattern(TRAINED_VICTIMS)
EXTERNAL_VICTIMS_PATTERN = wildcard_pattern(EXTERNAL_VICTIMS)
EXTRACTION = config["extraction"]
DEFENSES = config["defenses"]
# Encoders' arithmetic in every job that runs one (results depend on it).
PRECISION = config.get("precision", "fp32")
# Defenses and watermark verification run at the first seed of `seeds`.
SEED0 = targets.first_seed(config)

# ---------------------------------------------------------------- resources
# GPUs each encoder job (training, dumps, extraction, probes) requests. Off by default:
# profiles/default caps local runs at gpu=1, so requesting a GPU on a CPU-only machine
# would run these jobs one at a time (on 2 cores the default run's 2,706 job-seconds
# of encoder work, spread over 2 cores in 23 min, would take 45 min or more).
# profiles/slurm requests GPUs per rule itself (set-resources), whatever this says.
ENCODER_GPUS = 1 if config["gpu"] else 0
# Walltime (minutes) and memory (MB) per job: the defaults for the default config,
# with margin (its longest job, the SimCLR victim, takes 8.4 min on 2 CPU cores; its
# peak memory, two jobs and snakemake together, is 1.96 GiB). Only schedulers read
# them (SLURM: --time, --mem); profiles/slurm sets paper-scale values per rule.
RESOURCES = {
    "train_victim": dict(runtime=120, mem_mb=4000),
    "import_victim": dict(runtime=30, mem_mb=8000),  # a ResNet50 checkpoint in memory
    "dump_victim": dict(runtime=30, mem_mb=4000),
    "extract": dict(runtime=60, mem_mb=4000),
    "probe": dict(runtime=30, mem_mb=4000),
    "prepare_dataset": dict(runtime=30, mem_mb=2000),  # may download
    # Tables and figures: local rules, no torch.
    "light": dict(runtime=10, mem_mb=1000),
}
# Torch threads per job, by what the job does (CPU results depend on them).
THREADS = config["threads"]


# ---------------------------------------------------------------- input functions
def checked(wildcards):
    """No input: refuses, before any job runs, wildcards this config cannot make (an
    unknown query set, a budget above the pool, a defense out of range...)."""
    try:
        targets.check_wildcards(config, dict(wildcards.items()))
    except targets.TargetError as error:
        raise ValueError(str(error)) from None
    return []


def prepared(dataset):
    return f"{DATA_ROOT}/{dataset}/prepared.json"


def victim_dataset(wildcards):
    return prepared(config["victims"][wildcards.victim]["dataset"])


def downstream_dataset(wildcards):
    return prepared(config["probe"]["downstream"][wildcards.downstream]["dataset"])


def query_dataset(wildcards):
    """The prepared dataset of a query set; nothing for the noise baseline."""
    query_set = config["query_sets"][wildcards.query_set]
    return [] if "noise" in query_set else prepared(query_set["dataset"])


def calibration_dataset(wildcards):
    return prepared(cfg.detection_calibration(config, wildcards.victim)["dataset"])


def watermark_dataset(wildcards):
    return prepared(DEFENSES["watermark"]["dataset"])


def dataset_inference_dataset(wildcards):
    """The victim's dataset: its training images and the unseen test images."""
    return prepared(cfg.dataset_inference_options(config, wildcards.victim)["dataset"])


def victim_image_size(wildcards):
    """The input size the victim expects (an external victim's, or a trained victim's
    dataset's when the downstream images have another size); None: the data's own."""
    victim = config["victims"][wildcards.victim]
    if "external" in victim:
        return victim["external"]["image_size"]
    downstream = config["probe"]["downstream"][wildcards.downstream]["dataset"]
    size = cfg.image_size(config, victim["dataset"])
    return None if size == cfg.image_size(config, downstream) else size


def victim_hash(wildcards):
    """The hash of the victim's config that its checkpoint, dumps and stolen copies
    carry; each consumer refuses a file whose hash differs (made by another config)."""
    return config_hash(canonical(config["victims"][wildcards.victim]))


def suspect_hash(wildcards):
    return config_hash(canonical(config["victims"][wildcards.suspect]))


def stolen_backbone(wildcards):
    return canonical(
        EXTRACTION.get("stolen_backbone")
        or config["victims"][wildcards.victim]["backbone"]
    )


def extraction_dump(wildcards):
    return targets.extraction_dump(
        config, wildcards.victim, wildcards.approach, wildcards.query_set
    )


def defended_extraction_dump(wildcards):
    return targets.defended_dump(extraction_dump(wildcards), wildcards.defense)


def extraction_loss_options(wildcards):
    return cfg.cell_loss_options(
        config,
        wildcards.victim,
        wildcards.approach,
        wildcards.loss,
        wildcards.query_set,
        int(wildcards.budget),
    )


def extraction_approach_options(wildcards):
    """The views, head recipe or StolenEncoder options the approach reads."""
    return cfg.approach_options(config, wildcards.approach)


def calibration_record(wildcards):
    """The calibration a defense's threshold comes from (none for poisoning or a
    fixed threshold)."""
    if needs_calibration(parse_defense(wildcards.defense)):
        return [f"results/defenses/{wildcards.victim}/detection_calibration.json"]
    return []


def b4b_settings(wildcards):
    """defenses.b4b's settings for a B4B defense (none for the others, so changing the
    block reruns only B4B's jobs)."""
    if parse_defense(wildcards.defense)["kind"] == "b4b":
        # Only what shapes the answers (not the block's victims, attacks or sybil list).
        block = DEFENSES.get("b4b", {})
        return canonical({k: block[k] for k in B4B_SETTINGS if k in block})
    return {}


def comparison_cell(wildcards):
    return cfg.comparison_cell(config, wildcards.victim)


# Every probe gets the same protocol: only the probe block (the seed is the path's).
PROBE_PARAMS = dict(
    downstream=lambda wildcards: canonical(
        config["probe"]["downstream"][wildcards.downstream]
    ),
    recipe=canonical({k: v for k, v in config["probe"].items() if k != "downstream"}),
    precision=PRECISION,
)
