"""The workflow's target paths from its config, without torch or Snakemake: what each
table, figure and defense needs (``rules/common.smk`` wraps these as input functions),
and the check of a path's wildcards before any job runs.

A path says what it holds: ``results/probes/<downstream>/stolen/<victim>/<approach>/
<loss>/<query_set>/<budget>/seed<seed>.json`` is the probe of one extraction cell.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from . import config as cfg
from .defense_spec import defense_name, parse_defense
from .registry import APPROACHES, DEFENSE_KINDS, HEAD_APPROACHES, LOSSES, NON_NEGATIVE_LOSSES, VIEWS_APPROACHES


class TargetError(ValueError):
    """A target path (or a path a rule was asked for) that this config cannot make."""

    def __init__(self, what: str, message: str):
        super().__init__(f"target error at {what}: {message}")


def first_seed(config: dict) -> int:
    """Defenses and watermark verification run at the first seed of ``seeds``."""
    return cfg.default_seeds(config)[0]


def cell_path(approach: str, loss: str, query_set: str, budget: int, seed: int) -> str:
    return f"{approach}/{loss}/{query_set}/{budget}/seed{seed}"


# --- probes -------------------------------------------------------------------------------


def stolen_probes(config: dict, victim: str, downstream: str) -> list[str]:
    return [
        f"results/probes/{downstream}/stolen/{victim}/{cell_path(*cell)}.json"
        for cell in cfg.extraction_cells(config, victim)
    ]


def baseline_probes(config: dict, victim: str, downstream: str) -> list[str]:
    """The probes that give a victim's table its meaning, at every seed its cells use:
    the victim, random init, raw pixels, the attacker's own SSL and the independent twin.
    """
    paths = []
    for seed in cfg.probe_seeds(config, victim):
        paths += [
            f"results/probes/{downstream}/victim/{victim}/seed{seed}.json",
            f"results/probes/{downstream}/random_init/{victim}/seed{seed}.json",
            f"results/probes/{downstream}/raw_pixels/seed{seed}.json",
        ]
        if victim in cfg.independent_victims(config):
            paths.append(f"results/probes/{downstream}/independent/{victim}/seed{seed}.json")
    paths += [
        f"results/probes/{downstream}/own_ssl/{victim}/{query_set}/{budget}/seed{seed}.json"
        for query_set, budget, seed in cfg.own_ssl_cells(config, victim)
    ]
    return paths


# --- dumps --------------------------------------------------------------------------------


def views_dump(config: dict, victim: str, query_set: str) -> str:
    seed = config["extraction"]["views"]["view_seed"]
    return f"results/dumps/{victim}/{query_set}/views_seed{seed}.h5"


def extraction_dump(config: dict, victim: str, approach: str, query_set: str) -> str:
    """The answers an extraction job reads: the views dump for the approaches that query
    augmented views (head recreation, Cont-Steal), otherwise the plain answers
    (representations, and projections when there is a head).
    """
    if approach in VIEWS_APPROACHES:
        return views_dump(config, victim, query_set)
    return f"results/dumps/{victim}/{query_set}/answers.h5"


def defended_dump(dump: str, defense: str) -> str:
    """The same answers as ``dump``, as the API defended by ``defense`` gave them."""
    folder, name = dump.rsplit("/", 1)
    return f"{folder}/defended/{defense}/{name}"


# --- defenses -----------------------------------------------------------------------------


def defense_names(config: dict, kind: str) -> list[str]:
    block = config["defenses"][kind]
    if kind == "poisoning":
        return [defense_name("poisoning", sigma) for sigma in block["sigmas"]]
    if kind == "b4b":
        return [defense_name("b4b", k) for k in block["sybils"]]
    return [defense_name("detection", block["target_fpr"], "fpr")]


def user_defense(name: str) -> str:
    """The defense a legitimate user meets under ``name``: the same, but a user is one
    account, so every B4B setting gives it b4b_sybils1's answers (one probe, not one per
    sybil count)."""
    return defense_name("b4b", 1) if parse_defense(name)["kind"] == "b4b" else name


def attack_cell(config: dict, attack: dict) -> str:
    return cell_path(attack["approach"], attack["loss"], attack["query_set"], attack["budget"], first_seed(config))


def detection_attacks(config: dict, victim: str) -> list[dict]:
    """The detection table's attacks, each with the defended dump holding its calls'
    scores (the scores do not depend on the threshold: the first setting's dump)."""
    name = defense_names(config, "detection")[0]
    return [
        {**attack, "dump": defended_dump(extraction_dump(config, victim, attack["approach"], attack["query_set"]), name)}
        for attack in config["defenses"]["detection"]["attacks"]
    ]


def detection_scores_dumps(config: dict, victim: str) -> list[str]:
    return sorted({attack["dump"] for attack in detection_attacks(config, victim)})


def defense_probes(config: dict, victim: str, downstream: str, kind: str) -> list[str]:
    """The probes a defense's table needs: the legitimate user's and each attack's,
    defended (every setting) and undefended."""
    seed = first_seed(config)
    cells = [attack_cell(config, a) for a in config["defenses"][kind]["attacks"]]
    paths = [
        f"results/probes/{downstream}/victim/{victim}/seed{seed}.json",
        f"results/probes/{downstream}/random_init/{victim}/seed{seed}.json",
    ]
    paths += [f"results/probes/{downstream}/stolen/{victim}/{cell}.json" for cell in cells]
    for name in defense_names(config, kind):
        user = f"results/probes/{downstream}/defended/{user_defense(name)}/victim/{victim}/seed{seed}.json"
        paths += [user] if user not in paths else []
        paths += [f"results/probes/{downstream}/defended/{name}/stolen/{victim}/{cell}.json" for cell in cells]
    return paths


def watermark_suspects(config: dict, victim: str) -> list[str]:
    """What the verifier tests: the watermarked victim itself (the check that the
    watermark is there) and its stolen copies at the first seed."""
    seed = first_seed(config)
    paths = [f"results/watermark/{victim}/victim/{victim}.json"]
    paths += [
        f"results/watermark/{victim}/stolen/{cell_path(*cell)}.json"
        for cell in cfg.extraction_cells(config, victim)
        if cell[-1] == seed
    ]
    return paths


def watermark_null(config: dict, victim: str) -> list[str]:
    """The verification records of the encoders that never saw ``victim``: its null."""
    return [f"results/watermark/{victim}/{name}.json" for name in cfg.watermark_innocents(config, victim)]


def plain_twin_probe(config: dict, victim: str) -> list[str]:
    """The probe of the watermarked victim's plain twin (none without a twin)."""
    twin = cfg.plain_twin(config, victim)
    downstream = config["paper_figures"]["downstream"]
    return [f"results/probes/{downstream}/victim/{twin}/seed{first_seed(config)}.json"] if twin else []


# --- attack vs defense --------------------------------------------------------------------


def attack_vs_defense_cells(config: dict) -> list[dict]:
    """The attack-vs-defense table's cells, one per (victim, defense, party): the
    legitimate user (``party`` "user") and each attack, with the probe record that gives
    its accuracy and, for an attack, its copy's ownership records (dataset inference
    when ``defenses.dataset_inference`` covers the victim, the watermark when the victim
    is watermarked; None otherwise)."""
    block = config["paper_figures"].get("attack_vs_defense")
    if not block:
        return []
    seed, downstream = first_seed(config), config["paper_figures"]["downstream"]
    inference_victims = cfg.dataset_inference_victims(config)
    cells = []
    for victim in cfg.attack_vs_defense_victims(config):
        watermarked = victim in cfg.watermarked_victims(config)
        # The undefended API always: each defense's cost is read against it.
        for defense in ["none", *(d for d in block["defenses"] if d != "none")]:
            folder = "" if defense == "none" else f"defended/{defense}/"
            user_folder = "" if defense == "none" else f"defended/{user_defense(defense)}/"
            cells.append({
                "victim": victim, "defense": defense, "party": "user",
                "probe": f"results/probes/{downstream}/{user_folder}victim/{victim}/seed{seed}.json",
            })
            for attack in block["attacks"]:
                cell = cell_path(attack["approach"], attack["loss"], block["query_set"], block["budget"], seed)
                cells.append({
                    "victim": victim, "defense": defense, "party": "attack", **attack,
                    "probe": f"results/probes/{downstream}/{folder}stolen/{victim}/{cell}.json",
                    "dataset_inference": (
                        f"results/dataset_inference/{victim}/{folder}stolen/{cell}.json" if victim in inference_victims else None
                    ),
                    "watermark": f"results/watermark/{victim}/{folder}stolen/{cell}.json" if watermarked else None,
                })
    return cells


def attack_vs_defense_inputs(config: dict) -> list[str]:
    """Every record the attack-vs-defense table reads (its cells' and the watermark's null)."""
    paths = []
    for cell in attack_vs_defense_cells(config):
        paths += [cell[k] for k in ("probe", "dataset_inference", "watermark") if cell.get(k)]
    for victim in cfg.attack_vs_defense_victims(config):
        if victim in cfg.watermarked_victims(config):
            paths += watermark_null(config, victim)
    return list(dict.fromkeys(paths))


# --- dataset inference --------------------------------------------------------------------


def dataset_inference_record(victim: str, kind: str, cell: tuple | None = None, defense: str | None = None, suspect: str | None = None) -> str:
    """The dataset-inference record of one suspect of ``victim``: ``kind`` victim (the
    victim itself, or ``suspect``, another victim), stolen (``cell``: approach, loss,
    query set, budget, seed; with ``defense``: a copy stolen from defended answers),
    independent (``suspect``'s twin), own_ssl (``suspect``'s; ``cell``: query set,
    budget, seed) or random_init (``cell``: (seed,))."""
    folder = f"results/dataset_inference/{victim}"
    if kind == "victim":
        return f"{folder}/victim/{suspect or victim}.json"
    if kind == "stolen":
        prefix = f"{folder}/defended/{defense}" if defense else folder
        return f"{prefix}/stolen/{cell_path(*cell)}.json"
    if kind == "independent":
        return f"{folder}/independent/{suspect or victim}.json"
    if kind == "own_ssl":
        query_set, budget, seed = cell
        return f"{folder}/own_ssl/{suspect or victim}/{query_set}/{budget}/seed{seed}.json"
    if kind == "random_init":
        return f"{folder}/random_init/seed{cell[0]}.json"
    raise ValueError(f"unknown dataset-inference suspect kind {kind!r}")


def dataset_inference_suspects(config: dict, victim: str) -> list[str]:
    """What the owner tests: the victim itself (its own train/unseen gap), its stolen
    copies at the first seed, and the copies stolen from its defended answers (each
    defense's attacks, at every setting)."""
    seed = first_seed(config)
    paths = [dataset_inference_record(victim, "victim")]
    paths += [dataset_inference_record(victim, "stolen", cell) for cell in cfg.extraction_cells(config, victim) if cell[-1] == seed]
    for kind in DEFENSE_KINDS:
        if victim not in cfg.defended_victims(config, kind):
            continue
        cells = [attack_cell(config, a) for a in config["defenses"][kind].get("attacks", [])]
        for name in defense_names(config, kind):
            paths += [f"results/dataset_inference/{victim}/defended/{name}/stolen/{cell}.json" for cell in cells]
    # And every copy of the attack-vs-defense table.
    paths += [c["dataset_inference"] for c in attack_vs_defense_cells(config) if c["victim"] == victim and c.get("dataset_inference")]
    return list(dict.fromkeys(paths))


def dataset_inference_null(config: dict, victim: str) -> list[str]:
    """The records of the encoders that never saw ``victim``'s answers: its null."""
    return [f"results/dataset_inference/{victim}/{name}.json" for name in cfg.dataset_inference_innocents(config, victim)]


# --- paper figures ------------------------------------------------------------------------


def defense_outputs(config: dict, downstream: str) -> list[str]:
    outputs = []
    for kind in DEFENSE_KINDS:
        if not config["defenses"].get(kind, {}).get("attacks"):
            continue  # no block, or one that only sets the defense (B4B's settings)
        for victim in cfg.defended_victims(config, kind):
            outputs += [f"paper_figures/{victim}/{downstream}/defense_{kind}.{ext}" for ext in ("csv", "md", "png")]
    for victim in cfg.watermarked_victims(config):
        outputs += [f"paper_figures/{victim}/watermark.{ext}" for ext in ("csv", "md", "png")]
    for victim in cfg.dataset_inference_victims(config):
        outputs += [f"paper_figures/{victim}/dataset_inference.{ext}" for ext in ("csv", "md", "png")]
    return outputs


def paper_figure_outputs(config: dict) -> list[str]:
    """Every table and figure of ``paper_figures`` (the default target)."""
    main = config["paper_figures"]["downstream"]
    downstreams = [main, *config["paper_figures"].get("extra_downstream", [])]
    outputs = defense_outputs(config, main)
    outputs += [f"paper_figures/{name}.{ext}" for name in ("paper_comparison", "claims") for ext in ("csv", "md")]
    if config["paper_figures"].get("attack_vs_defense"):
        outputs += [f"paper_figures/attack_vs_defense.{ext}" for ext in ("csv", "md", "png")]
    outputs += [f"paper_figures/victim_quality_{d}.{ext}" for d in downstreams for ext in ("csv", "md")]
    for victim in sorted(config["victims"]):
        for downstream in downstreams:
            folder = f"paper_figures/{victim}/{downstream}"
            outputs += [
                f"{folder}/stolen_accuracy.csv",
                f"{folder}/stolen_accuracy.md",
                f"{folder}/accuracy_vs_queries.png",
                f"{folder}/approach_comparison.csv",
                f"{folder}/approach_comparison.md",
            ]
    return outputs


def victim_quality_probes(config: dict, downstream: str) -> list[str]:
    """Every victim's baseline probes but the own-SSL ones (the victim-quality table)."""
    return sorted(
        {p for v in sorted(config["victims"]) for p in baseline_probes(config, v, downstream) if "/own_ssl/" not in p}
    )


def claims_probes(config: dict) -> list[str]:
    """The probe records the claims table reads: every victim's baselines and stolen
    copies on the main downstream set, and every defense's probes."""
    downstream = config["paper_figures"]["downstream"]
    paths = set()
    for victim in sorted(config["victims"]):
        paths |= set(baseline_probes(config, victim, downstream)) | set(stolen_probes(config, victim, downstream))
    for kind in DEFENSE_KINDS:
        if not config["defenses"].get(kind, {}).get("attacks"):
            continue  # no block, or one that only sets the defense (B4B's settings)
        for victim in cfg.defended_victims(config, kind):
            paths |= set(defense_probes(config, victim, downstream, kind))
    # The attack-vs-defense table's probes, and each of its attacks undefended (the
    # defense claims compare a defended copy with the same cell undefended).
    paths |= {cell["probe"] for cell in attack_vs_defense_cells(config)}
    # The defense tables show the first seed; a claim needs every seed of ``seeds``
    # (training randomness), so its defended cells, their undefended twins and the
    # legitimate user run at each.
    first = f"/seed{first_seed(config)}.json"
    for path in list(paths):
        if path.endswith(first) and "/defended/" in path:
            for seed in cfg.default_seeds(config):
                stem = path[: -len(first)]
                paths.add(f"{stem}/seed{seed}.json")
                undefended = re.sub(r"/defended/[^/]+/", "/", stem, count=1)
                paths.add(f"{undefended}/seed{seed}.json")
    return sorted(paths)


def claims_inference_records(config: dict) -> list[str]:
    """The dataset-inference records the claims table reads: every suspect of every
    victim it covers, and the victim's independent twin (the innocent the claims compare with)."""
    paths = []
    for victim in cfg.dataset_inference_victims(config):
        paths += dataset_inference_suspects(config, victim)
        paths += [p for p in dataset_inference_null(config, victim) if "/independent/" in p]
    return list(dict.fromkeys(paths))


def published_matches(config: dict, published_file: str | Path) -> dict:
    """One entry per published cell of ``published_file``: the paper's numbers and, for
    every run of this config that reproduces it, the probe JSONs of the stolen copy (at
    each seed) and of its victim (at the same seeds)."""
    published = yaml.safe_load(Path(published_file).read_text())
    entries = []
    for cell in published["cells"]:
        runs = []
        wanted = cell["victim"]
        for vid in sorted(config["victims"]):
            victim = config["victims"][vid]
            if (victim["method"], victim.get("dataset")) != (wanted["method"], wanted["dataset"]):
                continue
            for name, downstream in sorted(config["probe"]["downstream"].items()):
                if downstream["dataset"] != cell["downstream_dataset"]:
                    continue
                seeds_of = {}
                for approach, loss, query_set, budget, seed in cfg.extraction_cells(config, vid):
                    seeds_of.setdefault((approach, loss, query_set, budget), []).append(seed)
                for (approach, loss, query_set, budget), seeds in sorted(seeds_of.items()):
                    queries = config["query_sets"][query_set]
                    if (approach, loss, budget) != (cell["approach"], cell["loss"], cell["budget"]):
                        continue
                    if queries.get("dataset") != cell["query_dataset"]:
                        continue
                    if cell.get("query_split", queries["split"]) != queries["split"]:
                        continue
                    probes = f"results/probes/{name}"
                    runs.append(
                        {
                            "victim": vid,
                            "downstream": name,
                            "query_set": query_set,
                            "stolen": [
                                f"{probes}/stolen/{vid}/{cell_path(approach, loss, query_set, budget, s)}.json"
                                for s in seeds
                            ],
                            "victim_probe": [f"{probes}/victim/{vid}/seed{s}.json" for s in seeds],
                        }
                    )
        entries.append({"published": cell, "runs": runs})
    return {"source": published["source"], "entries": entries}


# --- checking a target's wildcards ----------------------------------------------------------


def check_wildcards(config: dict, wildcards: dict, rule: str = "") -> None:
    """Refuse, in one line before any job runs, a path whose wildcards this config cannot
    make: an unknown victim, query set, downstream set, approach or loss, a budget of 0
    or above the query pool, Wasserstein with a head approach, a defense setting out of
    its range."""
    what = rule or "wildcards"

    def refuse(message: str) -> None:
        raise TargetError(f"{what} ({', '.join(f'{k}={v}' for k, v in wildcards.items())})", message)

    victim = wildcards.get("victim")
    if victim is not None and victim not in config["victims"]:
        refuse(f"victim {victim!r} is not under victims: {sorted(config['victims'])}")
    query_set = wildcards.get("query_set")
    if query_set is not None and query_set not in config["query_sets"]:
        refuse(f"query set {query_set!r} is not under query_sets: {sorted(config['query_sets'])}")
    downstream = wildcards.get("downstream")
    if downstream is not None and downstream not in config["probe"]["downstream"]:
        refuse(f"downstream {downstream!r} is not under probe.downstream: {sorted(config['probe']['downstream'])}")
    approach, loss = wildcards.get("approach"), wildcards.get("loss")
    if approach is not None and approach not in APPROACHES:
        refuse(f"approach {approach!r} is not one of {list(APPROACHES)}")
    if loss is not None and loss not in LOSSES:
        refuse(f"loss {loss!r} is not one of {list(LOSSES)}")
    if loss in NON_NEGATIVE_LOSSES and approach in HEAD_APPROACHES:
        refuse(f"{loss} compares non-negative histograms; {approach} answers with head outputs that can be negative")
    # A grid block may give a loss its own options (cfg.block_loss_options).
    given = [config["extraction"]["loss_options"], *(b.get("loss_options", {}) for b in config["extraction"]["grid"])]
    if loss is not None and not any(loss in options for options in given):
        refuse(f"extraction.loss_options has no {loss} (lr, batch_size[, temperature])")
    if approach in VIEWS_APPROACHES and "views" not in config["extraction"]:
        refuse(f"extraction.views is not configured (the views {approach} queries)")
    if approach == "head_recreation" and "head_recreation" not in config["extraction"]:
        refuse("extraction.head_recreation is not configured (the head recipe)")
    budget = wildcards.get("budget")
    if budget is not None:
        budget = int(budget)
        if budget < 1:
            refuse(f"budget {budget} must be at least 1 query")
        if query_set is not None and budget > cfg.query_pool_size(config, query_set):
            refuse(f"budget {budget} exceeds the {cfg.query_pool_size(config, query_set)} images of query set {query_set!r}")
    defense = wildcards.get("defense")
    if defense is not None:
        try:
            spec = parse_defense(defense)
        except ValueError as error:
            refuse(str(error))
        if spec["kind"] == "detection" and victim is not None and not cfg.with_head(config, victim):
            refuse(f"detection needs the victim's projection head; external victim {victim!r} has none")
