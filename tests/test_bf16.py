"""`precision: bf16` through real `snakemake`: one cell of the tiny config (its victim,
the victim's answers, one stolen copy and its probe), run twice in two fresh working
directories, gives the same results; everything it stores is float32; and the same
encoder's probe moves by at most benchmarks/probe_precision.py's tolerance between
fp32 and bf16 features (docs/benchmarks.md).

Compared between the two runs, content first (so a failure says what differs), then
the file bytes: the victim's and the copy's checkpoints (every tensor bitwise, every
metadata value), the dump (its arrays and attributes), the probe record (the whole
JSON). None of these hold a time, so their bytes are compared too. The training logs
are compared without their ``seconds`` and ``images_per_second`` columns (wall-clock
times; the losses and learning rates are compared). Left out, because they hold only
wall-clock times and timestamps: the job logs under logs/, the Snakemake benchmark
files under results/job_times/ and Snakemake's .snakemake/ folder.
"""

import contextlib
import importlib.util
import json
import subprocess
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from sslsteal import config as cfg
from sslsteal.api import answer_query_set
from sslsteal.dumps import read_dump
from sslsteal.io import load_checkpoint
from sslsteal.runtime import configure_torch

from test_workflow import DOWNSTREAM, QUERY_SET, ROOT, SNAKEMAKE, TINY, VICTIM

pytestmark = pytest.mark.integration

# The cheapest stolen cell of the tiny config: direct MSE, 100 queries, seed 0. Its
# target schedules prepare_dataset, train_victim, dump_victim, extract, probe_stolen.
CELL = f"{VICTIM}/direct/mse/{QUERY_SET}/100/seed0"
VICTIM_CKPT = f"results/victims/{VICTIM}/encoder.pt"
DUMP = f"results/dumps/{VICTIM}/{QUERY_SET}/answers.h5"
STOLEN_CKPT = f"results/stolen/{CELL}/encoder.pt"
PROBE = f"results/probes/{DOWNSTREAM}/stolen/{CELL}.json"
TRAIN_LOGS = (f"results/victims/{VICTIM}/train_log.tsv", f"results/stolen/{CELL}/train_log.tsv")
WALL_CLOCK_COLUMNS = ["seconds", "images_per_second"]


