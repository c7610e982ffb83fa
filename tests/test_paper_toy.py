"""configs/paper.yaml executed, at toy size, on CPU: the same victims (CIFAR-stem
ResNet34 at 32 px on CIFAR10, SVHN and STL10; the imported SimSiam ResNet50 at 224 px),
approaches, losses, query sets, downstream sets and rules, on a handful of generated
images in torchvision's own file formats (verified through the `checksums` option, the
supported path for data whose bytes are not torchvision's), a generated ImageNet folder
and a random checkpoint in SimSiam's released layout. One epoch or two steps each.

The toy config is derived from the file, not written beside it: only sizes change, so
a rule, victim or cell added to configs/paper.yaml is executed here too, and the jobs
per rule are compared with the real paper config's dry run."""

import copy
import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from sslsteal.backbones import load_encoder

from dry_run import job_counts
from mirrors import cifar_mirror, fashion_mnist_mirror, imagenet_folder, simsiam_checkpoint, stl10_mirror, svhn_mirror

ROOT = Path(__file__).resolve().parents[1]
PAPER = ROOT / "configs" / "paper.yaml"
SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile")]

pytestmark = pytest.mark.integration

# Images per split of each generated dataset: enough for the toy budgets below, the
# held-out probe test images (HELD_OUT) and two of every class for the probe's 2 folds.
SIZES = {
    "cifar10": {"train": 40, "test": 50},
    "cifar100": {"train": 20, "test": 10},
    "svhn": {"train": 40, "test": 50},
    "stl10": {"train": 20, "test": 50, "unlabeled": 40},
    "fashion_mnist": {"train": 20, "test": 10},
}
IMAGENET = {"train": 16, "val": 6}
HELD_OUT = 10  # the paper's last 1,000 test images (query pools exclude them)
# Each budget of configs/paper.yaml and its toy size; a budget added to the file without
# one here fails the derivation (and so the test) by name.
TOY_BUDGETS = {1000: 10, 5000: 20, 9000: 30, 7000: 30, 200000: 8}


def toy_budget(budget: int) -> int:
    if budget not in TOY_BUDGETS:
        raise KeyError(f"configs/paper.yaml budget {budget} has no toy size in TOY_BUDGETS")
    return TOY_BUDGETS[budget]


def toy_paper_config(paper: dict, mirrors: Path, imagenet: Path, published: Path) -> dict:
    """configs/paper.yaml with its sizes cut to the generated data: the same keys, the
    same victims, grid, query sets and downstream sets."""
    toy = copy.deepcopy(paper)
    toy.update(precision="fp32", device="cpu", gpu=False)
    toy["threads"] = {key: 1 for key in toy["threads"]}
    for name, options in toy["datasets"].items():
        if name == "imagenet":
            options.update(path=str(imagenet), train_size=12, test_size=4, workers=0)
        else:
            options.update(mirrors=[str(mirrors / name)], download=False, checksums=str(mirrors / name / "MD5SUMS"))
    for victim in toy["victims"].values():
        if "recipe" in victim:
            victim["recipe"].update(epochs=1, batch_size=8)
    for query_set in toy["query_sets"].values():
        if query_set.get("exclude_last"):
            query_set["exclude_last"] = HELD_OUT
    extraction = toy["extraction"]
    for block in extraction["grid"]:
        block["budgets"] = [toy_budget(b) for b in block["budgets"]]
        for options in block.get("loss_options", {}).values():
            options["batch_size"] = 8
    for options in extraction["loss_options"].values():
        options["batch_size"] = 8
    extraction["steps"] = 2
    extraction["head_recreation"].update(head_epochs=1, head_batch_size=8)
    for downstream in toy["probe"]["downstream"].values():
        if downstream.get("test_last"):
            downstream["test_last"] = HELD_OUT
    # Penalties strong enough for L-BFGS to converge fast on a few images.
    toy["probe"].update(l2_grid=[0.1, 1.0, 10.0], folds=2)
    figures = toy["paper_figures"]
    figures["comparison"]["budget"] = toy_budget(figures["comparison"]["budget"])
    for cell in figures.get("comparison_by_victim", {}).values():
        cell["budget"] = toy_budget(cell["budget"])
    figures["published"] = str(published)
    return toy


def toy_published(path: Path) -> Path:
    """paper_figures/published.yaml with each cell's budget at its toy size (the
    published accuracies kept), so paper_comparison matches our toy runs to it."""
    published = yaml.safe_load((ROOT / "paper_figures" / "published.yaml").read_text())
    for cell in published["cells"]:
        cell["budget"] = toy_budget(cell["budget"])
    path.write_text(yaml.safe_dump(published, sort_keys=False))
    return path


