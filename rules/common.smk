# The hub of the workflow. Config validation, cross-key checks, and the
# functions that turn the config into target paths and per-rule params.

import os
import sys
from types import SimpleNamespace

from snakemake.utils import min_version, validate

sys.path.insert(0, os.path.join(workflow.basedir, "src"))
from sslsteal import config as checks
from sslsteal.defense_spec import defense_name, needs_calibration, parse_defense
from sslsteal.io import config_hash

min_version("9.0")

CONFIG_SCHEMA = workflow.source_path("../schemas/config.schema.yaml")


def config_error(key, message):
    raise ValueError(f"config error at {key}: {message}")


def check_schema():
    """The schema's most relevant violation as one line naming the key and what is
    allowed (Snakemake's validate() prints the whole schema instead)."""
    import jsonschema
    import yaml

    with open(CONFIG_SCHEMA) as f:
        schema = yaml.safe_load(f)
    error = jsonschema.exceptions.best_match(
        jsonschema.Draft202012Validator(schema).iter_errors(config)
    )
    if error is None:
        return
    key = "".join(
        f"[{part}]" if isinstance(part, int) else f".{part}"
        for part in error.absolute_path
    ).lstrip(".")
    message = error.message
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        message += f"; allowed keys: {allowed}"
    elif error.validator == "propertyNames":
        message += f"; allowed: {error.schema['propertyNames']}"
    config_error(key or "(top level)", message)


check_schema()
# Also fills in the schema's defaults.
validate(config, CONFIG_SCHEMA)

DATA_ROOT = config.get("data_root", "data")
# Split sizes of the real datasets; synthetic sizes come from the config.
SPLIT_SIZES = {
    "fashion_mnist": {"train": 60000, "test": 10000},
    "digits": {"train": 1497, "test": 300},
    # The paper's datasets (torchvision's splits).
    "cifar10": {"train": 50000, "test": 10000},
    "cifar100": {"train": 50000, "test": 10000},
    "svhn": {"train": 73257, "test": 26032},
    "stl10": {"train": 5000, "test": 8000, "unlabeled": 100000},
    # ImageNet's train and val folders; the prepared subsets are datasets.imagenet.*_size.
    "imagenet": {"train": 1281167, "test": 50000},
}
# Image side length of each dataset: an encoder trained on one is fed every other
# dataset resized to it (e.g. STL10's 96 px queries to a 32 px CIFAR victim).
IMAGE_SIZES = {
    "fashion_mnist": 28,
    "digits": 8,
    "cifar10": 32,
    "cifar100": 32,
    "svhn": 32,
    "stl10": 96,
}


def split_size(dataset, split):
    if dataset == "synthetic":
        return config["datasets"]["synthetic"][f"n_{split}"]
    if dataset == "imagenet":
        subset = config["datasets"]["imagenet"].get(f"{split}_size")
        return subset or SPLIT_SIZES["imagenet"][split]
    if split not in SPLIT_SIZES[dataset]:
        config_error(
            f"split {split!r} of {dataset}",
            f"{dataset} has splits {sorted(SPLIT_SIZES[dataset])}",
        )
    return SPLIT_SIZES[dataset][split]


def image_size(dataset):
    options = config["datasets"].get(dataset, {})
    if dataset == "synthetic":
        return options.get("image_size", 28)
    if dataset == "imagenet":
        return options.get("image_size", 224)
    return IMAGE_SIZES[dataset]


