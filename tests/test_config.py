"""The config module, called directly (no Snakemake, no torch): every bad input is refused
with one line naming the key, file or target, before any job could run; the grid's cells
and the target paths are what the config says."""

import copy
import math
import subprocess
import tempfile
import sys
from pathlib import Path

import pytest
import yaml

from sslsteal import config as cfg
from sslsteal import registry, targets
from sslsteal.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = yaml.safe_load((ROOT / "config.yaml").read_text())
TINY = yaml.safe_load((ROOT / "configs" / "tiny.yaml").read_text())
FULL = yaml.safe_load((ROOT / "configs" / "full.yaml").read_text())
VICTIM, QUERY_SET, DOWNSTREAM = "simclr_synthetic", "synthetic_test", "synthetic"
# A working directory with nothing prepared (the checkout's data/ may hold a real run's).
EMPTY = Path(tempfile.mkdtemp(prefix="sslsteal-config-"))


def loaded(config, workdir=EMPTY):
    return cfg.load(copy.deepcopy(config), workdir=workdir)


def refused(config, workdir=EMPTY, configfiles=()):
    with pytest.raises(ConfigError) as error:
        cfg.load(config, configfiles=configfiles, workdir=workdir)
    message = str(error.value)
    assert message.startswith(f"config error at {error.value.key}: ") and "\n" not in message, message
    return error.value


def edited(base, edit):
    config = copy.deepcopy(base)
    edit(config)
    return config


def test_the_shipped_configs_pass():
    for config in (DEFAULT, TINY, FULL):
        loaded(config)


def test_the_config_modules_need_neither_torch_nor_snakemake_to_import():
    code = "import sys, sslsteal.config, sslsteal.targets, sslsteal.registry; print(sorted({'torch', 'snakemake'} & set(sys.modules)))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "[]"


def add_unreachable_dataset(c):
    c["datasets"]["fashion_mnist"] = {"mirrors": ["/nonexistent/fashion-mnist"], "download": False}