def load_benchmark():
    spec = importlib.util.spec_from_file_location("probe_precision", ROOT / "benchmarks" / "probe_precision.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def torch_state_restored():
    """configure_torch sets process-wide state (threads, autocast dtype, deterministic
    algorithms); put it back for the tests that run after these."""
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    try:
        yield
    finally:
        configure_torch(threads, "fp32", "cpu")
        torch.use_deterministic_algorithms(deterministic)


@pytest.fixture(scope="module")
def bf16_config(tmp_path_factory) -> Path:
    """configs/tiny.yaml with `precision: bf16` and the victim cut to one epoch."""
    config = yaml.safe_load(TINY.read_text())
    config["precision"] = "bf16"
    config["victims"][VICTIM]["recipe"]["epochs"] = 1
    path = tmp_path_factory.mktemp("bf16_config") / "bf16.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="module")
def bf16_runs(tmp_path_factory, bf16_config) -> tuple[Path, Path]:
    """The cell's probe built twice, each in a fresh working directory, one core."""
    workdirs = []
    for name in ("first", "second"):
        workdir = tmp_path_factory.mktemp(f"bf16_{name}")
        command = [*SNAKEMAKE, "--directory", str(workdir), "--configfile", str(bf16_config), "--cores", "1", PROBE]
        result = subprocess.run(command, capture_output=True, text=True)
        assert result.returncode == 0, f"snakemake failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
        workdirs.append(workdir)
    return workdirs[0], workdirs[1]


def leaves(value, where=""):
    """(path, leaf) for every leaf of a checkpoint's nested dicts and lists."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from leaves(item, f"{where}/{key}")
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from leaves(item, f"{where}[{i}]")
    else:
        yield where, value


def assert_same_checkpoint(first: Path, second: Path) -> None:
    a, b = dict(leaves(load_checkpoint(first))), dict(leaves(load_checkpoint(second)))
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], torch.Tensor):
            assert a[key].dtype == b[key].dtype and torch.equal(a[key], b[key]), key
        else:
            assert a[key] == b[key], key
    assert first.read_bytes() == second.read_bytes()


def test_two_bf16_runs_give_identical_results(bf16_runs):
    first, second = bf16_runs
    assert_same_checkpoint(first / VICTIM_CKPT, second / VICTIM_CKPT)
    assert_same_checkpoint(first / STOLEN_CKPT, second / STOLEN_CKPT)

    a, b = read_dump(first / DUMP), read_dump(second / DUMP)
    assert torch.equal(a.representation, b.representation) and np.array_equal(a.index, b.index)
    assert a.projection is not None and torch.equal(a.projection, b.projection)  # the SimCLR head's answers
    assert a.meta == b.meta  # the victim checkpoint's and the queries' SHA-256 included
    assert (first / DUMP).read_bytes() == (second / DUMP).read_bytes()

    record_a, record_b = json.loads((first / PROBE).read_text()), json.loads((second / PROBE).read_text())
    assert not [key for key in record_a if "second" in key or "time" in key]  # nothing to leave out
    assert record_a == record_b
    assert (first / PROBE).read_bytes() == (second / PROBE).read_bytes()

    for log in TRAIN_LOGS:
        log_a, log_b = (pd.read_csv(w / log, sep="\t") for w in (first, second))
        assert list(log_a.columns[-2:]) == WALL_CLOCK_COLUMNS
        pd.testing.assert_frame_equal(
            log_a.drop(columns=WALL_CLOCK_COLUMNS), log_b.drop(columns=WALL_CLOCK_COLUMNS), check_exact=True
        )
    assert len(pd.read_csv(first / TRAIN_LOGS[0], sep="\t")) == 1  # the one-epoch victim


def test_bf16_run_stores_float32_only(bf16_runs, bf16_config):
    """No bfloat16 in stored weights, answers or records; and the answers are those of
    bf16 autocast (recomputed here), not fp32's, so this run did exercise bf16."""
    first, _ = bf16_runs
    for checkpoint in (VICTIM_CKPT, STOLEN_CKPT):
        content = dict(leaves(load_checkpoint(first / checkpoint)))
        tensors = {key: value for key, value in content.items() if isinstance(value, torch.Tensor)}
        assert len(tensors) > 10  # the encoder's state dict (and the victim's heads) are in there
        floating = {key: value.dtype for key, value in tensors.items() if value.is_floating_point()}
        assert floating and set(floating.values()) == {torch.float32}, checkpoint
        # The other tensors are BatchNorm's batch counters; the metadata is plain values.
        assert all(value.dtype == torch.int64 for value in tensors.values() if not value.is_floating_point())
        metadata = [value for key, value in content.items() if key not in tensors]
        assert all(value is None or isinstance(value, (bool, int, float, str)) for value in metadata)
    assert load_checkpoint(first / VICTIM_CKPT)["heads"], "the SimCLR victim's projection head is stored"

    # The dump as stored (HDF5 dataset types) and as read.
    with h5py.File(first / DUMP, "r", locking=False) as f:
        stored = {name: f[name].dtype for name in f}
    assert stored == {"representation": np.float32, "projection": np.float32, "index": np.int64}
    dump = read_dump(first / DUMP)
    assert dump.representation.dtype == dump.projection.dtype == torch.float32

    # The probe record: JSON numbers (Python floats and ints), no tensors or strings
    # standing in for numbers.
    record = json.loads((first / PROBE).read_text())
    for key in ("accuracy", "train_accuracy", "cka", "cosine", "train_loss", "l2"):
        assert type(record[key]) is float, key
    numbers = [value for _, value in leaves(record) if isinstance(value, (int, float)) and not isinstance(value, bool)]
    assert len(numbers) > 20 and all(np.isfinite(numbers))

    config = cfg.read_config_file(bf16_config)
    cfg.check_schema(config)
    cfg.fill_defaults(config)
    query_set = config["query_sets"][QUERY_SET]
    answers = {}
    with torch_state_restored():
        for precision in ("bf16", "fp32"):
            device = configure_torch(config["threads"]["inference"], precision, "cpu")
            answers[precision], *_ = answer_query_set(
                first / VICTIM_CKPT, query_set, first / "data" / "synthetic", device=device
            )
    assert answers["bf16"].dtype == torch.float32
    assert torch.equal(answers["bf16"], dump.representation)
    assert not torch.equal(answers["fp32"], dump.representation)
    # bf16 keeps 8 bits of mantissa: the answers move by a fraction of a percent.
    assert torch.allclose(answers["fp32"], answers["bf16"], rtol=0.03, atol=0.03 * float(answers["fp32"].abs().max()))


def test_bf16_probe_within_the_benchmark_tolerance(bf16_runs, bf16_config, monkeypatch, capsys):
    """benchmarks/probe_precision.py on the first run's folder (the victim and the copy,
    probe seed 0): fp32 and bf16 features of each encoder probe within its tolerance, and
    its bf16 probe of the copy is the pipeline's own record."""
    first, _ = bf16_runs
    benchmark = load_benchmark()
    monkeypatch.chdir(first)  # the config's data_root is relative
    with torch_state_restored():
        summary = benchmark.main(["--results", "results", "--downstream", DOWNSTREAM, "--configfile", str(bf16_config)])
    printed = capsys.readouterr().out
    assert summary["tolerance"] == benchmark.TOLERANCE == 1.0
    encoders = [path.removeprefix("results/") for path in (VICTIM_CKPT, STOLEN_CKPT)]
    assert [row["encoder"] for row in summary["rows"]] == encoders
    assert summary["passed"] and summary["max_gap"] <= benchmark.TOLERANCE + 1e-9, printed
    assert printed.count(" PASS;") == 2 and "PASS: max gap" in printed
    record = json.loads((first / PROBE).read_text())
    assert summary["rows"][1]["bf16"] == record["accuracy"]
