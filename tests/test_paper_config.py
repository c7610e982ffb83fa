"""configs/paper.yaml: the paper-scale DAG resolves without data or GPU, with the jobs
its grid asks for; ImageNet and the SimSiam checkpoint are checked early; the table
of published cells next to ours.

The dry run needs no dataset and no GPU. The config check does demand that the
ImageNet folder and the SimSiam checkpoint exist (a run without them could only fail
hours later), so the test gives empty placeholders in a temporary folder: the
checkpoint at the config's relative path under --directory, the ImageNet folder via
--config (merged into the config, key by key).
"""

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from sslsteal.tables import paper_comparison, write_paper_comparison

ROOT = Path(__file__).resolve().parents[1]
PAPER = ROOT / "configs" / "paper.yaml"
SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile")]


def placeholders(workdir: Path, config: dict) -> list[str]:
    """Empty ImageNet folder and checkpoint file; the --config override that points at them."""
    imagenet = workdir / "imagenet"
    for sub in ("train", "val"):
        (imagenet / sub).mkdir(parents=True)
    for victim in config["victims"].values():
        if "external" in victim:
            checkpoint = workdir / victim["external"]["path"]
            checkpoint.parent.mkdir(parents=True, exist_ok=True)
            checkpoint.touch()
    return ["--config", f"datasets={{imagenet: {{path: {imagenet}}}}}"]