# (edit of configs/tiny.yaml, the key the error names, what it says)
BAD_CONFIGS = {
    # --- the schema, with one line naming the key and what is allowed
    "unknown key": (lambda c: c.update(unknown_key=1), "(top level)", "allowed keys: ['baselines', 'data_root'"),
    "wrong type": (lambda c: c["extraction"].update(steps="ten"), "extraction.steps", "is not of type 'integer'"),
    "negative budget": (lambda c: c["extraction"]["grid"][0].update(budgets=[-5]), "extraction.grid[0].budgets[0]", "less than the minimum of 1"),
    "unknown loss": (
        lambda c: c["extraction"]["grid"][0].update(losses=["mse", "l1"]),
        "extraction.grid[0].losses[1]",
        "'l1' is not one of ['mse', 'infonce', 'softnn', 'wasserstein', 'cosine']",
    ),
    "unknown dataset": (lambda c: c["datasets"].update(cifar11={}), "datasets", "'cifar11' is not one of ['fashion_mnist', 'digits'"),
    "unknown victim method": (
        lambda c: c["victims"][VICTIM].update(method="moco"),
        f"victims.{VICTIM}.method",
        "'moco' is not one of ['simclr', 'simsiam', 'barlow_twins']",
    ),
    "temperature zero": (
        lambda c: c["victims"][VICTIM]["recipe"].update(temperature=0),
        f"victims.{VICTIM}.recipe.temperature",
        "less than or equal to the minimum of 0",
    ),
    "unknown precision": (lambda c: c.update(precision="fp16"), "precision", "'fp16' is not one of ['fp32', 'bf16']"),
    "negative noise scale": (lambda c: c["defenses"]["poisoning"].update(sigmas=[0.3, -1.0]), "defenses.poisoning.sigmas[1]", "minimum of 0"),
    "empty noise pool": (lambda c: c["query_sets"]["uniform_noise"]["noise"].update(n=0), "query_sets.uniform_noise.noise.n", "less than the minimum of 1"),
    # JSON Schema calls 100.0 an integer and .nan / .inf numbers; each fails later in a job.
    "float budget": (lambda c: c["extraction"]["grid"][0].update(budgets=[100.0]), "extraction.grid[0].budgets[0]", "100.0 is not an integer"),
    "float seed": (lambda c: c.update(seed=1.0), "seed", "1.0 is not an integer"),
    "nan learning rate": (lambda c: c["extraction"]["loss_options"]["mse"].update(lr=math.nan), "extraction.loss_options.mse.lr", "nan is not a finite number"),
    "infinite learning rate": (lambda c: c["extraction"]["loss_options"]["mse"].update(lr=math.inf), "extraction.loss_options.mse.lr", "inf is not a finite number"),
    "dotted --config key": (lambda c: c.update({"extraction.steps": 10}), "(top level)", "dotted --config key"),
    # --- keys of earlier versions name their new name
    "old grid key": (lambda c: c["extraction"]["grid"][0].update(methods=c["extraction"]["grid"][0].pop("approaches")), "extraction.grid[0].methods", "call it `approaches`"),
    "old attack key": (
        lambda c: c["defenses"]["poisoning"]["attacks"][0].update(method=c["defenses"]["poisoning"]["attacks"][0].pop("approach")),
        "defenses.poisoning.attacks[0].method",
        "call it `approach`",
    ),
    "old threads key": (lambda c: c["threads"].update(probe=c["threads"].pop("inference")), "threads.probe", "call it `inference`"),
    "views under head_recreation": (lambda c: c["extraction"]["head_recreation"].update(n_views=2), "extraction.head_recreation.n_views", "moved: give it as extraction.views.n_views"),
    "view seed under head_recreation": (lambda c: c["extraction"]["head_recreation"].update(view_seed=0), "extraction.head_recreation.view_seed", "extraction.views.view_seed"),
    "augmentation under head_recreation": (lambda c: c["extraction"]["head_recreation"].update(augmentation={}), "extraction.head_recreation.augmentation", "extraction.views.augmentation"),
    # --- where things live
    "empty data root": (lambda c: c.update(data_root=""), "data_root", "prepared under /"),
    "missing mirror path": (add_unreachable_dataset, "datasets.fashion_mnist.mirrors", "/nonexistent/fashion-mnist"),
    "download off and no mirrors": (lambda c: c["datasets"].update(fashion_mnist={"download": False}), "datasets.fashion_mnist.download", "no mirrors"),
    "undefined victim dataset": (lambda c: c["victims"][VICTIM].update(dataset="fashion_mnist"), f"victims.{VICTIM}.dataset", "is not under datasets"),
    "victim train size above its split": (lambda c: c["victims"][VICTIM].update(train_size=5000), f"victims.{VICTIM}.train_size", "exceeds the 1200 images"),
    "exclude_last above the split": (
        lambda c: c["query_sets"][QUERY_SET].update(exclude_last=600),
        f"query_sets.{QUERY_SET}.exclude_last",
        "leaves none of the 600 images",
    ),
    # --- the grid
    "budget above the pool": (lambda c: c["extraction"]["grid"][0].update(budgets=[100, 5000]), "extraction.grid[0].budgets", "exceed the 400 images"),
    "wasserstein with a head": (lambda c: c["extraction"]["grid"][2].update(losses=["wasserstein"]), "extraction.grid[2].losses", "direct-only block"),
    "undefined query set": (lambda c: c["extraction"]["grid"][3].update(query_sets=["cifar10_test"]), "extraction.grid[3].query_sets", "'cifar10_test' is not defined"),
    "undefined victim": (lambda c: c["extraction"]["grid"][1].update(victims=["simclr_imagenet"]), "extraction.grid[1].victims", "'simclr_imagenet' is not under victims"),
    "head recreation without its options": (lambda c: c["extraction"].pop("head_recreation"), "extraction.head_recreation", "required when a grid block"),
    "head recreation without its views": (lambda c: c["extraction"].pop("views"), "extraction.views", "required when a grid block (extraction.grid[2]) lists head_recreation"),
    "contsteal without its views": (
        lambda c: (c["extraction"]["grid"][2].update(approaches=["contsteal"]), c["extraction"].pop("views")),
        "extraction.views",
        "required when a grid block (extraction.grid[2]) lists contsteal",
    ),
    "unknown approach": (lambda c: c["extraction"]["grid"][2].update(approaches=["moco_steal"]), "extraction.grid[2].approaches[0]", "'moco_steal' is not one of ['direct', 'head_access', 'head_recreation', 'stolenencoder', 'contsteal']"),
    "negative stolenencoder weight": (lambda c: c["extraction"]["stolenencoder"].update(weight=-1.0), "extraction.stolenencoder.weight", "less than the minimum of 0"),
    "repeated seed": (lambda c: c.update(seeds=[0, 1, 1]), "seeds", "repeats"),
    "repeated block seed": (lambda c: c["extraction"]["grid"][0].update(seeds=[2, 2]), "extraction.grid[0].seeds", "repeats"),
    "softnn with two temperatures": (
        lambda c: c["extraction"]["loss_options"].update(softnn={"lr": 0.001, "batch_size": 64, "temperature": 100.0, "temperature_factor": 1.0}),
        "extraction.loss_options.softnn",
        "exactly one",
    ),
    "comparison cell the grid does not run": (
        lambda c: c["paper_figures"].update(comparison={"query_set": QUERY_SET, "budget": 300}),
        "paper_figures.comparison",
        "no extraction cell at query set 'synthetic_test' and budget 300",
    ),
    # --- the probe
    "probe train and test splits overlap": (
        lambda c: c["probe"]["downstream"][DOWNSTREAM].update(train_split="test"),
        f"probe.downstream.{DOWNSTREAM}.train_split",
        "same split",
    ),
    "labelled subset given twice": (lambda c: c["probe"]["downstream"][DOWNSTREAM].update(train_size=100), f"probe.downstream.{DOWNSTREAM}.labels_per_class", "not both"),
    "probe test set above its split": (lambda c: c["probe"]["downstream"][DOWNSTREAM].update(test_last=20000), f"probe.downstream.{DOWNSTREAM}.test_last", "exceeds"),
    "probe test split overlapping the queries": (lambda c: c["query_sets"][QUERY_SET].update(exclude_last=0), f"query_sets.{QUERY_SET}.exclude_last", "set exclude_last >= 200"),
    "more probe folds than labels per class": (lambda c: c["probe"].update(folds=60), "probe.folds", f"probe.downstream.{DOWNSTREAM}.labels_per_class is 50"),
    "probe folds below two": (lambda c: c["probe"].update(folds=1), "probe.folds", "less than the minimum of 2"),
    "probe subset too small for the folds": (
        lambda c: (c["probe"]["downstream"][DOWNSTREAM].pop("labels_per_class"), c["probe"]["downstream"][DOWNSTREAM].update(train_size=15)),
        f"probe.downstream.{DOWNSTREAM}.train_size",
        "15 images cannot give each of the 4 classes of synthetic the 5 images the 5-fold cross-validation needs (at least 20",
    ),
    "checksums file absent": (
        lambda c: c["datasets"].update(cifar10={"mirrors": [], "download": True, "checksums": "/nonexistent/MD5SUMS"}),
        "datasets.cifar10.checksums",
        "/nonexistent/MD5SUMS does not exist",
    ),
    "old probe validation split": (lambda c: c["probe"].update(validation_fraction=0.2), "probe.validation_fraction", "give probe.folds"),
    # --- baselines
    "own SSL budget above the pool": (lambda c: c["baselines"]["own_ssl"].update(budgets=[100, 6000]), "baselines.own_ssl.budgets", "exceed the 400 images"),
    "own SSL on an unknown query set": (lambda c: c["baselines"]["own_ssl"].update(query_sets=["cifar10_test"]), "baselines.own_ssl.query_sets", "not defined under query_sets"),
    "own SSL of an unknown victim": (lambda c: c["baselines"]["own_ssl"].update(victims=["nobody"]), "baselines.own_ssl.victims", "not a trained victim"),
    "independent twin with the victims' seed": (lambda c: c["baselines"]["independent"].update(seed=0), "baselines.independent.seed", "must differ"),
    # --- defenses
    "defense attack on an unknown query set": (
        lambda c: c["defenses"]["detection"]["attacks"][0].update(query_set="cifar10_test"),
        "defenses.detection.attacks[0].query_set",
        "is not under query_sets",
    ),
    "defense attack above the pool": (lambda c: c["defenses"]["poisoning"]["attacks"][0].update(budget=500), "defenses.poisoning.attacks[0].budget", "exceeds the 400 images"),
    "defense attack with wasserstein and a head": (
        lambda c: c["defenses"]["poisoning"]["attacks"][0].update(approach="head_access", loss="wasserstein"),
        "defenses.poisoning.attacks[0].loss",
        "non-negative",
    ),
    "calibration on the attack's split": (lambda c: c["defenses"]["detection"].update(calibration={"split": "test"}), "defenses.detection.calibration.split", "legitimate"),
    "calibration shorter than the longest stream": (lambda c: c["defenses"]["detection"].update(calibration={"queries": 799}), "defenses.detection.calibration.queries", "800 calls"),
    "calibration shorter than a contsteal stream": (
        lambda c: (c["defenses"]["detection"]["attacks"][1].update(approach="contsteal"), c["defenses"]["detection"].update(calibration={"queries": 799})),
        "defenses.detection.calibration.queries",
        "800 calls of defenses.detection.attacks[1]",
    ),
    "defense attack without its views": (
        lambda c: (
            c["extraction"]["grid"][2].update(approaches=["head_access"]),
            c["defenses"]["detection"]["attacks"][1].update(approach="contsteal"),
            c["extraction"].pop("views"),
        ),
        "extraction.views",
        "required by defenses.detection.attacks[1], approach contsteal",
    ),
    "B4B with a fractional sybil count": (lambda c: c["defenses"]["b4b"].update(sybils=[1, 2.5]), "defenses.b4b.sybils[1]", "2.5 is not an integer"),
    "B4B with no growth": (lambda c: c["defenses"]["b4b"].update(growth=1.0), "defenses.b4b.growth", "less than or equal to the minimum of 1"),
    # --- the attack-vs-defense table
    "attack-vs-defense: unknown defense name": (
        lambda c: c["paper_figures"]["attack_vs_defense"]["defenses"].append("noise0.3"),
        "paper_figures.attack_vs_defense.defenses[4]",
        "renamed, write poisoning_sigma0.3",
    ),
    "attack-vs-defense: B4B without its settings": (
        lambda c: c["defenses"].pop("b4b"),
        "defenses.b4b",
        "required by paper_figures.attack_vs_defense.defenses[3] (b4b_sybils2)",
    ),
    "attack-vs-defense: detection at an uncalibrated rate": (
        lambda c: c["paper_figures"]["attack_vs_defense"]["defenses"].append("detection_fpr0.1"),
        "paper_figures.attack_vs_defense.defenses[4]",
        "write detection_fpr0.05",
    ),
    "attack-vs-defense: budget above the pool": (
        lambda c: c["paper_figures"]["attack_vs_defense"].update(budget=401),
        "paper_figures.attack_vs_defense.budgets",
        "exceed the 400 images",
    ),
    "attack-vs-defense: a loss without options": (
        lambda c: c["extraction"]["loss_options"].pop("cosine"),
        "extraction.loss_options.cosine",
        "paper_figures.attack_vs_defense.attacks[1] uses it",
    ),
    "attack-vs-defense: unknown victim": (
        lambda c: c["paper_figures"]["attack_vs_defense"].update(victims=["nobody"]),
        "paper_figures.attack_vs_defense.victims",
        "'nobody' is not under victims",
    ),
    "watermarked victim with nothing to verify it": (lambda c: c["defenses"].pop("watermark"), "defenses.watermark", "are watermarked"),
    "watermark images inside a query pool": (lambda c: c["defenses"]["watermark"].update(last=300), "defenses.watermark.last", "overlap query set 'synthetic_test'"),
}