def snakemake(workdir: Path, config: Path, *args: str) -> subprocess.CompletedProcess:
    command = [*SNAKEMAKE, "paper_figures", "--directory", str(workdir), "--configfile", str(config), *args]
    return subprocess.run(command, capture_output=True, text=True)


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("paper_toy")
    mirrors = work / "mirrors"
    cifar_mirror(mirrors / "cifar10", SIZES["cifar10"], classes=10, seed=1)
    # CIFAR100's format, labels from 10 of its classes: a 100-class probe per encoder
    # would cost minutes and test nothing more.
    cifar_mirror(mirrors / "cifar100", SIZES["cifar100"], classes=100, labelled_classes=10, seed=2)
    svhn_mirror(mirrors / "svhn", SIZES["svhn"], seed=3)
    stl10_mirror(mirrors / "stl10", SIZES["stl10"], seed=4)
    fashion_mnist_mirror(mirrors / "fashion_mnist", SIZES["fashion_mnist"], seed=5)
    imagenet = imagenet_folder(work / "imagenet", IMAGENET, classes=2, seed=6)
    paper = yaml.safe_load(PAPER.read_text())
    workdir = work / "run"
    for victim in paper["victims"].values():
        if "external" in victim:
            simsiam_checkpoint(workdir / victim["external"]["path"], victim["backbone"]["name"], seed=7)
    config = work / "toy_paper.yaml"
    config.write_text(yaml.safe_dump(toy_paper_config(paper, mirrors, imagenet, toy_published(work / "published.yaml"))))

    planned = snakemake(workdir, config, "--cores", "1", "--dry-run", "--quiet", "rules")
    assert planned.returncode == 0, (planned.stdout + planned.stderr)[-3000:]
    result = snakemake(workdir, config, "--cores", "2")
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]
    return {"workdir": workdir, "config": config, "planned": job_counts(planned.stdout + planned.stderr), "paper": paper}


def test_every_rule_of_the_paper_dag_runs(toy_run, tmp_path):
    """The toy plans, per rule, the jobs the real paper config's dry run plans (the same
    placeholders as tests/test_paper_config.py), every one of them ran, and a second run
    has nothing to do."""
    from test_paper_config import dry_run, placeholders

    real = dry_run(tmp_path, *placeholders(tmp_path, toy_run["paper"]))
    assert real.returncode == 0, (real.stdout + real.stderr)[-3000:]
    assert toy_run["planned"] == job_counts(real.stdout + real.stderr)
    assert {"prepare_imagenet", "import_victim", "train_victim", "extract", "paper_comparison"} <= set(toy_run["planned"])
    # Every planned job ran: Snakemake's log of the run names each job's rule once.
    workdir = toy_run["workdir"]
    (log,) = (workdir / ".snakemake" / "log").glob("*.snakemake.log")
    ran = Counter(re.findall(r"^(?:local)?rule (\w+):$", log.read_text(), flags=re.MULTILINE))
    assert dict(ran) == toy_run["planned"]
    again = snakemake(workdir, toy_run["config"], "--cores", "1", "--dry-run", "--quiet", "rules")
    assert job_counts(again.stdout + again.stderr) == {}, "a second run would redo jobs"


def test_the_paper_s_networks_trained_and_probed(toy_run):
    workdir = toy_run["workdir"]
    victim, meta = load_encoder(workdir / "results/victims/simclr_cifar10/encoder.pt")
    assert meta["backbone"]["name"] == "resnet34" and victim.representation_dim == 512
    assert victim(torch.zeros(1, 3, 32, 32)).shape == (1, 512)
    stl, meta = load_encoder(workdir / "results/victims/simclr_stl10/encoder.pt")
    assert meta["backbone"]["name"] == "resnet34"
    imported, meta = load_encoder(workdir / "results/victims/simsiam_imagenet/encoder.pt")
    assert imported.representation_dim == 2048 and meta["backbone"]["name"] == "resnet50_imagenet"
    stolen_dir = workdir / "results/stolen/simsiam_imagenet/direct/infonce/imagenet_train/8/seed0"
    stolen, meta = load_encoder(stolen_dir / "encoder.pt")
    assert stolen.representation_dim == 2048 and meta["image_size"] == 224
    log = pd.read_csv(stolen_dir / "train_log.tsv", sep="\t")
    assert log["loss"].notna().all() and len(log) >= 1
    for downstream in ("cifar10", "cifar100", "stl10", "svhn", "fashion_mnist"):
        record = json.loads((workdir / f"results/probes/{downstream}/stolen/simsiam_imagenet/direct/infonce/imagenet_train/8/seed0.json").read_text())
        assert 0 <= record["accuracy"] <= 1 and record["n_test"] == (HELD_OUT if downstream in ("cifar10", "stl10", "svhn") else SIZES[downstream]["test"])


def test_paper_comparison_fills_its_rows(toy_run):
    table = pd.read_csv(toy_run["workdir"] / "paper_figures/paper_comparison.csv")
    assert list(table["status"]) == ["run", "run"]
    assert table[["our_stolen_accuracy", "our_victim_accuracy"]].notna().all().all()
    assert set(table["paper_stolen_accuracy"]) == {0.905, 0.769}


def test_prepared_data_names_the_checksums_it_was_verified_against(toy_run):
    workdir = toy_run["workdir"]
    for name in SIZES:
        manifest = json.loads((workdir / f"data/{name}/prepared.json").read_text())
        assert manifest["checksums"].endswith(f"{name}/MD5SUMS")
        assert {split: s["n"] for split, s in manifest["splits"].items()} == SIZES[name]
    imagenet = json.loads((workdir / "data/imagenet/prepared.json").read_text())
    assert imagenet["splits"]["train"] == {"n": 12, "shape": [3, 224, 224], "classes": 2}
