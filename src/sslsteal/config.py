"""The workflow's config: loading, checking, and what it implies, without torch or
Snakemake (tests call these directly; ``rules/common.smk`` calls :func:`load` before any
job runs).

Every check raises :class:`ConfigError` naming the key (or file and line) and what is
allowed, in one line. Paths in the config are relative to the working directory.
"""

from __future__ import annotations

import functools
import math
import os
from pathlib import Path
from typing import Iterable

import yaml

from .errors import ConfigError
from .registry import (
    DEFENSE_KINDS,
    HEAD_APPROACHES,
    VIEWS_APPROACHES,
    IMAGE_SIZES,
    NON_NEGATIVE_LOSSES,
    NUM_CLASSES,
    SPLIT_SIZES,
    TORCHVISION_DATASETS,
    imagenet_folder_problem,
)

SCHEMA = Path(__file__).resolve().parents[2] / "schemas" / "config.schema.yaml"


# --- files and schema ---------------------------------------------------------------------


class _StrictLoader(yaml.SafeLoader):
    """YAML that refuses a key given twice in one mapping (PyYAML keeps the last)."""


def _mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise ConfigError(
                f"{loader.name} line {key_node.start_mark.line + 1}",
                f"key {key!r} is given twice in one mapping (first at line {seen[key] + 1}); YAML would keep the "
                "last silently: remove one",
            )
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def read_config_file(path: str | Path) -> dict:
    """A config file, refusing duplicate keys and naming the file and line of a syntax error."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(str(path), "no such config file" if not path.exists() else "not a file")
    text = path.read_text()
    try:
        loader = _StrictLoader(text)
        loader.name = str(path)
        try:
            data = loader.get_single_data()
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"{path} line {mark.line + 1}, column {mark.column + 1}" if mark else str(path)
        raise ConfigError(where, f"not valid YAML: {error.problem or error}") from None
    if not isinstance(data, dict):
        raise ConfigError(str(path), "must be a YAML mapping of config keys")
    return data


def check_config_files(paths: Iterable[str | Path]) -> None:
    """The files Snakemake read the config from: exactly one (Snakemake merges several
    key by key, running what neither asks for), each valid, without duplicate keys."""
    paths = list(paths)
    if len(paths) > 1:
        raise ConfigError(
            "--configfile",
            f"{len(paths)} files given ({', '.join(map(str, paths))}); Snakemake would merge them key by key into a "
            "grid neither asks for: give one file (copy one and edit it)",
        )
    for path in paths:
        read_config_file(path)


# Keys renamed since earlier versions: an old config is refused naming the new key.
RENAMED_THREADS = {"train_victim": "training", "extract": "extraction", "probe": "inference"}
# The views, shared by head recreation and Cont-Steal, moved to their own block.
MOVED_VIEW_KEYS = ("n_views", "view_seed", "augmentation")


def _check_renamed(config: dict) -> None:
    def mapping(value) -> dict:
        return value if isinstance(value, dict) else {}

    for i, block in enumerate(mapping(config.get("extraction")).get("grid") or []):
        if isinstance(block, dict) and "methods" in block:
            raise ConfigError(f"extraction.grid[{i}].methods", "renamed: call it `approaches` (the extraction approaches)")
    for kind, block in mapping(config.get("defenses")).items():
        for i, attack in enumerate(mapping(block).get("attacks") or []):
            if isinstance(attack, dict) and "method" in attack:
                raise ConfigError(f"defenses.{kind}.attacks[{i}].method", "renamed: call it `approach`")
    for old, new in RENAMED_THREADS.items():
        if old in mapping(config.get("threads")):
            raise ConfigError(f"threads.{old}", f"renamed: call it `{new}` (threads are named for the jobs they set)")
    for key in MOVED_VIEW_KEYS:
        if key in mapping(mapping(config.get("extraction")).get("head_recreation")):
            raise ConfigError(
                f"extraction.head_recreation.{key}",
                f"moved: give it as extraction.views.{key} (the views head_recreation and contsteal share)",
            )
    if "validation_fraction" in mapping(config.get("probe")):
        raise ConfigError(
            "probe.validation_fraction",
            "replaced: the L2 penalty is chosen by cross-validation over all the labelled images; give "
            "probe.folds (default 5) instead",
        )


@functools.cache
def _schema() -> dict:
    return yaml.safe_load(SCHEMA.read_text())


@functools.cache
def _strict_validator():
    return _validator(_schema())


def _validator(schema: dict):
    """The schema's validator, stricter than JSON Schema on numbers: an integer key takes
    a Python int only (JSON Schema accepts 100.0 as an integer, which fails later as a
    budget or a seed) and a number must be finite (.nan and .inf pass JSON Schema)."""
    import jsonschema

    base = jsonschema.Draft202012Validator
    checker = base.TYPE_CHECKER.redefine_many(
        {
            "integer": lambda _, value: isinstance(value, int) and not isinstance(value, bool),
            "number": lambda _, value: isinstance(value, (int, float))
            and not isinstance(value, bool)
            and math.isfinite(value),
        }
    )
    return jsonschema.validators.extend(base, type_checker=checker)(schema)


def _key(path) -> str:
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in path).lstrip(".")


def check_schema(config: dict, schema: dict | None = None) -> None:
    """The schema's most relevant violation as one line naming the key and what is
    allowed (Snakemake's validate() prints the whole schema instead)."""
    import jsonschema

    _check_renamed(config)
    validator = _validator(schema) if schema else _strict_validator()
    error = jsonschema.exceptions.best_match(validator.iter_errors(config))
    if error is None:
        return
    key = _key(error.absolute_path)
    message = error.message
    value = error.instance
    if error.validator == "type" and isinstance(value, float) and not math.isfinite(value):
        message = f"{value} is not a finite number"
    elif error.validator == "type" and isinstance(value, float) and "integer" in str(error.validator_value):
        message = f"{value} is not an integer (write {int(value)} without the decimal point)"
    elif error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        message += f"; allowed keys: {allowed}"
        dotted = [k for k in error.instance if isinstance(k, str) and "." in k and k not in allowed]
        if dotted and not key:
            message += (
                f". {dotted[0]!r} looks like a dotted --config key: --config sets top-level keys only; "
                "edit a copy of the config file instead"
            )
    elif error.validator == "propertyNames":
        message += f"; allowed: {error.schema['propertyNames']}"
    raise ConfigError(key or "(top level)", message)


def fill_defaults(config: dict) -> None:
    """The schema's defaults, filled in by Snakemake's validate()."""
    from snakemake.utils import validate

    validate(config, str(SCHEMA))


# --- sizes --------------------------------------------------------------------------------


def data_root(config: dict) -> str:
    return config.get("data_root", "data")


def split_size(config: dict, dataset: str, split: str) -> int:
    """Images in ``split`` of ``dataset`` (synthetic: the config's; ImageNet: the
    prepared subset's when the config asks for one)."""
    if dataset == "synthetic":
        return config["datasets"]["synthetic"][f"n_{split}"]
    if dataset == "imagenet":
        subset = config["datasets"]["imagenet"].get(f"{split}_size")
        return subset or SPLIT_SIZES["imagenet"][split]
    if split not in SPLIT_SIZES[dataset]:
        raise ConfigError(f"split {split!r} of {dataset}", f"{dataset} has splits {sorted(SPLIT_SIZES[dataset])}")
    return SPLIT_SIZES[dataset][split]


def image_size(config: dict, dataset: str) -> int:
    options = config["datasets"].get(dataset, {})
    if dataset in ("synthetic", "imagenet"):
        return options.get("image_size", IMAGE_SIZES[dataset])
    return IMAGE_SIZES[dataset]


def query_pool_size(config: dict, name: str) -> int:
    """Images a query set can send: its noise count, or its split less exclude_last."""
    query_set = config["query_sets"][name]
    if "noise" in query_set:
        return query_set["noise"]["n"]
    return split_size(config, query_set["dataset"], query_set["split"]) - query_set.get("exclude_last", 0)


def canonical(value):
    """Sort dict keys recursively. Snakemake compares params by their text, so without
    this, reordering keys in a config file would rerun every job."""
    if isinstance(value, dict):
        return {k: canonical(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [canonical(v) for v in value]
    return value


# --- the grid -----------------------------------------------------------------------------


def default_seeds(config: dict) -> list[int]:
    """The extraction-and-probe seeds of a grid block without its own ``seeds``."""
    return list(config.get("seeds") or [config["seed"]])


def block_seeds(config: dict, block: dict) -> list[int]:
    return list(block.get("seeds") or default_seeds(config))


def block_victims(config: dict, block: dict) -> list[str]:
    """The victims a grid block (or defense block) names; all of them by default."""
    return list(block.get("victims", sorted(config["victims"])))


def block_cells(config: dict, block: dict, victim: str):
    """The (approach, loss, query_set, budget, seed) cells a grid block asks of ``victim``
    (its product; nothing when the block does not name the victim)."""
    if victim not in block_victims(config, block):
        return
    for approach in block["approaches"]:
        for loss in block["losses"]:
            for query_set in block["query_sets"]:
                for budget in block["budgets"]:
                    for seed in block_seeds(config, block):
                        yield approach, loss, query_set, budget, seed


def extraction_cells(config: dict, victim: str) -> list[tuple[str, str, str, int, int]]:
    """The (approach, loss, query_set, budget, seed) cells the grid asks of ``victim``:
    the union over blocks of each block's product, sorted."""
    return sorted({cell for block in config["extraction"]["grid"] for cell in block_cells(config, block, victim)})


def block_loss_options(config: dict, block: dict, loss: str) -> dict:
    """A grid block's options for ``loss``: its own, else extraction.loss_options."""
    own = block.get("loss_options", {})
    if loss in own:
        return canonical(own[loss])
    if loss not in config["extraction"]["loss_options"]:
        raise ConfigError(f"extraction.loss_options.{loss}", "missing (lr, batch_size[, temperature])")
    return canonical(config["extraction"]["loss_options"][loss])


def cell_loss_options(config: dict, victim: str, approach: str, loss: str, query_set: str, budget: int) -> dict:
    """The loss options of one extraction cell (the first block listing it)."""
    for block in config["extraction"]["grid"]:
        if any(cell[:4] == (approach, loss, query_set, budget) for cell in block_cells(config, block, victim)):
            return block_loss_options(config, block, loss)
    return block_loss_options(config, {}, loss)


def approach_options(config: dict, approach: str) -> dict:
    """What an extraction job of ``approach`` needs beyond its loss's options: the views
    and the head recipe (head_recreation; the same dict as before the views had their
    own block, so earlier results stay current), the views (contsteal), the weight and
    the attacker's augmentation (stolenencoder); nothing for the others."""
    extraction = config["extraction"]
    if approach == "head_recreation":
        return canonical({**extraction["views"], **extraction["head_recreation"]})
    if approach == "contsteal":
        return canonical(extraction["views"])
    if approach == "stolenencoder":
        return canonical(extraction.get("stolenencoder", {}))
    return {}


def api_calls(config: dict, approach: str, budget: int) -> int:
    """API calls an extraction of ``budget`` query images makes: one per image, or one
    per view for the approaches reading the views dump."""
    if approach in VIEWS_APPROACHES:
        return budget * config["extraction"]["views"]["n_views"]
    return budget


def trained_victims(config: dict) -> list[str]:
    return sorted(v for v, victim in config["victims"].items() if "external" not in victim)


def own_ssl_cells(config: dict, victim: str) -> list[tuple[str, int, int]]:
    """(query_set, budget, seed) of the attacker's own SSL baseline for ``victim``."""
    block = config.get("baselines", {}).get("own_ssl")
    if not block or victim not in block.get("victims", trained_victims(config)):
        return []
    seeds = block.get("seeds") or default_seeds(config)
    return sorted((q, b, s) for q in block["query_sets"] for b in block["budgets"] for s in seeds)


def own_ssl_batch_size(config: dict, victim: str, query_set: str, budget: int) -> int:
    """Images per optimiser step of the attacker's own SSL on (query set, budget): the
    ``baselines.own_ssl.batch_size`` when set, else the batch size the direct extraction
    cells on the same victim, query set and budget share. With the extraction's steps
    (``extraction.steps``) this gives own SSL and extraction the same images per step
    and the same steps, so the comparison measures the API's answers, not a larger
    training budget (each image is seen as two views, as the victim's method needs)."""
    block = config["baselines"]["own_ssl"]
    if block.get("batch_size"):
        return int(block["batch_size"])
    sizes = {
        cell_loss_options(config, victim, approach, loss, q, b)["batch_size"]
        for approach, loss, q, b, _ in extraction_cells(config, victim)
        if approach == "direct" and (q, b) == (query_set, budget)
    }
    if len(sizes) != 1:
        found = f"batch sizes {sorted(sizes)}" if sizes else "no direct extraction cell"
        raise ConfigError(
            "baselines.own_ssl.batch_size",
            f"{victim}/{query_set}/{budget} has {found} to match: set the attacker's own SSL's images per step",
        )
    return sizes.pop()


def independent_victims(config: dict) -> list[str]:
    """Victims with an independently trained twin (same recipe, another seed): the
    fidelity reference of 'not stolen'."""
    block = config.get("baselines", {}).get("independent")
    if not block:
        return []
    return list(block.get("victims", trained_victims(config)))


def probe_seeds(config: dict, victim: str | None = None) -> list[int]:
    """Every seed some probe of ``victim`` (or of any victim) uses: the baselines (the
    victim itself, random init, raw pixels) are probed at each, so every stolen copy has
    a baseline probed with the same labels."""
    victims = [victim] if victim else list(config["victims"])
    seeds = set(default_seeds(config))
    for v in victims:
        seeds |= {cell[-1] for cell in extraction_cells(config, v)}
        seeds |= {cell[-1] for cell in own_ssl_cells(config, v)}
    return sorted(seeds)


def comparison_cell(config: dict, victim: str | None = None) -> tuple[str, int]:
    """(query set, budget) of the approach-comparison table (of ``victim``, when
    paper_figures.comparison_by_victim names one for it)."""
    chosen = config["paper_figures"].get("comparison", {})
    chosen = config["paper_figures"].get("comparison_by_victim", {}).get(victim, chosen)
    first = config["extraction"]["grid"][0]
    return chosen.get("query_set", first["query_sets"][0]), chosen.get("budget", max(first["budgets"]))


def pools_holding_last(config: dict, dataset: str, split: str, last: int):
    """(name, exclude_last) of each query set drawn from ``split`` of ``dataset`` that
    keeps any of its last ``last`` images (held out for probes or verification)."""
    for name, query_set in config["query_sets"].items():
        same = (query_set.get("dataset"), query_set.get("split")) == (dataset, split)
        if same and query_set.get("exclude_last", 0) < last:
            yield name, query_set.get("exclude_last", 0)


def query_set_kinds(config: dict) -> dict[str, dict[str, str]]:
    """victim -> query set -> in_distribution / out_of_distribution / noise (the claims
    table compares them). A query set is in-distribution for a victim only when it is
    drawn from that victim's own training dataset: with a CIFAR10 and an SVHN victim in
    one config, SVHN queries are out-of-distribution for the CIFAR10 victim."""
    kinds = {}
    for vid, victim in config["victims"].items():
        kinds[vid] = {}
        for name, query_set in config["query_sets"].items():
            if "noise" in query_set:
                kinds[vid][name] = "noise"
            elif query_set["dataset"] == victim.get("dataset"):
                kinds[vid][name] = "in_distribution"
            else:
                kinds[vid][name] = "out_of_distribution"
    return kinds


def victim_train_sizes(config: dict) -> dict[str, int]:
    """victim -> the number of images it was trained on (``train_size`` when set, else
    its whole training split; an imported victim's is its dataset's training split)."""
    sizes = {}
    for vid, victim in config["victims"].items():
        split = victim.get("train_split", "train")
        if "external" in victim:
            # Trained by its authors on the whole split, not on a subset prepared here.
            sizes[vid] = SPLIT_SIZES[victim["dataset"]][split]
            continue
        n = split_size(config, victim["dataset"], split)
        sizes[vid] = min(n, victim.get("train_size") or n)
    return sizes


def plain_twin(config: dict, victim: str) -> str | None:
    """The victim trained with the same config but no watermark (the watermark's cost
    is the difference of their probe accuracies); None when the config has none."""
    mine = canonical(config["victims"][victim])
    mine["recipe"] = {k: v for k, v in mine["recipe"].items() if k != "watermark"}
    for other in trained_victims(config):
        if other != victim and canonical(config["victims"][other]) == mine:
            return other
    return None


# --- defenses -----------------------------------------------------------------------------


def with_head(config: dict, victim: str) -> bool:
    return "external" not in config["victims"][victim]


def defended_victims(config: dict, kind: str) -> list[str]:
    """The victims a defense block runs on (detection and B4B, which read the victim's
    projections: those with a projection head)."""
    block = config.get("defenses", {}).get(kind)
    if not block:
        return []
    default = [v for v in sorted(config["victims"]) if kind == "poisoning" or with_head(config, v)]
    return list(block.get("victims", default))


def detection_calibration(config: dict, victim: str) -> dict:
    """The victim's detector calibration with its defaults filled in: legitimate queries
    from a split no attack queries (default the victim's dataset's train split), as many
    as the longest stream the detector judges (default 10,000), in a seeded order."""
    options = {"dataset": config["victims"][victim]["dataset"], "split": "train", "queries": 10000, "seed": 0}
    options.update(config.get("defenses", {}).get("detection", {}).get("calibration", {}))
    return options


MIN_WATERMARK_NULL = 5


def watermarked_victims(config: dict) -> list[str]:
    return [v for v in trained_victims(config) if "watermark" in config["victims"][v].get("recipe", {})]


def _same_input(config: dict, a: str, b: str) -> bool:
    """Same dataset and backbone: a verifier can feed one's images to the other and the
    watermark head reads the other's representations."""
    va, vb = config["victims"][a], config["victims"][b]
    return va["dataset"] == vb["dataset"] and va["backbone"] == vb["backbone"]


def watermark_innocents(config: dict, victim: str) -> list[str]:
    """The encoders that never saw the watermarked ``victim``, as paths of their
    verification records under ``results/watermark/<victim>/``: the null of its test.
    Other trained victims on the same data and backbone, the independent twins of every
    such victim (its own included: another seed of its recipe trains its own rotation
    head, never the victim's), the attacker's own-SSL encoders of the others, and
    ``defenses.watermark.random_init`` random-init encoders of its architecture."""
    others = [v for v in trained_victims(config) if v != victim and _same_input(config, v, victim)]
    names = [f"victim/{v}" for v in others]
    names += [f"independent/{v}" for v in independent_victims(config) if _same_input(config, v, victim)]
    for other in others:
        names += [f"own_ssl/{other}/{q}/{b}/seed{s}" for q, b, s in own_ssl_cells(config, other)]
    count = config.get("defenses", {}).get("watermark", {}).get("random_init", 5)
    names += [f"random_init/seed{s}" for s in range(count)]
    return names


# --- checks -------------------------------------------------------------------------------


def _names(mapping) -> list[str]:
    return sorted(mapping)


def _exists(workdir: Path, path: str) -> bool:
    return (workdir / path).exists()


def check_data_root(config: dict, workdir: Path) -> None:
    root = data_root(config)
    if not root.strip():
        raise ConfigError("data_root", "empty: every dataset would be prepared under / (give a folder, e.g. data)")
    if (workdir / root).exists() and not (workdir / root).is_dir():
        raise ConfigError("data_root", f"{root} is a file, not a folder")


def check_datasets(config: dict, workdir: Path) -> None:
    """Something must be able to provide each torchvision dataset: a mirror that exists,
    the download, or an earlier preparation."""
    root = data_root(config)
    for name, options in config["datasets"].items():
        if name not in TORCHVISION_DATASETS:
            continue
        if options.get("checksums") and not os.path.isfile(workdir / options["checksums"]):
            raise ConfigError(
                f"datasets.{name}.checksums",
                f"{options['checksums']} does not exist (an md5sum-format file: `md5sum * > MD5SUMS` in the mirror)",
            )
        if _exists(workdir, f"{root}/{name}/prepared.json") or options.get("download", True):
            continue
        mirrors = options.get("mirrors", [])
        if not mirrors:
            raise ConfigError(
                f"datasets.{name}.download",
                f"false and no mirrors: nothing can provide {name} (list a local folder holding torchvision's files "
                "under mirrors, or set download: true)",
            )
        if not any(os.path.isdir(workdir / m) for m in mirrors):
            raise ConfigError(
                f"datasets.{name}.mirrors",
                f"none of {mirrors} exists and download is false: nothing can provide {name} (fix a mirror path or "
                "set download: true)",
            )
    if "synthetic" in config["datasets"]:
        for key in ("seed", "n_train", "n_test"):
            if key not in config["datasets"]["synthetic"]:
                raise ConfigError(f"datasets.synthetic.{key}", "required for the synthetic dataset")


def _check_split(config: dict, key: str, dataset: str, split: str) -> int:
    """:func:`split_size`, refusing an unknown split at ``key``."""
    if split not in SPLIT_SIZES[dataset]:
        raise ConfigError(key, f"{dataset} has splits {sorted(SPLIT_SIZES[dataset])}, not {split!r}")
    return split_size(config, dataset, split)


def check_victims(config: dict, workdir: Path) -> None:
    datasets = config["datasets"]
    for vid, victim in config["victims"].items():
        key = f"victims.{vid}"
        external = victim.get("external")
        if external:
            if "recipe" in victim:
                raise ConfigError(f"{key}.recipe", "an external victim is imported, not trained: remove the recipe")
            path = workdir / external["path"]
            if os.path.isdir(path):
                raise ConfigError(f"{key}.external.path", f"{external['path']} is a folder: give the checkpoint file")
            if not path.exists() and not _exists(workdir, f"results/victims/{vid}/encoder.pt"):
                raise ConfigError(
                    f"{key}.external.path",
                    f"{external['path']} does not exist (download the checkpoint there; docs/paper-scale.md)",
                )
            continue
        for required in ("dataset", "recipe"):
            if required not in victim:
                raise ConfigError(f"{key}.{required}", "required for a trained victim (or give `external`)")
        if victim["dataset"] not in datasets:
            raise ConfigError(f"{key}.dataset", f"{victim['dataset']!r} is not under datasets: {_names(datasets)}")
        if victim["method"] == "simclr" and "temperature" not in victim["recipe"]:
            raise ConfigError(f"{key}.recipe.temperature", "required for simclr (InfoNCE temperature > 0)")
        split = victim.get("train_split", "train")
        if split == "unlabeled" and victim["dataset"] != "stl10":
            raise ConfigError(f"{key}.train_split", "unlabeled exists for stl10 only")
        n = _check_split(config, f"{key}.train_split", victim["dataset"], split)
        if victim.get("train_size") and victim["train_size"] > n:
            raise ConfigError(
                f"{key}.train_size", f"{victim['train_size']} exceeds the {n} images of {victim['dataset']} {split}"
            )


def check_query_sets(config: dict) -> None:
    datasets = config["datasets"]
    for name, query_set in config["query_sets"].items():
        key = f"query_sets.{name}"
        if "noise" in query_set:
            continue
        if query_set["dataset"] not in datasets:
            raise ConfigError(f"{key}.dataset", f"{query_set['dataset']!r} is not under datasets: {_names(datasets)}")
        if query_set["split"] == "unlabeled" and query_set["dataset"] != "stl10":
            raise ConfigError(f"{key}.split", "unlabeled exists for stl10 only")
        n = _check_split(config, f"{key}.split", query_set["dataset"], query_set["split"])
        if query_set.get("exclude_last", 0) >= n:
            raise ConfigError(
                f"{key}.exclude_last",
                f"{query_set['exclude_last']} leaves none of the {n} images of {query_set['dataset']} "
                f"{query_set['split']} to query",
            )


def _check_budgets(config: dict, key: str, query_sets: list[str], budgets: list[int]) -> None:
    for name in query_sets:
        if name not in config["query_sets"]:
            raise ConfigError(f"{key}.query_sets", f"{name!r} is not defined under query_sets: {_names(config['query_sets'])}")
        pool = query_pool_size(config, name)
        too_large = [b for b in budgets if b > pool]
        if too_large:
            raise ConfigError(f"{key}.budgets", f"{too_large} exceed the {pool} images of query set {name!r}")


def _check_approach_blocks(config: dict, approaches: list[str], where: str) -> None:
    """The extraction blocks the ``approaches`` read must be there."""
    extraction = config["extraction"]
    views = [a for a in approaches if a in VIEWS_APPROACHES]
    if views and "views" not in extraction:
        raise ConfigError(
            "extraction.views", f"required {where} {views[0]} (n_views, view_seed[, augmentation]: the views it queries)"
        )
    if "head_recreation" in approaches and "head_recreation" not in extraction:
        raise ConfigError(
            "extraction.head_recreation", f"required {where} head_recreation (the head recipe: temperature, head_epochs, ...)"
        )


def check_grid(config: dict) -> None:
    extraction = config["extraction"]
    victims = config["victims"]
    for i, block in enumerate(extraction["grid"]):
        key = f"extraction.grid[{i}]"
        for vid in block.get("victims", []):
            if vid not in victims:
                raise ConfigError(f"{key}.victims", f"{vid!r} is not under victims: {_names(victims)}")
        _check_budgets(config, key, block["query_sets"], block["budgets"])
        for loss in block["losses"]:
            if loss not in extraction["loss_options"] and loss not in block.get("loss_options", {}):
                raise ConfigError(f"extraction.loss_options.{loss}", "missing (lr, batch_size[, temperature])")
        heads = [a for a in block["approaches"] if a in HEAD_APPROACHES]
        non_negative = [loss for loss in block["losses"] if loss in NON_NEGATIVE_LOSSES]
        if heads and non_negative:
            raise ConfigError(
                f"{key}.losses",
                f"{non_negative[0]} compares non-negative histograms; {heads} answer with head outputs that can be "
                f"negative: list {non_negative[0]} in a direct-only block",
            )
        _check_approach_blocks(config, block["approaches"], f"when a grid block ({key}) lists")
        if "head_access" in block["approaches"]:
            for vid in block_victims(config, block):
                if "external" in victims[vid]:
                    raise ConfigError(
                        f"{key}.approaches",
                        f"head_access needs the victim's projection head; external victim {vid!r} has none (give this "
                        "block `victims:` without it)",
                    )
    for vid in victims:
        chosen = {}
        for i, block in enumerate(extraction["grid"]):
            for cell in block_cells(config, block, vid):
                options = block_loss_options(config, block, cell[1])
                if chosen.setdefault(cell[:4], options) != options:
                    raise ConfigError(
                        f"extraction.grid[{i}].loss_options",
                        f"cell {cell[:4]} of victim {vid!r} gets other {cell[1]} options from an earlier block",
                    )
    for name, options in extraction.get("loss_options", {}).items():
        if name == "softnn" and ("temperature" in options) == ("temperature_factor" in options):
            raise ConfigError(
                "extraction.loss_options.softnn",
                "give exactly one of temperature (absolute; the paper's 100 for CIFAR ResNets) or temperature_factor "
                "(times the median pairwise squared distance of the answers)",
            )


def check_seeds(config: dict) -> None:
    for key, seeds in [("seeds", config.get("seeds"))] + [
        (f"extraction.grid[{i}].seeds", block.get("seeds")) for i, block in enumerate(config["extraction"]["grid"])
    ]:
        if seeds is not None and len(set(seeds)) != len(seeds):
            raise ConfigError(key, f"{seeds} repeats a seed (each seed is one repetition)")


def check_probe_protocol(config: dict) -> None:
    """A probe's training images must never be its test images (an overlap inflates
    every accuracy), no query may be a probe test image (the paper's protocol), and its
    cross-validation folds and label-scarce subset must be drawable."""
    for name, downstream in config["probe"]["downstream"].items():
        key = f"probe.downstream.{name}"
        if downstream["dataset"] not in config["datasets"]:
            raise ConfigError(f"{key}.dataset", f"{downstream['dataset']!r} is not under datasets")
        if downstream["train_split"] == downstream["test_split"]:
            raise ConfigError(
                f"{key}.train_split",
                f"the probe trains and tests on the same split ({downstream['test_split']!r}): its test images would "
                "be among its training images; use train_split: train and test_split: test",
            )
        per_class, size = downstream.get("labels_per_class"), downstream.get("train_size")
        if per_class and size:
            raise ConfigError(f"{key}.labels_per_class", "give labels_per_class or train_size, not both")
        n = _check_split(config, f"{key}.train_split", downstream["dataset"], downstream["train_split"])
        if size and size > n:
            raise ConfigError(f"{key}.train_size", f"{size} exceeds the {n} images of the {downstream['train_split']} split")
        test_n = _check_split(config, f"{key}.test_split", downstream["dataset"], downstream["test_split"])
        if downstream.get("test_last") and downstream["test_last"] > test_n:
            raise ConfigError(
                f"{key}.test_last", f"{downstream['test_last']} exceeds the {test_n} images of the {downstream['test_split']} split"
            )
        test_last = downstream.get("test_last") or test_n
        for qname, _ in pools_holding_last(config, downstream["dataset"], downstream["test_split"], test_last):
            raise ConfigError(
                f"query_sets.{qname}.exclude_last",
                f"the query pool overlaps the probe test set of {key} (set exclude_last >= {test_last})",
            )
    # Every class needs an image in every held-out fold of the penalty's cross-validation.
    # A train_size subset gives every class at least `folds` images first
    # (probe.subset), so it needs folds x classes images.
    folds = config["probe"].get("folds", 5)
    for name, downstream in config["probe"]["downstream"].items():
        per_class, size = downstream.get("labels_per_class"), downstream.get("train_size")
        if per_class and per_class < folds:
            raise ConfigError(
                "probe.folds",
                f"{folds} folds need at least {folds} labelled images of every class; probe.downstream.{name}"
                f".labels_per_class is {per_class} (lower probe.folds or raise labels_per_class)",
            )
        classes = dataset_classes(config, downstream["dataset"])
        if size and classes and size < folds * classes:
            raise ConfigError(
                f"probe.downstream.{name}.train_size",
                f"{size} images cannot give each of the {classes} classes of {downstream['dataset']} the {folds} "
                f"images the {folds}-fold cross-validation needs (at least {folds * classes}; or lower probe.folds)",
            )


def dataset_classes(config: dict, dataset: str) -> int | None:
    """The number of classes of a labelled dataset (None when unknown before preparation)."""
    if dataset == "synthetic":
        return config["datasets"]["synthetic"].get("num_classes", 10)
    return NUM_CLASSES.get(dataset)


def check_baselines(config: dict) -> None:
    baselines = config.get("baselines", {})
    trained = trained_victims(config)
    own = baselines.get("own_ssl")
    if own:
        for vid in own.get("victims", []):
            if vid not in trained:
                raise ConfigError(
                    "baselines.own_ssl.victims",
                    f"{vid!r} is not a trained victim ({trained}): the attacker's own SSL copies a trained victim's recipe",
                )
        _check_budgets(config, "baselines.own_ssl", own["query_sets"], own["budgets"])
        for vid in config["victims"]:
            for query_set, budget, _ in own_ssl_cells(config, vid):
                own_ssl_batch_size(config, vid, query_set, budget)
    independent = baselines.get("independent")
    if independent:
        for vid in independent.get("victims", []):
            if vid not in trained:
                raise ConfigError("baselines.independent.victims", f"{vid!r} is not a trained victim ({trained})")
        if independent["seed"] == config["seed"]:
            raise ConfigError("baselines.independent.seed", f"must differ from the victims' seed ({config['seed']})")


def check_paper_figures(config: dict) -> None:
    figures = config["paper_figures"]
    downstream = config["probe"]["downstream"]
    if figures["downstream"] not in downstream:
        raise ConfigError("paper_figures.downstream", f"not one of probe.downstream: {_names(downstream)}")
    for name in figures.get("extra_downstream", []):
        if name not in downstream:
            raise ConfigError("paper_figures.extra_downstream", f"{name!r} is not one of probe.downstream: {_names(downstream)}")
    for vid in figures.get("comparison_by_victim", {}):
        if vid not in config["victims"]:
            raise ConfigError("paper_figures.comparison_by_victim", f"{vid!r} is not under victims: {_names(config['victims'])}")
    # The approach-comparison table reads the cells the grid runs at its (query set, budget).
    for vid in sorted(config["victims"]):
        query_set, budget = comparison_cell(config, vid)
        run = {(c[2], c[3]) for c in extraction_cells(config, vid)}
        if (query_set, budget) not in run:
            key = "paper_figures.comparison_by_victim" if vid in figures.get("comparison_by_victim", {}) else "paper_figures.comparison"
            raise ConfigError(
                key,
                f"victim {vid!r} has no extraction cell at query set {query_set!r} and budget {budget}: the grid runs "
                f"{sorted(run)}",
            )


def attack_vs_defense_victims(config: dict) -> list[str]:
    """The victims of the attack-vs-defense table (default: every victim with a head)."""
    block = config["paper_figures"].get("attack_vs_defense")
    if not block:
        return []
    return list(block.get("victims", [v for v in sorted(config["victims"]) if with_head(config, v)]))


def check_attack_vs_defense(config: dict) -> None:
    """Each attack of the table must be a runnable cell, each defense a known name whose
    settings the config gives, and each victim able to face them."""
    from .defense_spec import parse_defense

    block = config["paper_figures"].get("attack_vs_defense")
    if not block:
        return
    key = "paper_figures.attack_vs_defense"
    for vid in block.get("victims", []):
        if vid not in config["victims"]:
            raise ConfigError(f"{key}.victims", f"{vid!r} is not under victims: {_names(config['victims'])}")
    if block["query_set"] not in config["query_sets"]:
        raise ConfigError(f"{key}.query_set", f"{block['query_set']!r} is not under query_sets: {_names(config['query_sets'])}")
    _check_budgets(config, key, [block["query_set"]], [block["budget"]])
    for i, attack in enumerate(block["attacks"]):
        if attack["loss"] not in config["extraction"]["loss_options"]:
            raise ConfigError(f"extraction.loss_options.{attack['loss']}", f"missing: {key}.attacks[{i}] uses it")
        if attack["approach"] in HEAD_APPROACHES and attack["loss"] in NON_NEGATIVE_LOSSES:
            raise ConfigError(f"{key}.attacks[{i}].loss", f"{attack['loss']} needs non-negative answers: use it with approach direct")
    _check_approach_blocks(config, [a["approach"] for a in block["attacks"]], f"by {key}: it lists")
    defenses = config.get("defenses", {})
    for i, name in enumerate(block["defenses"]):
        if name == "none":
            continue
        try:
            spec = parse_defense(name)
        except ValueError as err:
            raise ConfigError(f"{key}.defenses[{i}]", f"{err} (or none)") from None
        if spec["kind"] == "b4b" and "b4b" not in defenses:
            raise ConfigError("defenses.b4b", f"required by {key}.defenses[{i}] ({name}): B4B's settings")
        if spec["kind"] == "detection" and "fpr" in spec:
            target = defenses.get("detection", {}).get("target_fpr", 0.05)
            if spec["fpr"] != target:
                raise ConfigError(
                    f"{key}.defenses[{i}]",
                    f"{name}: the detector is calibrated for defenses.detection.target_fpr {target:g}; write detection_fpr{target:g}",
                )
        if spec["kind"] in ("detection", "b4b"):
            for vid in attack_vs_defense_victims(config):
                if not with_head(config, vid):
                    raise ConfigError(f"{key}.victims", f"{name} reads the victim's projections; external victim {vid!r} has none")


def check_defenses(config: dict) -> None:
    """Each defense's victims and attack cells must exist and be runnable."""
    defenses = config.get("defenses", {})
    victims = config["victims"]
    for kind in DEFENSE_KINDS:
        block = defenses.get(kind)
        if not block:
            continue
        for vid in block.get("victims", []):
            if vid not in victims:
                raise ConfigError(f"defenses.{kind}.victims", f"{vid!r} is not under victims: {_names(victims)}")
        for i, attack in enumerate(block.get("attacks", [])):
            key = f"defenses.{kind}.attacks[{i}]"
            if attack["query_set"] not in config["query_sets"]:
                raise ConfigError(
                    f"{key}.query_set", f"{attack['query_set']!r} is not under query_sets: {_names(config['query_sets'])}"
                )
            pool = query_pool_size(config, attack["query_set"])
            if attack["budget"] > pool:
                raise ConfigError(
                    f"{key}.budget", f"{attack['budget']} exceeds the {pool} images of query set {attack['query_set']!r}"
                )
            if attack["loss"] not in config["extraction"]["loss_options"]:
                raise ConfigError(f"extraction.loss_options.{attack['loss']}", "missing (lr, batch_size[, temperature])")
            _check_approach_blocks(config, [attack["approach"]], f"by {key}, approach")
            if attack["approach"] in HEAD_APPROACHES and attack["loss"] in NON_NEGATIVE_LOSSES:
                raise ConfigError(f"{key}.loss", f"{attack['loss']} needs non-negative answers: use it with approach direct")
    watermarked = watermarked_victims(config)
    if watermarked and "watermark" not in defenses:
        raise ConfigError(
            "defenses.watermark",
            f"victims {watermarked} are watermarked: say which held-out images verify them (dataset, split, last)",
        )
    if "watermark" in defenses:
        block = defenses["watermark"]
        if block["dataset"] not in config["datasets"]:
            raise ConfigError("defenses.watermark.dataset", f"{block['dataset']!r} is not under datasets: {_names(config['datasets'])}")
        # Verification images must be new to every suspect's training and queries.
        for qname, excluded in pools_holding_last(config, block["dataset"], block["split"], block["last"]):
            raise ConfigError(
                "defenses.watermark.last",
                f"the last {block['last']} {block['split']} images of {block['dataset']} overlap query set {qname!r} "
                f"(its exclude_last is {excluded})",
            )


def check_detection(config: dict) -> None:
    """The detector's calibration stream must be legitimate queries (no attack's query
    images) and as long as the longest stream it judges."""
    block = config.get("defenses", {}).get("detection")
    if not block:
        return
    for victim in block.get("victims", trained_victims(config)):
        calibration = detection_calibration(config, victim)
        dataset, split, queries = calibration["dataset"], calibration["split"], calibration["queries"]
        for i, attack in enumerate(block["attacks"]):
            query_set = config["query_sets"].get(attack["query_set"], {})
            if query_set.get("dataset") == dataset and query_set.get("split") == split:
                raise ConfigError(
                    "defenses.detection.calibration.split",
                    f"the calibration stream ({dataset} {split}) would share images with the queries of "
                    f"defenses.detection.attacks[{i}] ({attack['query_set']}): calibrate on legitimate queries only",
                )
            calls = api_calls(config, attack["approach"], attack["budget"])
            if calls > queries:
                raise ConfigError(
                    "defenses.detection.calibration.queries",
                    f"{queries} is shorter than the {calls} calls of defenses.detection.attacks[{i}]: a query's score "
                    "grows with the user's history, so calibrate on a stream at least as long as the longest judged",
                )


def check_watermark(config: dict) -> None:
    """The watermark's null needs enough innocent encoders to estimate its spread."""
    if "watermark" not in config.get("defenses", {}):
        return
    for victim in watermarked_victims(config):
        innocents = watermark_innocents(config, victim)
        if len(innocents) < MIN_WATERMARK_NULL:
            raise ConfigError(
                "defenses.watermark.random_init",
                f"the null of {victim!r} has {len(innocents)} encoders that never saw it ({innocents}); it needs at "
                f"least {MIN_WATERMARK_NULL}: raise random_init or add victims, baselines.independent or baselines.own_ssl",
            )


def dataset_inference_victims(config: dict) -> list[str]:
    return list(config.get("defenses", {}).get("dataset_inference", {}).get("victims", []))


def dataset_inference_options(config: dict, victim: str) -> dict:
    """The dataset-inference block for ``victim`` with its defaults filled in: the unseen
    images' dataset (default the victim's), and the victim's training split and size
    (the images its owner trained on: ``train_size`` takes the first N)."""
    block = {k: v for k, v in config["defenses"]["dataset_inference"].items() if k != "victims"}
    spec = config["victims"][victim]
    block.setdefault("dataset", spec["dataset"])
    block["train_split"] = spec.get("train_split", "train")
    block["train_images"] = victim_train_sizes(config)[victim]
    return block


def dataset_inference_innocents(config: dict, victim: str) -> list[str]:
    """The encoders that never saw ``victim``'s answers, as paths of their records under
    ``results/dataset_inference/<victim>/``: the null of its test. As the watermark's
    (:func:`watermark_innocents`), plus the attacker's own SSL encoders of ``victim``
    itself (trained on its query images, never on the victim's training data), and
    ``defenses.dataset_inference.random_init`` random-init encoders."""
    others = [v for v in trained_victims(config) if v != victim and _same_input(config, v, victim)]
    names = [f"victim/{v}" for v in others]
    names += [f"independent/{v}" for v in independent_victims(config) if _same_input(config, v, victim)]
    for owner in [victim, *others]:
        names += [f"own_ssl/{owner}/{q}/{b}/seed{s}" for q, b, s in own_ssl_cells(config, owner)]
    count = config["defenses"]["dataset_inference"].get("random_init", 5)
    names += [f"random_init/seed{s}" for s in range(count)]
    return names


def check_dataset_inference(config: dict) -> None:
    """Dataset inference needs the victim's own training data: a trained victim, disjoint
    fit and score samples inside the images it trained on, and unseen test images of the
    same dataset that no query pool holds."""
    block = config.get("defenses", {}).get("dataset_inference")
    if not block:
        return
    key = "defenses.dataset_inference"
    for vid in block["victims"]:
        if vid not in config["victims"]:
            raise ConfigError(f"{key}.victims", f"{vid!r} is not under victims: {_names(config['victims'])}")
        if vid not in trained_victims(config):
            raise ConfigError(f"{key}.victims", f"{vid!r} is imported: its training data is not the defender's to test with")
    if "dataset" in block and block["dataset"] not in config["datasets"]:
        raise ConfigError(f"{key}.dataset", f"{block['dataset']!r} is not under datasets: {_names(config['datasets'])}")
    for vid in block["victims"]:
        options = dataset_inference_options(config, vid)
        if options["dataset"] != config["victims"][vid]["dataset"]:
            raise ConfigError(
                f"{key}.dataset",
                f"{options['dataset']!r}: the unseen images must come from victim {vid!r}'s own distribution "
                f"({config['victims'][vid]['dataset']})",
            )
        wanted, n = options["fit_images"] + options["score_images"], options["train_images"]
        if wanted > n:
            raise ConfigError(
                f"{key}.score_images",
                f"fit_images {options['fit_images']} + score_images {options['score_images']} exceed the {n} images "
                f"victim {vid!r} trained on (disjoint samples of its {options['train_split']} split)",
            )
        n_test = split_size(config, options["dataset"], "test")
        if options["unseen_last"] > n_test:
            raise ConfigError(f"{key}.unseen_last", f"{options['unseen_last']} exceeds the {n_test} test images of {options['dataset']}")
        if options["train_split"] == "test":
            raise ConfigError(f"{key}.victims", f"{vid!r} trained on the test split: no unseen images of its dataset")
        for qname, excluded in pools_holding_last(config, options["dataset"], "test", options["unseen_last"]):
            raise ConfigError(
                f"{key}.unseen_last",
                f"the last {options['unseen_last']} test images of {options['dataset']} overlap query set {qname!r} "
                f"(its exclude_last is {excluded}): unseen images must be new to every suspect",
            )
        if options["pca_dim"] > options["fit_images"]:
            raise ConfigError(f"{key}.pca_dim", f"{options['pca_dim']} exceeds fit_images ({options['fit_images']})")
        if options["components"] > options["fit_images"]:
            raise ConfigError(f"{key}.components", f"{options['components']} exceeds fit_images ({options['fit_images']})")


def check_imagenet(config: dict, workdir: Path) -> None:
    datasets = config["datasets"]
    if "imagenet" not in datasets or _exists(workdir, f"{data_root(config)}/imagenet/prepared.json"):
        return
    if "path" not in datasets["imagenet"]:
        raise ConfigError("datasets.imagenet.path", "required: the ImageNet folder you prepared (never downloaded)")
    problem = imagenet_folder_problem(str(workdir / datasets["imagenet"]["path"]))
    if problem:
        raise ConfigError("datasets.imagenet.path", problem)


def check(config: dict, workdir: str | Path = ".") -> None:
    """Every cross-key check, in order (the schema's defaults filled in already)."""
    workdir = Path(workdir)
    check_data_root(config, workdir)
    check_imagenet(config, workdir)
    check_datasets(config, workdir)
    check_victims(config, workdir)
    check_query_sets(config)
    check_seeds(config)
    check_grid(config)
    check_probe_protocol(config)
    check_baselines(config)
    check_paper_figures(config)
    published = config["paper_figures"].get("published")
    if published and not os.path.isfile(Path(workdir) / published):
        raise ConfigError("paper_figures.published", f"{published} does not exist (the published cells to compare with)")
    check_defenses(config)
    check_attack_vs_defense(config)
    check_detection(config)
    check_watermark(config)
    check_dataset_inference(config)


def load(config: dict, configfiles: Iterable[str | Path] = (), workdir: str | Path = ".") -> dict:
    """Check a config as Snakemake gives it (and the files it came from), fill in the
    schema's defaults (in place) and return it; the first problem raises ConfigError."""
    check_config_files(configfiles)
    check_schema(config)
    fill_defaults(config)
    check(config, workdir)
    return config


def main(argv: list[str] | None = None) -> int:
    """``python -m sslsteal.config FILE``: check a config file as the workflow would,
    naming the file and line of a YAML problem (Snakemake's own loader, which runs before
    the workflow's code, says only that the file is not valid YAML)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m sslsteal.config", description=main.__doc__)
    parser.add_argument("configfile", help="the file you would give to --configfile")
    parser.add_argument("--directory", default=".", help="the working directory of the run (default: here)")
    args = parser.parse_args(argv)
    try:
        config = read_config_file(args.configfile)
        load(config, configfiles=[args.configfile], workdir=args.directory)
    except ConfigError as error:
        print(error)
        return 1
    print(f"{args.configfile}: ok")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