@pytest.mark.parametrize("case", list(BAD_CONFIGS))
def test_bad_config_is_refused_with_one_line_naming_the_key(case):
    edit, key, says = BAD_CONFIGS[case]
    error = refused(edited(TINY, edit))
    assert error.key == key and says in str(error), str(error)


def test_the_watermark_null_too_small_is_refused():
    """One trained victim, no baselines, 2 random-init encoders: a null of 2."""

    def edit(c):
        for v in ("simclr_fashion_mnist", "simsiam_fashion_mnist", "barlow_twins_fashion_mnist"):
            c["victims"].pop(v)
        c.pop("baselines")
        for kind in ("poisoning", "detection", "b4b", "dataset_inference"):
            c["defenses"].pop(kind)
        c["paper_figures"].pop("attack_vs_defense")
        c["extraction"]["grid"] = [g for g in c["extraction"]["grid"] if g.get("victims") == ["simclr_wm_fashion_mnist"]]
        c["paper_figures"].pop("comparison", None)
        c["paper_figures"]["comparison"] = {"query_set": "fashion_mnist_test", "budget": 5000}
        c["defenses"]["watermark"]["random_init"] = 2

    error = refused(edited(FULL, edit))
    assert error.key == "defenses.watermark.random_init" and "at least 5" in str(error)


