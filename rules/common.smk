# The hub of the workflow. Config validation, cross-key checks, and the
# functions that turn the config into target paths and per-rule params.

from snakemake.utils import min_version, validate

min_version("9.0")


validate(config, workflow.source_path("../schemas/config.schema.yaml"))

DATA_ROOT = config.get("data_root", "data")
# Split sizes of the real datasets; synthetic sizes come from the config.
SPLIT_SIZES = {"fashion_mnist": {"train": 60000, "test": 10000}}


def split_size(dataset, split):
    if dataset == "synthetic":
        return config["datasets"]["synthetic"][f"n_{split}"]
    return SPLIT_SIZES[dataset][split]


def canonical(value):
    """Sort dict keys recursively. Snakemake compares params by their text, so without
    this, reordering keys in a config file would rerun every job."""
    if isinstance(value, dict):
        return {k: canonical(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [canonical(v) for v in value]
    return value


def config_error(key, message):
    raise ValueError(f"config error at {key}: {message}")


def check_config():
    """Cross-key checks the JSON schema cannot express; fail before any job runs."""
    datasets = config["datasets"]
    if "synthetic" in datasets:
        for key in ("seed", "n_train", "n_test"):
            if key not in datasets["synthetic"]:
                config_error(
                    f"datasets.synthetic.{key}", "required for the synthetic dataset"
                )
    for vid, victim in config["victims"].items():
        if "external" in victim:
            if "recipe" in victim:
                config_error(
                    f"victims.{vid}.recipe",
                    "an external victim is imported, not trained: remove the recipe",
                )
            continue
        for key in ("dataset", "recipe"):
            if key not in victim:
                config_error(
                    f"victims.{vid}.{key}",
                    "required for a trained victim (or give `external`)",
                )
        if victim["dataset"] not in datasets:
            config_error(
                f"victims.{vid}.dataset",
                f"{victim['dataset']!r} is not under datasets: {sorted(datasets)}",
            )
        if victim["method"] == "simclr" and "temperature" not in victim["recipe"]:
            config_error(
                f"victims.{vid}.recipe.temperature",
                "required for simclr (InfoNCE temperature > 0)",
            )
    for name, query_set in config["query_sets"].items():
        if query_set["dataset"] not in datasets:
            config_error(
                f"query_sets.{name}.dataset",
                f"{query_set['dataset']!r} is not under datasets",
            )
    extraction = config["extraction"]
    for name in extraction["query_sets"]:
        if name not in config["query_sets"]:
            config_error(
                "extraction.query_sets",
                f"{name!r} is not defined under query_sets: {sorted(config['query_sets'])}",
            )
        pool = query_pool_size(name)
        too_large = [b for b in extraction["budgets"] if b > pool]
        if too_large:
            config_error(
                "extraction.budgets",
                f"{too_large} exceed the {pool} images of query set {name!r}",
            )
    for loss in extraction["losses"]:
        if loss not in extraction["loss_options"]:
            config_error(
                f"extraction.loss_options.{loss}",
                "missing (lr, batch_size[, temperature])",
            )
    for name, downstream in config["probe"]["downstream"].items():
        if downstream["dataset"] not in datasets:
            config_error(
                f"probe.downstream.{name}.dataset",
                f"{downstream['dataset']!r} is not under datasets",
            )
        # No query may be a probe test image (the paper's protocol).
        test_n = split_size(downstream["dataset"], downstream["test_split"])
        test_last = downstream.get("test_last") or test_n
        for qname, query_set in config["query_sets"].items():
            same = (query_set["dataset"], query_set["split"]) == (
                downstream["dataset"],
                downstream["test_split"],
            )
            if same and query_set.get("exclude_last", 0) < test_last:
                config_error(
                    f"query_sets.{qname}.exclude_last",
                    f"the query pool overlaps the probe test set of probe.downstream.{name} "
                    f"(set exclude_last >= {test_last})",
                )
    if config["paper_figures"]["downstream"] not in config["probe"]["downstream"]:
        config_error(
            "paper_figures.downstream",
            f"not one of probe.downstream: {sorted(config['probe']['downstream'])}",
        )


def query_pool_size(name):
    query_set = config["query_sets"][name]
    return split_size(query_set["dataset"], query_set["split"]) - query_set.get(
        "exclude_last", 0
    )


check_config()

VICTIMS = sorted(config["victims"])
TRAINED_VICTIMS = [v for v in VICTIMS if "external" not in config["victims"][v]]
EXTERNAL_VICTIMS = [v for v in VICTIMS if "external" in config["victims"][v]]
# A pattern that matches no path when its list is empty.
TRAINED_VICTIMS_PATTERN = "|".join(TRAINED_VICTIMS) or "(?!)"
EXTERNAL_VICTIMS_PATTERN = "|".join(EXTERNAL_VICTIMS) or "(?!)"
EXTRACTION = config["extraction"]


# ---------------------------------------------------------------- paths
def prepared(dataset):
    return f"{DATA_ROOT}/{dataset}/prepared.json"


def victim_dataset(wildcards):
    return prepared(config["victims"][wildcards.victim]["dataset"])


def victim_image_size(wildcards):
    """The input size an external victim expects; None: the data's own size."""
    return config["victims"][wildcards.victim].get("external", {}).get("image_size")


def stolen_backbone(victim):
    return canonical(
        EXTRACTION.get("stolen_backbone") or config["victims"][victim]["backbone"]
    )


def stolen_probes(victim, downstream):
    return expand(
        "results/probes/{downstream}/stolen/{victim}/{method}/{loss}/{query_set}/{budget}.json",
        downstream=downstream,
        victim=victim,
        method=EXTRACTION.get("methods", ["direct"]),
        loss=EXTRACTION["losses"],
        query_set=EXTRACTION["query_sets"],
        budget=EXTRACTION["budgets"],
    )


def paper_figure_outputs():
    downstream = config["paper_figures"]["downstream"]
    return [
        f"paper_figures/victim_quality_{downstream}.csv",
        f"paper_figures/victim_quality_{downstream}.md",
    ] + expand(
        [
            "paper_figures/{victim}/{downstream}/stolen_accuracy.csv",
            "paper_figures/{victim}/{downstream}/stolen_accuracy.md",
            "paper_figures/{victim}/{downstream}/accuracy_vs_queries.png",
        ],
        victim=VICTIMS,
        downstream=downstream,
    )


def downstream_dataset(wildcards):
    return prepared(config["probe"]["downstream"][wildcards.downstream]["dataset"])


def query_dataset(wildcards):
    return prepared(config["query_sets"][wildcards.query_set]["dataset"])


# Every probe gets the same protocol: only the probe block and the seed.
PROBE_PARAMS = dict(
    downstream=lambda wildcards: canonical(
        config["probe"]["downstream"][wildcards.downstream]
    ),
    recipe=canonical({k: v for k, v in config["probe"].items() if k != "downstream"}),
    seed=config["seed"],
)
