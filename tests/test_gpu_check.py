"""benchmarks/gpu_check.py at toy size on the CPU: it completes from a folder of
Fashion-MNIST-format .gz files, prints every figure, writes its JSON, and a rerun with
the same seed gives bitwise-identical numbers (CPU, fp32). It runs as on the GPU
machine: a fresh interpreter that cannot import tqdm, PyYAML, Snakemake, psutil or the
plotting libraries, with the package imported from the checkout.

The .gz files are generated here (the package's synthetic images, written in the idx
format Fashion-MNIST ships in), so the test needs no installed dataset.
"""

import gzip
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from sslsteal.data import make_synthetic

from mirrors import idx

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"
# What the script must run without. The GPU machine's image has torch, torchvision, h5py,
# NumPy, SciPy (the probe's L-BFGS-B), pandas and scikit-learn; the workflow's own tools
# need not be there.
ABSENT = ("tqdm", "yaml", "snakemake", "matplotlib", "seaborn", "psutil")


def write_idx(path: Path, array: np.ndarray) -> None:
    path.write_bytes(gzip.compress(idx(array)))


def fake_fashion_mnist(folder: Path) -> dict:
    arrays = make_synthetic(seed=0, n_train=300, n_test=300, image_size=28)
    folder.mkdir()
    write_idx(folder / "train-images-idx3-ubyte.gz", arrays["train_images"][:, 0])
    write_idx(folder / "train-labels-idx1-ubyte.gz", arrays["train_labels"])
    write_idx(folder / "t10k-images-idx3-ubyte.gz", arrays["test_images"][:, 0])
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", arrays["test_labels"])
    return arrays


def load_script():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_idx_files_read_back(tmp_path):
    arrays = fake_fashion_mnist(tmp_path / "fm")
    gpu_check = load_script()
    images = gpu_check.read_idx(tmp_path / "fm" / "t10k-images-idx3-ubyte.gz")
    assert images.shape == (300, 28, 28) and np.array_equal(images, arrays["test_images"][:, 0])
    data = gpu_check.load_fashion_mnist(tmp_path / "fm", 32)
    assert tuple(data["train"][0].shape) == (300, 1, 32, 32) and data["train"][0].dtype.is_floating_point is False
    assert np.array_equal(data["test"][1].numpy(), arrays["test_labels"])


def test_recipe_is_the_paper_config():
    gpu_check = load_script()
    paper = yaml.safe_load((ROOT / "configs" / "paper.yaml").read_text())
    assert gpu_check.PAPER_RECIPE == paper["victims"]["simclr_cifar10"]["recipe"]
    options = paper["extraction"]["loss_options"]["softnn"]
    extraction = gpu_check.PAPER_EXTRACTION
    assert (extraction["lr"], extraction["batch_size"], extraction["temperature"]) == (
        options["lr"], options["batch_size"], options["temperature"]
    )
    assert extraction["weight_decay"] == paper["extraction"]["weight_decay"]
    assert gpu_check.PAPER_PROBE == {k: paper["probe"][k] for k in ("l2_grid", "folds")}
    imagenet = next(b for b in paper["extraction"]["grid"] if b["victims"] == ["simsiam_imagenet"])
    options = imagenet["loss_options"]["infonce"]
    assert gpu_check.IMAGENET_EXTRACTION["loss"] in imagenet["losses"]
    assert (gpu_check.IMAGENET_EXTRACTION["lr"], gpu_check.IMAGENET_EXTRACTION["temperature"]) == (options["lr"], options["temperature"])
    assert gpu_check.SIZES["default"]["imagenet_batch_size"] == options["batch_size"]
    assert gpu_check.SIZES["default"]["imagenet_image_size"] == paper["datasets"]["imagenet"]["image_size"]


def test_gpu_check_runs_on_cpu_at_toy_size(tmp_path):
    fake_fashion_mnist(tmp_path / "fm")
    out = tmp_path / "figures.json"
    argv = ["--data", str(tmp_path / "fm"), "--device", "cpu", "--precision", "fp32", "--toy", "--threads", "1",
            "--out", str(out)]
    # A fresh interpreter in which the packages the GPU machine lacks cannot be imported.
    code = (
        f"import runpy, sys; sys.modules.update(dict.fromkeys({ABSENT!r})); "
        f"sys.argv = [{str(SCRIPT)!r}, *{argv!r}]; runpy.run_path({str(SCRIPT)!r}, run_name='__main__')"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    for figure in ("victim training", "images/s", "extraction", "probe accuracy: victim", "stolen copy",
                   "peak GPU memory n/a", "wall time", "rerun with the same seed gives the same numbers: yes"):
        assert figure in output, (figure, output[-3000:])
    figures = json.loads(out.read_text())
    run = figures["runs"]["fp32"]
    assert run["peak_gpu_memory_mib"] is None and run["device"].startswith("cpu")
    assert run["victim_images_per_second"] > 0 and run["extraction_images_per_second"] > 0
    assert run["dump_images_per_second"] > 0 and 0 <= run["stolen_accuracy"] <= 1 and 0 <= run["victim_accuracy"] <= 1
    assert run["rerun"]["identical"] is True and run["rerun"]["max_abs_difference_answers"] == 0
    assert run["extraction"]["queries"] == figures["sizes"]["queries"] == 64
    assert figures["sizes"]["image_size"] == 16 and figures["backbone"] == "resnet18"
    # The ImageNet victim's path: the SimSiam-format checkpoint imported, a ResNet50 copy.
    assert "ImageNet path (imported SimSiam ResNet50 at 64 px)" in output
    imagenet = run["imagenet"]
    assert imagenet["image_size"] == 64 and imagenet["extraction_images_per_second"] > 0
    assert 0 <= imagenet["victim_accuracy"] <= 1 and 0 <= imagenet["stolen_accuracy"] <= 1
    assert not list(tmp_path.glob("*.h5"))  # the dumps lived in a temporary folder


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is visible: the default device works here")
def test_without_a_gpu_the_default_device_stops_with_one_line(tmp_path):
    fake_fashion_mnist(tmp_path / "fm")
    result = subprocess.run([sys.executable, str(SCRIPT), "--data", str(tmp_path / "fm")], capture_output=True, text=True)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "gpu_check: torch sees no CUDA GPU; run it on a GPU machine, or pass --device cpu (with --toy)"
    ]