def test_a_data_root_that_is_a_file_is_named(tmp_path):
    (tmp_path / "data").write_text("not a folder")
    error = refused(edited(TINY, lambda c: None), workdir=tmp_path)
    assert error.key == "data_root" and "is a file" in str(error)


def test_external_checkpoint_folder_or_missing_file_is_named(tmp_path):
    external = {"method": "simsiam", "backbone": {"name": "resnet50_imagenet"}, "external": {"path": "ckpt", "format": "simsiam_imagenet", "in_channels": 3, "image_size": 224}}
    config = edited(TINY, lambda c: c["victims"].update(imported=external))
    error = refused(copy.deepcopy(config), workdir=tmp_path)
    assert error.key == "victims.imported.external.path" and "does not exist" in str(error)
    (tmp_path / "ckpt").mkdir()
    error = refused(config, workdir=tmp_path)
    assert error.key == "victims.imported.external.path" and "is a folder" in str(error)


def test_config_files_duplicate_keys_syntax_errors_and_merges_are_named(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump(TINY))
    cfg.check_config_files([good])
    twice = tmp_path / "twice.yaml"
    twice.write_text("seed: 0\nextraction:\n  steps: 10\n  steps: 20\n")
    error = refused(copy.deepcopy(TINY), configfiles=[twice])
    assert error.key == f"{twice} line 4" and "'steps' is given twice" in str(error) and "line 3" in str(error)
    broken = tmp_path / "broken.yaml"
    broken.write_text("seed: 0\nseeds: [0, 1\nprobe: {}\n")
    error = refused(copy.deepcopy(TINY), configfiles=[broken])
    assert error.key.startswith(f"{broken} line ") and "not valid YAML" in str(error)
    error = refused(copy.deepcopy(TINY), configfiles=[good, good])
    assert error.key == "--configfile" and "merge" in str(error)
    error = refused(copy.deepcopy(TINY), configfiles=[tmp_path / "missing.yaml"])
    assert error.key.endswith("missing.yaml") and "no such config file" in str(error)