def canonical(value):
    """Sort dict keys recursively. Snakemake compares params by their text, so without
    this, reordering keys in a config file would rerun every job."""
    if isinstance(value, dict):
        return {k: canonical(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [canonical(v) for v in value]
    return value


def check_config():
    """Cross-key checks the JSON schema cannot express; fail before any job runs."""
    datasets = config["datasets"]
    for name, options in datasets.items():
        mirrors = options.get("mirrors", [])
        present = [m for m in mirrors if os.path.isdir(m)]
        prepared_already = os.path.exists(f"{DATA_ROOT}/{name}/prepared.json")
        if mirrors and not present and not options.get("download", True):
            if not prepared_already:
                config_error(
                    f"datasets.{name}.mirrors",
                    f"none of {mirrors} exists and download is false: nothing can "
                    f"provide {name} (fix a mirror path or set download: true)",
                )
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
        if "dataset" in query_set and query_set["dataset"] not in datasets:
            config_error(
                f"query_sets.{name}.dataset",
                f"{query_set['dataset']!r} is not under datasets: {sorted(datasets)}",
            )
    extraction = config["extraction"]
    for i, block in enumerate(extraction["grid"]):
        key = f"extraction.grid[{i}]"
        for vid in block.get("victims", []):
            if vid not in config["victims"]:
                config_error(
                    f"{key}.victims",
                    f"{vid!r} is not under victims: {sorted(config['victims'])}",
                )
        for name in block["query_sets"]:
            if name not in config["query_sets"]:
                config_error(
                    f"{key}.query_sets",
                    f"{name!r} is not defined under query_sets: {sorted(config['query_sets'])}",
                )
            pool = query_pool_size(name)
            too_large = [b for b in block["budgets"] if b > pool]
            if too_large:
                config_error(
                    f"{key}.budgets",
                    f"{too_large} exceed the {pool} images of query set {name!r}",
                )
        for loss in block["losses"]:
            if loss not in extraction["loss_options"] and loss not in block.get(
                "loss_options", {}
            ):
                config_error(
                    f"extraction.loss_options.{loss}",
                    "missing (lr, batch_size[, temperature])",
                )
        heads = [m for m in block["methods"] if m != "direct"]
        if heads and "wasserstein" in block["losses"]:
            config_error(
                f"{key}.losses",
                f"wasserstein compares non-negative histograms; {heads} answer with head "
                "outputs that can be negative: list wasserstein in a direct-only block",
            )
        if (
            "head_recreation" in block["methods"]
            and "head_recreation" not in extraction
        ):
            config_error(
                "extraction.head_recreation",
                "required when a grid block lists head_recreation (views, head recipe)",
            )
        if "head_access" in block["methods"]:
            for vid in block.get("victims", list(config["victims"])):
                if "external" in config["victims"][vid]:
                    config_error(
                        f"{key}.methods",
                        f"head_access needs the victim's projection head; external victim "
                        f"{vid!r} has none (give this block `victims:` without it)",
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
        for qname, _ in pools_holding_last(
            downstream["dataset"], downstream["test_split"], test_last
        ):
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


def pools_holding_last(dataset, split, last):
    """(name, exclude_last) of each query set drawn from ``split`` of ``dataset`` that
    keeps any of its last ``last`` images (held out for probes or verification)."""
    for name, query_set in config["query_sets"].items():
        same = (query_set.get("dataset"), query_set.get("split")) == (dataset, split)
        if same and query_set.get("exclude_last", 0) < last:
            yield name, query_set.get("exclude_last", 0)


def query_pool_size(name):
    query_set = config["query_sets"][name]
    if "noise" in query_set:
        return query_set["noise"]["n"]
    return split_size(query_set["dataset"], query_set["split"]) - query_set.get(
        "exclude_last", 0
    )


def check_defenses():
    """Each defense's victims and attack cells must exist and be runnable."""
    defenses = config["defenses"]
    victims = config["victims"]
    for kind in ("poisoning", "detection"):
        block = defenses.get(kind)
        if not block:
            continue
        for vid in block.get("victims", []):
            if vid not in victims:
                config_error(
                    f"defenses.{kind}.victims",
                    f"{vid!r} is not under victims: {sorted(victims)}",
                )
        for i, attack in enumerate(block["attacks"]):
            key = f"defenses.{kind}.attacks[{i}]"
            if attack["query_set"] not in config["query_sets"]:
                config_error(
                    f"{key}.query_set",
                    f"{attack['query_set']!r} is not under query_sets: {sorted(config['query_sets'])}",
                )
            if attack["budget"] > query_pool_size(attack["query_set"]):
                config_error(
                    f"{key}.budget",
                    f"{attack['budget']} exceeds the {query_pool_size(attack['query_set'])} images "
                    f"of query set {attack['query_set']!r}",
                )
            if attack["loss"] not in config["extraction"]["loss_options"]:
                config_error(
                    f"extraction.loss_options.{attack['loss']}",
                    "missing (lr, batch_size[, temperature])",
                )
            if (
                attack["method"] == "head_recreation"
                and "head_recreation" not in config["extraction"]
            ):
                config_error(
                    "extraction.head_recreation",
                    f"required by {key} (views, head recipe)",
                )
            if attack["method"] != "direct" and attack["loss"] == "wasserstein":
                config_error(
                    f"{key}.loss",
                    "wasserstein needs non-negative answers: use it with method direct",
                )
    watermarked = [v for v in victims if "watermark" in victims[v].get("recipe", {})]
    if watermarked and "watermark" not in defenses:
        config_error(
            "defenses.watermark",
            f"victims {watermarked} are watermarked: say which held-out images verify "
            "them (dataset, split, last)",
        )
    if "watermark" in defenses:
        block = defenses["watermark"]
        if block["dataset"] not in config["datasets"]:
            config_error(
                "defenses.watermark.dataset",
                f"{block['dataset']!r} is not under datasets: {sorted(config['datasets'])}",
            )
        # Verification images must be new to every suspect's training and queries.
        for qname, excluded in pools_holding_last(
            block["dataset"], block["split"], block["last"]
        ):
            config_error(
                "defenses.watermark.last",
                f"the last {block['last']} {block['split']} images of {block['dataset']} "
                f"overlap query set {qname!r} (its exclude_last is {excluded})",
            )


def check_paper_scale_config():
    """Cross-key checks of the paper-scale keys (ImageNet, imported checkpoints, STL10's
    unlabeled split, per-block loss options, extra downstream sets); one line each."""
    datasets = config["datasets"]
    if "imagenet" in datasets and not os.path.exists(
        f"{DATA_ROOT}/imagenet/prepared.json"
    ):
        from sslsteal.imagenet import imagenet_folder_problem

        if "path" not in datasets["imagenet"]:
            config_error(
                "datasets.imagenet.path",
                "required: the ImageNet folder you prepared (never downloaded)",
            )
        problem = imagenet_folder_problem(datasets["imagenet"]["path"])
        if problem:
            config_error("datasets.imagenet.path", problem)
    for vid, victim in config["victims"].items():
        external = victim.get("external")
        encoder = f"results/victims/{vid}/encoder.pt"
        if external and not os.path.exists(external["path"]):
            if not os.path.exists(encoder):
                config_error(
                    f"victims.{vid}.external.path",
                    f"{external['path']} does not exist (download the checkpoint there; "
                    "docs/paper-scale.md)",
                )
        if (
            victim.get("train_split") == "unlabeled"
            and victim.get("dataset") != "stl10"
        ):
            config_error(
                f"victims.{vid}.train_split", "unlabeled exists for stl10 only"
            )
    for name, query_set in config["query_sets"].items():
        if (
            query_set.get("split") == "unlabeled"
            and query_set.get("dataset") != "stl10"
        ):
            config_error(f"query_sets.{name}.split", "unlabeled exists for stl10 only")
    for vid in config["victims"]:
        chosen = {}
        for i, block in enumerate(EXTRACTION_GRID):
            if vid not in block.get("victims", list(config["victims"])):
                continue
            for method in block["methods"]:
                for loss in block["losses"]:
                    options = block_loss_options(block, loss)
                    for query_set in block["query_sets"]:
                        for budget in block["budgets"]:
                            cell = (method, loss, query_set, budget)
                            if chosen.setdefault(cell, options) != options:
                                config_error(
                                    f"extraction.grid[{i}].loss_options",
                                    f"cell {cell} of victim {vid!r} gets other {loss} "
                                    "options from an earlier block",
                                )
    for vid in config["paper_figures"].get("comparison_by_victim", {}):
        if vid not in config["victims"]:
            config_error(
                "paper_figures.comparison_by_victim",
                f"{vid!r} is not under victims: {sorted(config['victims'])}",
            )
    for name in config["paper_figures"].get("extra_downstream", []):
        if name not in config["probe"]["downstream"]:
            config_error(
                "paper_figures.extra_downstream",
                f"{name!r} is not one of probe.downstream: "
                f"{sorted(config['probe']['downstream'])}",
            )


EXTRACTION_GRID = config["extraction"]["grid"]


def block_loss_options(block, loss):
    """A grid block's options for ``loss``: its own, else extraction.loss_options."""
    own = block.get("loss_options", {})
    if loss in own:
        return canonical(own[loss])
    if loss not in config["extraction"]["loss_options"]:
        config_error(
            f"extraction.loss_options.{loss}", "missing (lr, batch_size[, temperature])"
        )
    return canonical(config["extraction"]["loss_options"][loss])


def extraction_loss_options(wildcards):
    """The loss options of one extraction cell (the first block listing it)."""
    for block in EXTRACTION_GRID:
        if (
            wildcards.victim in block.get("victims", VICTIMS)
            and wildcards.method in block["methods"]
            and wildcards.loss in block["losses"]
            and wildcards.query_set in block["query_sets"]
            and int(wildcards.budget) in block["budgets"]
        ):
            return block_loss_options(block, wildcards.loss)
    return block_loss_options({}, wildcards.loss)


# First: a split or loss-option mistake gets its own message, before check_config
# would trip over it.
check_paper_scale_config()
check_config()
check_defenses()
try:
    checks.check(config, split_size, query_pool_size)
except checks.ConfigError as error:
    raise ValueError(str(error)) from None

VICTIMS = sorted(config["victims"])
TRAINED_VICTIMS = [v for v in VICTIMS if "external" not in config["victims"][v]]
EXTERNAL_VICTIMS = [v for v in VICTIMS if "external" in config["victims"][v]]
# A pattern that matches no path when its list is empty.
TRAINED_VICTIMS_PATTERN = "|".join(TRAINED_VICTIMS) or "(?!)"
EXTERNAL_VICTIMS_PATTERN = "|".join(EXTERNAL_VICTIMS) or "(?!)"
EXTRACTION = config["extraction"]
# Encoders' arithmetic in every job that runs one (results depend on it).
PRECISION = config.get("precision", "fp32")

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


# ---------------------------------------------------------------- paths
def prepared(dataset):
    return f"{DATA_ROOT}/{dataset}/prepared.json"


def victim_dataset(wildcards):
    return prepared(config["victims"][wildcards.victim]["dataset"])


def victim_image_size(wildcards):
    """The input size the victim expects (an external victim's, or a trained victim's
    dataset's when the downstream images have another size); None: the data's own."""
    victim = config["victims"][wildcards.victim]
    if "external" in victim:
        return victim["external"]["image_size"]
    downstream = config["probe"]["downstream"][wildcards.downstream]["dataset"]
    size = image_size(victim["dataset"])
    return None if size == image_size(downstream) else size


def victim_hash(wildcards):
    """The hash of the victim's config that its checkpoint, dumps and stolen copies
    carry; each consumer refuses a file whose hash differs (made by another config)."""
    return config_hash(canonical(config["victims"][wildcards.victim]))


def stolen_backbone(victim):
    return canonical(
        EXTRACTION.get("stolen_backbone") or config["victims"][victim]["backbone"]
    )


def extraction_cells(victim):
    """The (method, loss, query_set, budget, seed) cells the grid asks of ``victim``."""
    return checks.extraction_cells(config, victim)


# Defenses and watermark verification run at the first seed of `seeds`.
SEED0 = checks.default_seeds(config)[0]


def stolen_probes(victim, downstream):
    return [
        f"results/probes/{downstream}/stolen/{victim}/{method}/{loss}/{query_set}/{budget}/seed{seed}.json"
        for method, loss, query_set, budget, seed in extraction_cells(victim)
    ]


def baseline_probes(victim, downstream):
    """The probes that give a victim's table its meaning, at every seed its cells use:
    the victim, random init, raw pixels, the attacker's own SSL and the independent twin.
    """
    seeds = checks.probe_seeds(config, victim)
    paths = []
    for seed in seeds:
        paths += [
            f"results/probes/{downstream}/victim/{victim}/seed{seed}.json",
            f"results/probes/{downstream}/random_init/{victim}/seed{seed}.json",
            f"results/probes/{downstream}/raw_pixels/seed{seed}.json",
        ]
        if victim in checks.independent_victims(config):
            paths.append(
                f"results/probes/{downstream}/independent/{victim}/seed{seed}.json"
            )
    paths += [
        f"results/probes/{downstream}/own_ssl/{victim}/{query_set}/{budget}/seed{seed}.json"
        for query_set, budget, seed in checks.own_ssl_cells(config, victim)
    ]
    return paths


def query_set_kinds():
    """in_distribution / out_of_distribution / noise of each query set, for every
    victim's dataset (the claims table compares them)."""
    datasets = {v.get("dataset") for v in config["victims"].values()}
    kinds = {}
    for name, query_set in config["query_sets"].items():
        if "noise" in query_set:
            kinds[name] = "noise"
        elif query_set["dataset"] in datasets:
            kinds[name] = "in_distribution"
        else:
            kinds[name] = "out_of_distribution"
    return kinds


def victim_train_sizes():
    sizes = {}
    for vid, victim in config["victims"].items():
        if "external" in victim:
            continue
        n = split_size(victim["dataset"], victim.get("train_split", "train"))
        sizes[vid] = min(n, victim.get("train_size") or n)
    return sizes


def comparison_cell(victim=None):
    """(query set, budget) of the method-comparison table (of ``victim``, when
    paper_figures.comparison_by_victim names one for it)."""
    chosen = config["paper_figures"].get("comparison", {})
    chosen = config["paper_figures"].get("comparison_by_victim", {}).get(victim, chosen)
    first = EXTRACTION["grid"][0]
    return (
        chosen.get("query_set", first["query_sets"][0]),
        chosen.get("budget", max(first["budgets"])),
    )


def views_dump(victim, query_set):
    seed = EXTRACTION["head_recreation"]["view_seed"]
    return f"results/dumps/{victim}/{query_set}/views_seed{seed}.h5"


def extraction_dump(wildcards):
    """The answers an extraction job reads: the views dump for head recreation,
    otherwise the plain answers (representations, and projections when there is a head).
    """
    if wildcards.method == "head_recreation":
        return views_dump(wildcards.victim, wildcards.query_set)
    return f"results/dumps/{wildcards.victim}/{wildcards.query_set}/answers.h5"


def defended_extraction_dump(wildcards):
    """The same answers as :func:`extraction_dump`, as the defended API gave them."""
    folder, name = extraction_dump(wildcards).rsplit("/", 1)
    return f"{folder}/defended/{wildcards.defense}/{name}"


def extraction_method_options(wildcards):
    if wildcards.method == "head_recreation":
        return canonical(EXTRACTION["head_recreation"])
    return {}


# ---------------------------------------------------------------- defenses
DEFENSES = config["defenses"]


def with_head(victim):
    return "external" not in config["victims"][victim]


def defended_victims(kind):
    """The victims a defense block runs on (detection: those with a projection head)."""
    block = DEFENSES.get(kind)
    if not block:
        return []
    default = [v for v in VICTIMS if kind != "detection" or with_head(v)]
    return block.get("victims", default)


def defense_names(kind):
    if kind == "poisoning":
        return [defense_name("noise", s) for s in DEFENSES["poisoning"]["sigmas"]]
    return [defense_name("detection", DEFENSES["detection"]["target_fpr"], "fpr")]


def detection_calibration(victim):
    return checks.detection_calibration(config, victim)


def calibration_dataset(wildcards):
    return prepared(detection_calibration(wildcards.victim)["dataset"])


def calibration_record(wildcards):
    """The calibration a defense's threshold comes from (none for noise or a fixed
    threshold)."""
    if needs_calibration(parse_defense(wildcards.defense)):
        return [f"results/defenses/{wildcards.victim}/detection_calibration.json"]
    return []


def detection_attacks(victim):
    """The detection table's attacks, each with the defended dump holding its calls'
    scores (the scores do not depend on the threshold: the first setting's dump)."""
    name = defense_names("detection")[0]
    return [
        {
            **attack,
            "dump": defended_extraction_dump(
                SimpleNamespace(victim=victim, defense=name, **attack)
            ),
        }
        for attack in DEFENSES["detection"]["attacks"]
    ]


def detection_scores_dumps(victim):
    return sorted({attack["dump"] for attack in detection_attacks(victim)})


def attack_cell_path(attack):
    return "{method}/{loss}/{query_set}/{budget}/seed{seed}".format(
        **attack, seed=SEED0
    )


def defense_probes(victim, downstream, kind):
    """The probes a defense's table needs: the legitimate user's and each attack's,
    defended (every setting) and undefended."""
    cells = [attack_cell_path(a) for a in DEFENSES[kind]["attacks"]]
    paths = [
        f"results/probes/{downstream}/victim/{victim}/seed{SEED0}.json",
        f"results/probes/{downstream}/random_init/{victim}/seed{SEED0}.json",
    ]
    paths += [
        f"results/probes/{downstream}/stolen/{victim}/{cell}.json" for cell in cells
    ]
    for name in defense_names(kind):
        paths.append(
            f"results/probes/{downstream}/defended/{name}/victim/{victim}/seed{SEED0}.json"
        )
        paths += [
            f"results/probes/{downstream}/defended/{name}/stolen/{victim}/{cell}.json"
            for cell in cells
        ]
    return paths


def watermarked_victims():
    return checks.watermarked_victims(config)


def plain_twin(victim):
    """The victim trained with the same config but no watermark (the watermark's cost
    is the difference of their probe accuracies); None when the config has none."""
    mine = canonical(config["victims"][victim])
    mine["recipe"] = {k: v for k, v in mine["recipe"].items() if k != "watermark"}
    for other in TRAINED_VICTIMS:
        if other != victim and canonical(config["victims"][other]) == mine:
            return other
    return None


def watermark_suspects(victim):
    """What the verifier tests: the watermarked victim itself (the check that the
    watermark is there) and its stolen copies at the first seed."""
    paths = [f"results/watermark/{victim}/victim/{victim}.json"]
    paths += [
        f"results/watermark/{victim}/stolen/{method}/{loss}/{query_set}/{budget}/seed{seed}.json"
        for method, loss, query_set, budget, seed in extraction_cells(victim)
        if seed == SEED0
    ]
    return paths


def watermark_null(victim):
    """The verification records of the encoders that never saw ``victim``: its null."""
    return [
        f"results/watermark/{victim}/{name}.json"
        for name in checks.watermark_innocents(config, victim)
    ]


def watermark_dataset(wildcards):
    return prepared(DEFENSES["watermark"]["dataset"])


def plain_twin_probe(wildcards):
    """The probe of the watermarked victim's plain twin (none without a twin)."""
    twin = plain_twin(wildcards.victim)
    downstream = config["paper_figures"]["downstream"]
    return (
        [f"results/probes/{downstream}/victim/{twin}/seed{SEED0}.json"] if twin else []
    )


def defense_outputs(downstream):
    outputs = []
    for kind, table in (
        ("poisoning", "defense_poisoning"),
        ("detection", "defense_detection"),
    ):
        for victim in defended_victims(kind):
            outputs += [
                f"paper_figures/{victim}/{downstream}/{table}.{ext}"
                for ext in ("csv", "md", "png")
            ]
    for victim in watermarked_victims():
        outputs += [
            f"paper_figures/{victim}/watermark.{ext}" for ext in ("csv", "md", "png")
        ]
    return outputs


def paper_figure_outputs():
    downstreams = [config["paper_figures"]["downstream"]]
    downstreams += config["paper_figures"].get("extra_downstream", [])
    return (
        defense_outputs(config["paper_figures"]["downstream"])
        + [
            "paper_figures/paper_comparison.csv",
            "paper_figures/paper_comparison.md",
            "paper_figures/claims.csv",
            "paper_figures/claims.md",
        ]
        + expand(
            [
                "paper_figures/victim_quality_{downstream}.csv",
                "paper_figures/victim_quality_{downstream}.md",
            ],
            downstream=downstreams,
        )
        + expand(
            [
                "paper_figures/{victim}/{downstream}/stolen_accuracy.csv",
                "paper_figures/{victim}/{downstream}/stolen_accuracy.md",
                "paper_figures/{victim}/{downstream}/accuracy_vs_queries.png",
                "paper_figures/{victim}/{downstream}/method_comparison.csv",
                "paper_figures/{victim}/{downstream}/method_comparison.md",
            ],
            victim=VICTIMS,
            downstream=downstreams,
        )
    )


def downstream_dataset(wildcards):
    return prepared(config["probe"]["downstream"][wildcards.downstream]["dataset"])


def query_dataset(wildcards):
    """The prepared dataset of a query set; nothing for the noise baseline."""
    query_set = config["query_sets"][wildcards.query_set]
    return [] if "noise" in query_set else prepared(query_set["dataset"])


# Every probe gets the same protocol: only the probe block (the seed is the path's).
PROBE_PARAMS = dict(
    downstream=lambda wildcards: canonical(
        config["probe"]["downstream"][wildcards.downstream]
    ),
    recipe=canonical({k: v for k, v in config["probe"].items() if k != "downstream"}),
    precision=PRECISION,
)