def dry_run(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    command = [*SNAKEMAKE, "paper_figures", "--directory", str(workdir), "--configfile", str(PAPER),
               "--dry-run", "--quiet", "rules", *args]
    return subprocess.run(command, capture_output=True, text=True)


def jobs_per_rule(output: str) -> dict[str, int]:
    counts = {}
    for line in output.splitlines():
        match = re.fullmatch(r"\s*([a-z_]+)\s+(\d+)\s*", line)
        if match and match.group(1) != "total":
            counts[match.group(1)] = int(match.group(2))
    return counts


# The jobs of configs/paper.yaml's paper_figures, counted by hand from the file (not
# recomputed from it: a helper that walks the grid as the workflow does would agree
# with a workflow that walks it wrongly).
#   Victims: simclr_cifar10, simclr_svhn, simclr_stl10 (trained), simsiam_imagenet
#   (imported). Downstreams: cifar10 plus cifar100, stl10, svhn, fashion_mnist = 5.
#   Grid cells: 4 losses x 3 budgets (cifar10_test) + 4 losses x 2 query sets (svhn_train,
#   stl10_unlabeled) + 2 head approaches x 3 losses + 4 (svhn victim) + 4 (stl10 victim) +
#   1 (imagenet) = 12 + 8 + 6 + 4 + 4 + 1 = 35 extractions, each probed on 5 downstreams.
#   Dumps: one per (victim, query set) of the non-head-recreation cells: simclr_cifar10 on
#   cifar10_test, svhn_train, stl10_unlabeled; simclr_svhn on svhn_test; simclr_stl10 on
#   stl10_test; simsiam_imagenet on imagenet_train = 6; the views for head recreation:
#   simclr_cifar10 on cifar10_test = 1.
#   Datasets prepared: cifar10, svhn, stl10 (victims, query sets), cifar100 and
#   fashion_mnist (downstreams) = 5; ImageNet by its own rule.
#   Per victim and downstream (4 x 5 = 20): its probe, the random-init probe, the
#   collected probes and the three tables/figures; per downstream (5): raw pixels and
#   the victim-quality table.
PAPER_JOBS = {
    "prepare_dataset": 5,
    "prepare_imagenet": 1,
    "train_victim": 3,
    "import_victim": 1,
    "dump_victim": 6,
    "dump_victim_views": 1,
    "extract": 35,
    "probe_stolen": 175,
    "probe_victim": 20,
    "probe_random_init": 20,
    "probe_raw_pixels": 5,
    "collect_probes": 20,
    "stolen_accuracy_table": 20,
    "accuracy_vs_queries_figure": 20,
    "approach_comparison_table": 20,
    "victim_quality_table": 5,
    "paper_comparison": 1,
    "claims": 1,
    "paper_figures": 1,
}


def test_paper_config_dry_run_schedules_the_grid(tmp_path):
    config = yaml.safe_load(PAPER.read_text())
    result = dry_run(tmp_path, *placeholders(tmp_path, config))
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert jobs_per_rule(result.stdout + result.stderr) == PAPER_JOBS
    # The paper's settings, as PAPER.md states them.
    cifar = config["victims"]["simclr_cifar10"]
    assert cifar["backbone"]["name"] == "resnet34"
    assert {k: cifar["recipe"][k] for k in ("epochs", "batch_size", "lr", "weight_decay", "temperature")} == {
        "epochs": 200, "batch_size": 256, "lr": 3e-4, "weight_decay": 1e-4, "temperature": 0.07
    }
    options = config["extraction"]["loss_options"]
    assert {loss: (o["lr"], o["batch_size"]) for loss, o in options.items()} == {
        "mse": (1e-3, 64), "infonce": (3e-4, 256), "softnn": (1e-3, 256), "wasserstein": (1e-3, 64)
    }
    # Our choice, documented in the file: a fixed number of steps (100 epochs of 9,000
    # queries at batch 256) and the converged L-BFGS probe.
    assert config["extraction"]["steps"] == 3516
    assert config["seeds"] == [0] and all(d.get("test_last") in (None, 1000) for d in config["probe"]["downstream"].values())
    assert config["query_sets"]["cifar10_test"] == {"dataset": "cifar10", "split": "test", "exclude_last": 1000}
    # The placeholders were only looked at: nothing was prepared or written.
    assert not (tmp_path / "data").exists() and not (tmp_path / "results").exists()


def test_paper_config_without_imagenet_names_the_key_and_path(tmp_path):
    config = yaml.safe_load(PAPER.read_text())
    placeholders(tmp_path, config)  # the checkpoint exists, the ImageNet path does not
    result = dry_run(tmp_path)
    assert result.returncode != 0
    lines = [line for line in (result.stdout + result.stderr).splitlines() if "config error at" in line]
    assert lines == [f"config error at datasets.imagenet.path: {config['datasets']['imagenet']['path']} does not exist"]


def test_paper_config_without_checkpoint_names_the_key(tmp_path):
    config = yaml.safe_load(PAPER.read_text())
    override = placeholders(tmp_path, config)
    checkpoint = config["victims"]["simsiam_imagenet"]["external"]["path"]
    (tmp_path / checkpoint).unlink()
    result = dry_run(tmp_path, *override)
    assert result.returncode != 0
    lines = [line for line in (result.stdout + result.stderr).splitlines() if "config error at" in line]
    assert len(lines) == 1 and lines[0].startswith("config error at victims.simsiam_imagenet.external.path: ")
    assert checkpoint in lines[0]


def test_imagenet_folder_without_val_is_refused(tmp_path):
    config = yaml.safe_load(PAPER.read_text())
    override = placeholders(tmp_path, config)
    (tmp_path / "imagenet" / "val").rmdir()
    result = dry_run(tmp_path, *override)
    line = next(line for line in (result.stdout + result.stderr).splitlines() if "config error at" in line)
    assert line.startswith("config error at datasets.imagenet.path: ") and "imagenet/val missing" in line


PUBLISHED = yaml.safe_load((ROOT / "paper_figures" / "published.yaml").read_text())


def test_published_numbers_are_papers():
    """The two cells of PAPER.md's table, with the source cited."""
    cells = {(c["loss"], c["budget"]): (c["victim_accuracy"], c["stolen_accuracy"]) for c in PUBLISHED["cells"]}
    assert cells == {("infonce", 200000): (0.919, 0.905), ("softnn", 9000): (0.790, 0.769)}
    assert "arXiv 2205.07890" in PUBLISHED["source"]


def test_paper_comparison_table(tmp_path):
    from sslsteal.probe import encode_correct

    def record(path, accuracy, seed):
        # 1,000 test images, the first accuracy x 1,000 right.
        correct = [i < accuracy * 1000 for i in range(1000)]
        path.write_text(json.dumps({"accuracy": accuracy, "seed": seed, "n_test": 1000, "correct": encode_correct(correct)}))
        return str(path)

    run = {"victim": "simclr_cifar10", "downstream": "cifar10", "query_set": "cifar10_test",
           "stolen": [record(tmp_path / "stolen0.json", 0.75, 0), record(tmp_path / "stolen1.json", 0.75, 1)],
           "victim_probe": [record(tmp_path / "victim0.json", 0.80, 0), record(tmp_path / "victim1.json", 0.80, 1)]}
    imagenet, cifar = PUBLISHED["cells"]
    table = paper_comparison([{"published": imagenet, "runs": []}, {"published": cifar, "runs": [run]}])
    assert list(table["status"]) == ["not run (no such cell in this config)", "run"]
    row = table.iloc[1]
    assert row["stolen_difference"] == pytest.approx(0.75 - 0.769)
    assert row["victim_difference"] == pytest.approx(0.80 - 0.790)
    assert row["our_ratio"] == pytest.approx(0.75 / 0.80) and row["paper_ratio"] == pytest.approx(0.769 / 0.790)
    assert table.iloc[0][["our_stolen_accuracy", "our_victim_accuracy"]].isna().all()
    # The paired difference: the stolen copy gets a subset of the victim's images right.
    assert row["our_stolen_minus_victim"] == pytest.approx(-0.05)
    assert row["our_stolen_minus_victim_low"] < -0.05 < row["our_stolen_minus_victim_high"] < 0
    assert row["our_stolen_low"] < 0.75 < row["our_stolen_high"] and row["seeds"] == "0 1"
    write_paper_comparison(table, tmp_path / "t.csv", tmp_path / "t.md", PUBLISHED["source"])
    # A victim at 0% (a toy run's handful of test images): the ratio is undefined, not a crash.
    zero = {**run, "stolen": [record(tmp_path / "z0.json", 0.0, 0)], "victim_probe": [record(tmp_path / "z1.json", 0.0, 0)]}
    assert np.isnan(paper_comparison([{"published": cifar, "runs": [zero]}]).iloc[0]["our_ratio"])
    markdown = (tmp_path / "t.md").read_text()
    assert re.search(r"\| +-1\.9 \|", markdown) and "not run" in markdown and "2205.07890" in markdown