def test_the_registry_is_what_the_schema_allows():
    schema = yaml.safe_load(cfg.SCHEMA.read_text())
    defs = schema["$defs"]
    grid = schema["properties"]["extraction"]["properties"]["grid"]["items"]["properties"]
    assert defs["dataset_name"]["enum"] == list(registry.DATASETS)
    assert defs["backbone"]["properties"]["name"]["enum"] == list(registry.BACKBONES)
    assert grid["approaches"]["items"]["enum"] == list(registry.APPROACHES) == defs["attack"]["properties"]["approach"]["enum"]
    assert grid["losses"]["items"]["enum"] == list(registry.LOSSES) == defs["attack"]["properties"]["loss"]["enum"]
    loss_options = schema["properties"]["extraction"]["properties"]["loss_options"]["properties"]
    assert list(loss_options) == list(registry.LOSSES) == list(grid["loss_options"]["properties"])
    assert set(registry.VIEWS_APPROACHES) | set(registry.HEADLESS_APPROACHES) | set(registry.HEAD_APPROACHES) == set(registry.APPROACHES)
    assert not set(registry.HEADLESS_APPROACHES) & set(registry.HEAD_APPROACHES)
    assert schema["properties"]["victims"]["additionalProperties"]["properties"]["method"]["enum"] == list(registry.SSL_METHODS)
    assert schema["properties"]["precision"]["enum"] == list(registry.PRECISIONS)
    assert set(schema["properties"]["defenses"]["properties"]) - {"watermark", "dataset_inference"} == set(registry.DEFENSE_KINDS)


# --- the grid and the paths --------------------------------------------------------------


def test_cells_and_seeds_of_the_default_config():
    config = loaded(DEFAULT)
    cells = cfg.extraction_cells(config, "simclr_fashion_mnist")
    headline = [c for c in cells if c[0] == "direct" and c[2] == "fashion_mnist_test"]
    # 4 losses x 2 budgets x 3 seeds, written out rather than recomputed; every cell a
    # claim compares (head approaches, other query sets, own SSL) at the same 3 seeds.
    assert len(headline) == 24 and {c[-1] for c in headline} == {0, 1, 2}
    assert {c[-1] for c in cells if c[0] != "direct"} == {0, 1, 2}
    assert {c[-1] for c in cells if c[2] != "fashion_mnist_test"} == {0, 1, 2}
    assert len(cells) == 24 + 2 * 3 + 2 * 3
    assert cfg.own_ssl_cells(config, "simclr_fashion_mnist") == [
        ("fashion_mnist_test", budget, seed) for budget in (1000, 5000) for seed in (0, 1, 2)
    ]
    # Own SSL gets the extraction's steps and images per step (loss_options: 128).
    assert cfg.own_ssl_batch_size(config, "simclr_fashion_mnist", "fashion_mnist_test", 5000) == 128
    assert cfg.probe_seeds(config) == [0, 1, 2]
    assert cfg.independent_victims(config) == ["simclr_fashion_mnist"]
    assert cfg.query_pool_size(config, "fashion_mnist_test") == 5000
    assert cfg.comparison_cell(config, "simclr_fashion_mnist") == ("fashion_mnist_test", 5000)


