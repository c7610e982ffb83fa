"""Config checks and the grid's cells, without torch or Snakemake (tests call these
directly; ``rules/common.smk`` calls them before any job runs).

Every check raises :class:`ConfigError` naming the key and what is allowed, in one line.
"""

from __future__ import annotations

from typing import Callable

from .errors import ConfigError  # noqa: F401  (raised here; rules/common.smk catches checks.ConfigError)

CONTRASTIVE_LOSSES = ("infonce", "softnn")


def default_seeds(config: dict) -> list[int]:
    """The extraction-and-probe seeds of a grid block without its own ``seeds``."""
    return list(config.get("seeds") or [config["seed"]])


def block_seeds(config: dict, block: dict) -> list[int]:
    return list(block.get("seeds") or default_seeds(config))


def extraction_cells(config: dict, victim: str) -> list[tuple[str, str, str, int, int]]:
    """The (method, loss, query_set, budget, seed) cells the grid asks of ``victim``: the
    union over blocks of each block's product, sorted."""
    cells = set()
    for block in config["extraction"]["grid"]:
        if victim not in block.get("victims", list(config["victims"])):
            continue
        for method in block["methods"]:
            for loss in block["losses"]:
                for query_set in block["query_sets"]:
                    for budget in block["budgets"]:
                        for seed in block_seeds(config, block):
                            cells.add((method, loss, query_set, budget, seed))
    return sorted(cells)


def own_ssl_cells(config: dict, victim: str) -> list[tuple[str, int, int]]:
    """(query_set, budget, seed) of the attacker's own SSL baseline for ``victim``."""
    block = config.get("baselines", {}).get("own_ssl")
    if not block or victim not in block.get("victims", trained_victims(config)):
        return []
    seeds = block.get("seeds") or default_seeds(config)
    return sorted((q, b, s) for q in block["query_sets"] for b in block["budgets"] for s in seeds)


def independent_victims(config: dict) -> list[str]:
    """Victims with an independently trained twin (same recipe, another seed): the
    fidelity reference of 'not stolen'."""
    block = config.get("baselines", {}).get("independent")
    if not block:
        return []
    return list(block.get("victims", trained_victims(config)))


def trained_victims(config: dict) -> list[str]:
    return sorted(v for v, victim in config["victims"].items() if "external" not in victim)


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


def check_seeds(config: dict) -> None:
    for key, seeds in [("seeds", config.get("seeds"))] + [
        (f"extraction.grid[{i}].seeds", block.get("seeds")) for i, block in enumerate(config["extraction"]["grid"])
    ]:
        if seeds is not None and len(set(seeds)) != len(seeds):
            raise ConfigError(key, f"{seeds} repeats a seed (each seed is one repetition)")


def check_probe_protocol(config: dict, split_size: Callable[[str, str], int]) -> None:
    """A probe's training images must never be its test images (an overlap inflates
    every accuracy), and its validation split and label-scarce subset must be drawable."""
    for name, downstream in config["probe"]["downstream"].items():
        key = f"probe.downstream.{name}"
        if downstream["train_split"] == downstream["test_split"]:
            raise ConfigError(
                f"{key}.train_split",
                f"the probe trains and tests on the same split ({downstream['test_split']!r}): its test images would "
                "be among its training images; use train_split: train and test_split: test",
            )
        per_class, size = downstream.get("labels_per_class"), downstream.get("train_size")
        if per_class and size:
            raise ConfigError(f"{key}.labels_per_class", "give labels_per_class or train_size, not both")
        n = split_size(downstream["dataset"], downstream["train_split"])
        if size and size > n:
            raise ConfigError(f"{key}.train_size", f"{size} exceeds the {n} images of the {downstream['train_split']} split")
        test_n = split_size(downstream["dataset"], downstream["test_split"])
        if downstream.get("test_last") and downstream["test_last"] > test_n:
            raise ConfigError(
                f"{key}.test_last", f"{downstream['test_last']} exceeds the {test_n} images of the {downstream['test_split']} split"
            )
    fraction = config["probe"].get("validation_fraction", 0.2)
    if not 0 < fraction < 1:
        raise ConfigError("probe.validation_fraction", f"{fraction} must be in (0, 1)")


def check_baselines(config: dict, query_pool_size: Callable[[str], int]) -> None:
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
        for name in own["query_sets"]:
            if name not in config["query_sets"]:
                raise ConfigError("baselines.own_ssl.query_sets", f"{name!r} is not under query_sets: {sorted(config['query_sets'])}")
            pool = query_pool_size(name)
            too_large = [b for b in own["budgets"] if b > pool]
            if too_large:
                raise ConfigError("baselines.own_ssl.budgets", f"{too_large} exceed the {pool} images of query set {name!r}")
    independent = baselines.get("independent")
    if independent:
        for vid in independent.get("victims", []):
            if vid not in trained:
                raise ConfigError("baselines.independent.victims", f"{vid!r} is not a trained victim ({trained})")
        if independent["seed"] == config["seed"]:
            raise ConfigError("baselines.independent.seed", f"must differ from the victims' seed ({config['seed']})")


def check_extraction(config: dict) -> None:
    for name, options in config["extraction"].get("loss_options", {}).items():
        if name == "softnn" and ("temperature" in options) == ("temperature_factor" in options):
            raise ConfigError(
                "extraction.loss_options.softnn",
                "give exactly one of temperature (absolute; the paper's 100 for CIFAR ResNets) or temperature_factor "
                "(times the median pairwise squared distance of the answers)",
            )


# --- duplicate detection ------------------------------------------------------------------


def detection_calibration(config: dict, victim: str) -> dict:
    """The victim's detector calibration with its defaults filled in: legitimate queries
    from a split no attack queries (default the victim's dataset's train split), as many
    as the longest stream the detector judges (default 10,000), in a seeded order."""
    options = {"dataset": config["victims"][victim]["dataset"], "split": "train", "queries": 10000, "seed": 0}
    options.update(config.get("defenses", {}).get("detection", {}).get("calibration", {}))
    return options


def check_detection(config: dict) -> None:
    """The detector's calibration stream must be legitimate queries (no attack's query
    images) and as long as the longest stream it judges."""
    block = config.get("defenses", {}).get("detection")
    if not block:
        return
    n_views = config["extraction"].get("head_recreation", {}).get("n_views", 1)
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
            calls = attack["budget"] * (n_views if attack["method"] == "head_recreation" else 1)
            if calls > queries:
                raise ConfigError(
                    "defenses.detection.calibration.queries",
                    f"{queries} is shorter than the {calls} calls of defenses.detection.attacks[{i}]: a query's score "
                    "grows with the user's history, so calibrate on a stream at least as long as the longest judged",
                )


# --- watermark verification ---------------------------------------------------------------

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


def check(config: dict, split_size: Callable[[str, str], int], query_pool_size: Callable[[str], int]) -> None:
    """The checks of this module, in order."""
    check_seeds(config)
    check_probe_protocol(config, split_size)
    check_baselines(config, query_pool_size)
    check_extraction(config)
    check_detection(config)
    check_watermark(config)