def test_query_sets_are_judged_per_victim_in_the_paper_config():
    """configs/paper.yaml has CIFAR10, SVHN and STL10 victims: SVHN and STL10 queries are
    out-of-distribution for the CIFAR10 victim although other victims train on them, and
    the share of the training set uses each victim's own training size."""
    paper = yaml.safe_load((ROOT / "configs" / "paper.yaml").read_text())
    kinds = cfg.query_set_kinds(paper)
    assert kinds["simclr_cifar10"]["cifar10_test"] == "in_distribution"
    assert kinds["simclr_cifar10"]["svhn_train"] == "out_of_distribution"
    assert kinds["simclr_cifar10"]["stl10_unlabeled"] == "out_of_distribution"
    assert kinds["simclr_svhn"]["svhn_test"] == "in_distribution"
    assert kinds["simclr_svhn"]["cifar10_test"] == "out_of_distribution"
    assert kinds["simclr_stl10"]["stl10_test"] == "in_distribution"
    sizes = cfg.victim_train_sizes(paper)
    assert sizes["simclr_cifar10"] == 50000 and sizes["simclr_stl10"] == 100000
    assert sizes["simsiam_imagenet"] == 1281167  # imported: trained by its authors on all of ImageNet
    # A train_size is the victim's real training set.
    assert cfg.victim_train_sizes(loaded(TINY))[VICTIM] == (TINY["victims"][VICTIM]["train_size"] or TINY["datasets"]["synthetic"]["n_train"])


def test_own_ssl_images_per_step_follow_the_extraction_or_are_given():
    config = loaded(TINY)
    sizes = {cell_options["batch_size"] for cell_options in config["extraction"]["loss_options"].values()}
    for query_set, budget, _ in cfg.own_ssl_cells(config, VICTIM):
        assert cfg.own_ssl_batch_size(config, VICTIM, query_set, budget) in sizes
    given = loaded(edited(TINY, lambda c: c["baselines"]["own_ssl"].update(batch_size=32)))
    assert cfg.own_ssl_batch_size(given, VICTIM, QUERY_SET, 100) == 32
    # A budget no direct extraction cell uses: nothing to match, so it must be given.
    error = refused(edited(TINY, lambda c: c["baselines"]["own_ssl"].update(budgets=[100, 37])))
    assert error.key == "baselines.own_ssl.batch_size" and "37" in str(error)


def test_target_paths_of_the_default_config():
    config = loaded(DEFAULT)
    stolen = targets.stolen_probes(config, "simclr_fashion_mnist", "fashion_mnist")
    assert "results/probes/fashion_mnist/stolen/simclr_fashion_mnist/head_recreation/infonce/fashion_mnist_test/5000/seed0.json" in stolen
    assert len(stolen) == 36
    baselines = targets.baseline_probes(config, "simclr_fashion_mnist", "fashion_mnist")
    assert "results/probes/fashion_mnist/raw_pixels/seed2.json" in baselines
    assert "results/probes/fashion_mnist/own_ssl/simclr_fashion_mnist/fashion_mnist_test/5000/seed2.json" in baselines
    assert len(baselines) == 3 * 4 + 2 * 3  # victim, random init, raw pixels, twin at 3 seeds; 2 own SSL at 3
    # The claims read B4B's defended copy and the user behind B4B at every seed (the
    # attack-vs-defense table shows the first), and the copy undefended at each.
    claims = targets.claims_probes(config)
    for seed in (0, 1, 2):
        for path in (
            f"defended/b4b_sybils1/stolen/simclr_fashion_mnist/direct/infonce/fashion_mnist_test/5000/seed{seed}.json",
            f"defended/b4b_sybils1/victim/simclr_fashion_mnist/seed{seed}.json",
            f"stolen/simclr_fashion_mnist/direct/infonce/fashion_mnist_test/5000/seed{seed}.json",
        ):
            assert f"results/probes/fashion_mnist/{path}" in claims
    outputs = targets.paper_figure_outputs(config)
    assert "paper_figures/simclr_fashion_mnist/fashion_mnist/approach_comparison.md" in outputs
    # No defense table by default, but the attack-vs-defense table (B4B's settings only).
    assert not any(word in path for path in outputs for word in ("/defense_", "watermark", "dataset_inference"))
    assert "paper_figures/attack_vs_defense.md" in outputs
    assert targets.extraction_dump(config, "v", "head_recreation", "q") == "results/dumps/v/q/views_seed0.h5"
    assert targets.defended_dump("results/dumps/v/q/answers.h5", "poisoning_sigma0.3") == "results/dumps/v/q/defended/poisoning_sigma0.3/answers.h5"


def test_the_full_config_watermark_null_is_every_innocent():
    """configs/full.yaml: the watermarked SimCLR's null holds the 3 plain victims, its
    independent twin, the 3 own-SSL encoders of the plain victims (5,000 queries, seed 0)
    and 5 random-init encoders: 12; never a copy of the watermarked victim, nor an
    own-SSL encoder trained with its recipe (and watermark)."""
    config = loaded(FULL)
    innocents = cfg.watermark_innocents(config, "simclr_wm_fashion_mnist")
    assert len(innocents) == 12
    assert sum(name.startswith("victim/") for name in innocents) == 3
    assert sum(name.startswith("independent/") for name in innocents) == 1
    assert "victim/simclr_wm_fashion_mnist" not in innocents
    assert sum(name.startswith("random_init/") for name in innocents) == 5
    assert not any("stolen" in name or name.startswith("own_ssl/simclr_wm") for name in innocents)
    assert targets.defense_names(config, "detection") == ["detection_fpr0.05"]
    assert targets.defense_names(config, "poisoning")[0].startswith("poisoning_sigma")


# A target path's wildcards, refused before any job runs (the Snakefile's `checked` input).
BAD_TARGETS = {
    "budget 0": ({"victim": VICTIM, "query_set": QUERY_SET, "budget": "0"}, "budget 0 must be at least 1"),
    "budget above the pool": ({"victim": VICTIM, "query_set": QUERY_SET, "budget": "401"}, "exceeds the 400 images"),
    "unknown query set": ({"victim": VICTIM, "query_set": "cifar10_test", "budget": "100"}, "query set 'cifar10_test' is not under query_sets"),
    "unknown downstream": ({"victim": VICTIM, "downstream": "cifar10"}, "downstream 'cifar10' is not under probe.downstream"),
    "unknown victim": ({"victim": "moco_synthetic"}, "victim 'moco_synthetic' is not under victims"),
    "wasserstein with a head": ({"victim": VICTIM, "approach": "head_access", "loss": "wasserstein"}, "non-negative"),
    "negative noise": ({"victim": VICTIM, "defense": "poisoning_sigma-1"}, "sigma must be finite and >= 0"),
    "threshold above 1": ({"victim": VICTIM, "defense": "detection_threshold1.5"}, "threshold must be in (0, 1)"),
    "old defense name": ({"victim": VICTIM, "defense": "noise0.3"}, "renamed, write poisoning_sigma0.3"),
    "unknown defense": ({"victim": VICTIM, "defense": "blur0.3"}, "unknown defense 'blur0.3'"),
}


@pytest.mark.parametrize("case", list(BAD_TARGETS))
def test_bad_target_wildcards_are_refused_in_one_line(case):
    wildcards, says = BAD_TARGETS[case]
    with pytest.raises(targets.TargetError) as error:
        targets.check_wildcards(loaded(TINY), wildcards, "probe_stolen")
    message = str(error.value)
    assert message.startswith("target error at probe_stolen (") and says in message and "\n" not in message, message


def test_good_target_wildcards_pass():
    config = loaded(TINY)
    targets.check_wildcards(config, {"victim": VICTIM, "approach": "direct", "loss": "wasserstein", "query_set": QUERY_SET, "budget": "400", "downstream": DOWNSTREAM, "defense": "detection_fpr0.05", "seed": "7"})


def test_the_command_line_check_names_file_and_line(tmp_path, capsys):
    """What a user runs when Snakemake's own loader refuses a file before the workflow starts."""
    broken = tmp_path / "broken.yaml"
    broken.write_text("seed: 0\nseeds: [0, 1\n")
    assert cfg.main([str(broken), "--directory", str(EMPTY)]) == 1
    assert capsys.readouterr().out.startswith(f"config error at {broken} line 3")
    assert cfg.main([str(ROOT / "configs" / "tiny.yaml"), "--directory", str(EMPTY)]) == 0


def test_a_loss_whose_options_only_a_grid_block_gives_is_a_valid_target():
    def edit(c):
        c["extraction"]["grid"][0]["loss_options"] = {"wasserstein": c["extraction"]["loss_options"].pop("wasserstein")}

    config = loaded(edited(TINY, edit))
    cell = {"victim": VICTIM, "approach": "direct", "loss": "wasserstein", "query_set": QUERY_SET, "budget": "400"}
    targets.check_wildcards(config, cell)
    config["extraction"]["grid"][0].pop("loss_options")
    with pytest.raises(targets.TargetError, match="extraction.loss_options has no wasserstein"):
        targets.check_wildcards(config, cell)


# --- the attacks beyond the paper ----------------------------------------------------------

NEW_ATTACKS = {
    "victims": [VICTIM, "simsiam_synthetic"],
    "approaches": ["stolenencoder", "contsteal"],
    "losses": ["mse", "infonce", "cosine"],
    "query_sets": [QUERY_SET],
    "budgets": [100, 400],
    "seeds": [0, 1],
}


def test_a_grid_block_of_the_new_attacks_adds_its_cells():
    """2 victims x 2 approaches x 3 losses x 2 budgets x 2 seeds: 48 new cells, each
    reading the answers (stolenencoder) or the views dump (contsteal)."""
    base = loaded(TINY)
    config = loaded(edited(TINY, lambda c: c["extraction"]["grid"].append(copy.deepcopy(NEW_ATTACKS))))
    added = {v: set(cfg.extraction_cells(config, v)) - set(cfg.extraction_cells(base, v)) for v in config["victims"]}
    assert {v: len(cells) for v, cells in added.items() if cells} == {VICTIM: 24, "simsiam_synthetic": 24}
    assert len(list(cfg.block_cells(config, config["extraction"]["grid"][-1], VICTIM))) == 24
    assert {cell[0] for cells in added.values() for cell in cells} == {"stolenencoder", "contsteal"}
    assert targets.extraction_dump(config, VICTIM, "contsteal", QUERY_SET) == f"results/dumps/{VICTIM}/{QUERY_SET}/views_seed0.h5"
    assert targets.extraction_dump(config, VICTIM, "stolenencoder", QUERY_SET) == f"results/dumps/{VICTIM}/{QUERY_SET}/answers.h5"
    assert cfg.api_calls(config, "contsteal", 400) == 800 and cfg.api_calls(config, "stolenencoder", 400) == 400
    assert cfg.cell_loss_options(config, VICTIM, "stolenencoder", "cosine", QUERY_SET, 400) == {"lr": 0.001, "batch_size": 64}
    for approach in ("stolenencoder", "contsteal"):
        targets.check_wildcards(config, {"victim": VICTIM, "approach": approach, "loss": "cosine", "query_set": QUERY_SET, "budget": "400"})


def test_approach_options_of_each_approach():
    config = loaded(TINY)
    views = {"augmentation": {"crop_scale": [0.5, 1.0]}, "n_views": 2, "view_seed": 0}
    # Head recreation gets the views and the head recipe in one dict, as before the
    # views had their own block: its extraction jobs' params are unchanged.
    assert cfg.approach_options(config, "head_recreation") == {
        **views, "temperature": 0.2, "head_dim": 128, "head_epochs": 3, "head_batch_size": 64, "head_lr": 0.001
    }
    assert cfg.approach_options(config, "contsteal") == views
    assert cfg.approach_options(config, "stolenencoder") == {"weight": 1.0, "augmentation": {"crop_scale": [0.5, 1.0]}}
    assert cfg.approach_options(config, "direct") == {} == cfg.approach_options(config, "head_access")
    # Without the block, StolenEncoder's defaults: the paper's weight, augment.py's strengths.
    defaults = loaded(edited(TINY, lambda c: c["extraction"].pop("stolenencoder")))
    assert cfg.approach_options(defaults, "stolenencoder") == {"weight": 1.0, "augmentation": {}}


def test_a_target_of_a_views_approach_needs_the_views():
    config = loaded(TINY)
    config["extraction"].pop("views")
    with pytest.raises(targets.TargetError, match="extraction.views is not configured"):
        targets.check_wildcards(config, {"victim": VICTIM, "approach": "contsteal", "loss": "mse"})
    targets.check_wildcards(config, {"victim": VICTIM, "approach": "stolenencoder", "loss": "cosine"})
