"""GPU check: the pipeline's CUDA paths end to end, in minutes, with figures to report.

On one GPU, for each precision (fp32, bf16): trains the paper's SimCLR recipe
(configs/paper.yaml, on the CIFAR-stem ResNet18) on Fashion-MNIST for a few epochs,
dumps the victim's answers to a query set (HDF5, as the dump jobs do), extracts one
stolen copy from the dump (direct, SoftNN, the paper's extraction settings), and probes
the victim and the copy (the converged linear probe). Then the ImageNet victim's path
of configs/paper.yaml: a checkpoint in SimSiam's released layout (random weights, the
ResNet50 key names) written and imported as the import_victim job does, its answers
to Fashion-MNIST images resized to 224 px and repeated to RGB, a direct InfoNCE copy
(ResNet50 at 224 px) extracted for a few steps, and both probed. Then it runs each precision again
with the same seed and compares every number. It prints, per precision: victim
training images/s, dump and extraction images/s, probe accuracy of the victim and of
the stolen copy, peak GPU memory (torch.cuda.max_memory_allocated; n/a on the CPU), wall
time, and whether the rerun gave bitwise-identical numbers (else how far apart).

It needs no network and no dataset package: it reads Fashion-MNIST's four .gz files
(train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz,
t10k-labels-idx1-ubyte.gz; about 30 MB) from the folder given with --data. It imports
the package from this checkout (no install) and needs only torch, torchvision, h5py and
NumPy (no Snakemake, PyYAML or tqdm). --toy shrinks everything for a CPU smoke test
(tests/test_gpu_check.py).

Budget: the defaults are sized to end well under 8 minutes on one recent GPU. The
CIFAR-stem ResNet18 costs 3.3 GFLOP per 32 px image forward and backward (torch's
FlopCounterMode), so one run is about 0.75 PFLOP (victim: 20,000 images x 3 epochs x 2
views; extraction: 400 steps x 256 images; dump and probes: under 0.02); the ImageNet
path adds about 0.15 PFLOP (ResNet50 at 224 px, about 4.1 GFLOP forward and 12 forward
and backward per image: 40 steps x 256 images, 2,048 answers, 2 x 2,200 probe images).
Four runs (two precisions, each twice) are about 3.6 PFLOP: 180 s at a sustained
20 TFLOP/s (estimates, not measurements). --budget-s (default 450) skips any run after the first that would
end past it, judged by the longest run before it, and says so.

    python benchmarks/gpu_check.py --data /path/to/fashion-mnist [--device cuda]
        [--precision fp32 bf16] [--epochs 3] [--train-size 20000] [--queries 5000]
        [--steps 400] [--out gpu_check.json] [--toy]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import importlib.machinery
import json
import platform
import sys
import tempfile
import time
import types
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
# The one sys.path edit: this check runs from a bare checkout on a GPU machine where the
# package is not installed (only torch, torchvision, h5py and NumPy are).
sys.path.insert(0, str(ROOT / "src"))

try:  # the package's training loop draws a tqdm bar; the GPU machine may lack tqdm
    import tqdm  # noqa: F401
except ImportError:
    _stub = types.ModuleType("tqdm")
    _stub.__spec__ = importlib.machinery.ModuleSpec("tqdm", None)  # torch._dynamo looks modules up by spec
    _stub.tqdm = lambda iterable=None, *args, **kwargs: iterable
    sys.modules["tqdm"] = _stub

from sslsteal.backbones import build_encoder, import_encoder, representations  # noqa: E402
from sslsteal.dumps import read_dump, write_dump  # noqa: E402
from sslsteal.extraction import steal  # noqa: E402
from sslsteal.preprocessing import IMAGENET_NORMALISATION, model_input  # noqa: E402
from sslsteal.probe import linear_probe, per_class_subset  # noqa: E402
from sslsteal.queries import images_sha256  # noqa: E402
from sslsteal.runtime import configure_torch, seed_everything  # noqa: E402
from sslsteal.victim import train_victim  # noqa: E402

# configs/paper.yaml, victims.simclr_cifar10.recipe (the paper's SimCLR; epochs and
# batch size from the command line). tests/test_gpu_check.py checks it against the file.
PAPER_RECIPE = {
    "epochs": 200,
    "batch_size": 256,
    "lr": 0.0003,
    "weight_decay": 0.0001,
    "temperature": 0.07,
    "projection_dim": 128,
    "augmentation": {
        "crop_scale": [0.08, 1.0],
        "flip_p": 0.5,
        "brightness": 0.8,
        "contrast": 0.8,
        "saturation": 0.8,
        "jitter_p": 0.8,
        "grayscale_p": 0.2,
    },
}
# configs/paper.yaml, extraction: the paper's CIFAR10 cell (direct SoftNN) and its settings.
PAPER_EXTRACTION = {"loss": "softnn", "lr": 0.001, "batch_size": 256, "temperature": 100.0, "weight_decay": 0.0}
# configs/paper.yaml, probe.
PAPER_PROBE = {
    "l2_grid": [
        1.0e-6, 2.2e-6, 4.6e-6, 1.0e-5, 2.2e-5, 4.6e-5, 1.0e-4, 2.2e-4,
        4.6e-4, 1.0e-3, 2.2e-3, 4.6e-3, 1.0e-2, 2.2e-2, 4.6e-2, 1.0e-1,
    ],
    "folds": 5,
}

FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
# Sizes: the GPU check's defaults, and the CPU smoke test's (--toy). A flag given on the
# command line overrides either.
# configs/paper.yaml, the ImageNet cell: direct InfoNCE, temperature 0.1, batch 256.
IMAGENET_EXTRACTION = {"loss": "infonce", "lr": 0.0003, "temperature": 0.1, "weight_decay": 0.0}
SIZES = {
    "default": dict(image_size=32, train_size=20000, epochs=3, batch_size=256, queries=5000, steps=400,
                    extraction_batch_size=PAPER_EXTRACTION["batch_size"], probe_per_class=100, probe_test=2000,
                    imagenet_image_size=224, imagenet_queries=2048, imagenet_steps=40, imagenet_batch_size=256,
                    imagenet_probe_per_class=20),
    "toy": dict(image_size=16, train_size=64, epochs=1, batch_size=32, queries=64, steps=2,
                extraction_batch_size=32, probe_per_class=10, probe_test=100,
                imagenet_image_size=64, imagenet_queries=16, imagenet_steps=2, imagenet_batch_size=8,
                imagenet_probe_per_class=5),
}


def probe_protocol(args: argparse.Namespace) -> dict:
    """The paper config's probe; at toy size three strong penalties (on a few dozen
    images every weak penalty separates the classes, and L-BFGS then runs to its
    iteration cap: minutes on the CPU, for nothing the smoke test checks)."""
    return {**PAPER_PROBE, "l2_grid": [0.1, 1.0, 10.0]} if args.toy else PAPER_PROBE


def read_idx(path: Path) -> np.ndarray:
    """One idx file (gzip), the format Fashion-MNIST and MNIST ship in: a magic number
    whose last byte is the number of dimensions (uint8 data: 0x08 third byte), the
    dimensions as big-endian int32, then the data."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    zero, dtype, ndim = data[0:2], data[2], data[3]
    if zero != b"\x00\x00" or dtype != 0x08:
        raise ValueError(f"{path} is not an idx file of unsigned bytes")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    array = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if array.size != int(np.prod(shape)):
        raise ValueError(f"{path}: {array.size} bytes of data for shape {shape}")
    return array.reshape(shape)


def load_fashion_mnist(folder: Path, image_size: int) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """{split: (uint8 images N x 1 x S x S, int64 labels)}, resized once to ``image_size``
    (bilinear, antialiased, rounded back to uint8: the victims' CIFAR size by default)."""
    splits = {}
    for split, (images_name, labels_name) in FILES.items():
        missing = [name for name in (images_name, labels_name) if not (folder / name).is_file()]
        if missing:
            raise SystemExit(f"--data {folder}: missing {', '.join(missing)} (Fashion-MNIST's .gz files)")
        images = torch.from_numpy(read_idx(folder / images_name).copy()).unsqueeze(1)
        labels = torch.from_numpy(read_idx(folder / labels_name).astype(np.int64))
        if images.shape[-1] != image_size:
            resized = torch.nn.functional.interpolate(
                images.float(), size=(image_size, image_size), mode="bilinear", antialias=True
            )
            images = resized.round().clamp(0, 255).to(torch.uint8)
        splits[split] = (images.contiguous(), labels)
    return splits


def sha256(tensor: torch.Tensor) -> str:
    return hashlib.sha256(tensor.detach().cpu().contiguous().numpy().tobytes()).hexdigest()


def synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def steady_images_per_second(history: list[dict], batch_size: int) -> float:
    """Images per second over the epochs after the first (which pays for start-up:
    cuDNN's choices, allocations), or of the only epoch."""
    rows = [row for row in history if row.get("phase", "steal") != "recreate_head"]
    counted = rows[1:] if len(rows) > 1 else rows
    seconds = sum(row["seconds"] for row in counted)
    images = sum(row["images_per_second"] * row["seconds"] for row in counted)
    return round(images / seconds, 1) if seconds > 0 else float("nan")


def one_run(data: dict, precision: str, args: argparse.Namespace, workdir: Path) -> tuple[dict, dict]:
    """Victim, dump, extraction, probes at one precision; returns (figures, numbers to compare)."""
    started = time.perf_counter()
    device = configure_torch(args.threads, precision, args.device)
    generator = seed_everything(args.seed)
    train_images, train_labels = data["train"]
    test_images, test_labels = data["test"]
    backbone = {"name": args.backbone}

    # 1. Victim: SimCLR with the paper's recipe, on the first train images.
    recipe = {**PAPER_RECIPE, "epochs": args.epochs, "batch_size": args.batch_size}
    victim_images = train_images[: args.train_size]
    t = time.perf_counter()
    encoder, heads, victim_log = train_victim("simclr", victim_images, backbone, recipe, generator, device=device)
    synchronise(device)
    victim_seconds = time.perf_counter() - t

    # 2. Dump: the API's answers (representations, and the head's projections) to the
    # query set, written to HDF5 and read back as the extraction job reads them.
    queries = test_images[: args.queries]
    t = time.perf_counter()
    answers = representations(encoder, queries, device=device)
    with torch.no_grad():
        projection = heads["projector"].eval()(answers.to(device)).float().cpu()
    synchronise(device)
    dump_seconds = time.perf_counter() - t
    dump_path = workdir / f"answers_{precision}.h5"
    meta = {"victim": "gpu_check", "query_set": "fashion_mnist_test", "victim_in_channels": 1,
            "victim_image_size": args.image_size, "queries_sha256": images_sha256(queries)}
    write_dump(dump_path, answers.numpy(), np.arange(len(queries)), meta, projection=projection.numpy())
    dump = read_dump(dump_path, expect={"queries_sha256": images_sha256(queries)})

    # 3. Extraction: one direct SoftNN copy of the victim's architecture from the dump.
    t = time.perf_counter()
    stolen, steal_log, accounting = steal(
        "direct", queries, dump, len(queries), loss=PAPER_EXTRACTION["loss"],
        loss_options={"temperature": PAPER_EXTRACTION["temperature"]}, approach_options={}, backbone=backbone,
        steps=args.steps, batch_size=args.extraction_batch_size, lr=PAPER_EXTRACTION["lr"],
        weight_decay=PAPER_EXTRACTION["weight_decay"], generator=generator, device=device,
    )
    synchronise(device)
    extraction_seconds = time.perf_counter() - t

    # 4. Probes: labelled train images per class, the last test images (never queried).
    t = time.perf_counter()
    labelled = torch.from_numpy(per_class_subset(train_labels, args.probe_per_class, args.seed))
    probe_train, probe_train_y = train_images[labelled], train_labels[labelled]
    probe_test, probe_test_y = test_images[-args.probe_test :], test_labels[-args.probe_test :]
    probes, features = {}, {}
    for name, model in (("victim", encoder), ("stolen", stolen)):
        train_x = representations(model, probe_train, device=device)
        test_x = representations(model, probe_test, device=device)
        features[name] = test_x
        probes[name] = linear_probe(train_x, probe_train_y, test_x, probe_test_y, seed=args.seed, **probe_protocol(args))
    probe_seconds = time.perf_counter() - t
    synchronise(device)

    imagenet, imagenet_numbers = imagenet_path(data, args, workdir, generator, device)

    peak = round(torch.cuda.max_memory_allocated(device) / 2**20, 1) if device.type == "cuda" else None
    figures = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({args.threads} threads)",
        "victim_images_per_second": steady_images_per_second(victim_log, args.batch_size),
        "victim_seconds": round(victim_seconds, 2),
        "dump_images_per_second": round(len(queries) / dump_seconds, 1) if dump_seconds > 0 else None,
        "extraction_images_per_second": steady_images_per_second(steal_log, args.extraction_batch_size),
        "extraction_seconds": round(extraction_seconds, 2),
        "probe_seconds": round(probe_seconds, 2),
        "victim_accuracy": probes["victim"]["accuracy"],
        "stolen_accuracy": probes["stolen"]["accuracy"],
        "peak_gpu_memory_mib": peak,
        "wall_seconds": round(time.perf_counter() - started, 2),
        "victim_log": victim_log,
        "extraction_log": steal_log,
        "extraction": accounting,
        "imagenet": imagenet,
    }
    numbers = {
        **imagenet_numbers,
        "victim_losses": [row["loss"] for row in victim_log],
        "victim_weights_sha256": sha256(torch.cat([p.detach().flatten().cpu() for p in encoder.parameters()])),
        "answers": answers,
        "answers_sha256": sha256(answers),
        "stolen_losses": [row["loss"] for row in steal_log],
        "stolen_features": features["stolen"],
        "victim_accuracy": probes["victim"]["accuracy"],
        "stolen_accuracy": probes["stolen"]["accuracy"],
        "victim_correct": probes["victim"]["correct"],
        "stolen_correct": probes["stolen"]["correct"],
    }
    del encoder, heads, stolen
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return figures, numbers


def simsiam_format_checkpoint(path: Path, seed: int) -> None:
    """Random ResNet50 weights saved in facebookresearch/simsiam's released layout
    (``state_dict`` of ``module.encoder.*``, the projector in ``fc``, the predictor)."""
    torch.manual_seed(seed)
    source = build_encoder({"name": "resnet50_imagenet"}, 3, 224, IMAGENET_NORMALISATION)
    state = {f"module.encoder.{k}": v for k, v in source.net.state_dict().items()}
    state["module.encoder.fc.0.weight"] = torch.randn(2048, 2048)
    state["module.predictor.0.weight"] = torch.randn(512, 2048)
    torch.save({"epoch": 100, "arch": "resnet50", "state_dict": state, "optimizer": {}}, path)


def imagenet_path(data: dict, args: argparse.Namespace, workdir: Path, generator, device) -> tuple[dict, dict]:
    """The ImageNet victim's path: import a SimSiam-format checkpoint, answer queries at
    ImageNet size, extract a ResNet50 copy, probe both; returns (figures, numbers)."""
    size = args.imagenet_image_size
    path = workdir / "checkpoint_0099.pth.tar"
    simsiam_format_checkpoint(path, args.seed)
    t = time.perf_counter()
    victim = import_encoder(path, "simsiam_imagenet", {"name": "resnet50_imagenet"}, 3, size)
    import_seconds = time.perf_counter() - t
    train_images, train_labels = data["train"]
    test_images, test_labels = data["test"]
    # Fashion-MNIST (stored at --image-size) to the victim's input: resized, grey to RGB,
    # back to uint8 as the dump jobs hand images over.
    def to_input(images):
        return (model_input(images, size) * 255).round().clamp(0, 255).to(torch.uint8).expand(-1, 3, -1, -1).contiguous()

    queries = to_input(train_images[-args.imagenet_queries :])
    t = time.perf_counter()
    answers = representations(victim, queries, device=device)
    synchronise(device)
    dump_seconds = time.perf_counter() - t
    dump_path = workdir / "answers_imagenet.h5"
    meta = {"victim": "gpu_check_simsiam", "query_set": "fashion_mnist_train", "victim_in_channels": 3,
            "victim_image_size": size, "queries_sha256": images_sha256(queries)}
    write_dump(dump_path, answers.numpy(), np.arange(len(queries)), meta)
    dump = read_dump(dump_path, expect={"queries_sha256": images_sha256(queries)})
    t = time.perf_counter()
    stolen, steal_log, _ = steal(
        "direct", queries, dump, len(queries), loss=IMAGENET_EXTRACTION["loss"],
        loss_options={"temperature": IMAGENET_EXTRACTION["temperature"]}, approach_options={},
        backbone={"name": "resnet50_imagenet"}, steps=args.imagenet_steps, batch_size=args.imagenet_batch_size,
        lr=IMAGENET_EXTRACTION["lr"], weight_decay=IMAGENET_EXTRACTION["weight_decay"], generator=generator, device=device,
    )
    synchronise(device)
    extraction_seconds = time.perf_counter() - t
    labelled = torch.from_numpy(per_class_subset(train_labels[: -args.imagenet_queries], args.imagenet_probe_per_class, args.seed))
    probe_train, probe_train_y = to_input(train_images[labelled]), train_labels[labelled]
    probe_test, probe_test_y = to_input(test_images[-args.probe_test :]), test_labels[-args.probe_test :]
    t = time.perf_counter()
    accuracy = {}
    for name, model in (("victim", victim), ("stolen", stolen)):
        train_x = representations(model, probe_train, device=device)
        test_x = representations(model, probe_test, device=device)
        accuracy[name] = linear_probe(train_x, probe_train_y, test_x, probe_test_y, seed=args.seed, **probe_protocol(args))["accuracy"]
    probe_seconds = time.perf_counter() - t
    figures = {
        "image_size": size,
        "import_seconds": round(import_seconds, 2),
        "dump_images_per_second": round(len(queries) / dump_seconds, 1) if dump_seconds > 0 else None,
        "extraction_images_per_second": steady_images_per_second(steal_log, args.imagenet_batch_size),
        "extraction_seconds": round(extraction_seconds, 2),
        "probe_seconds": round(probe_seconds, 2),
        "victim_accuracy": accuracy["victim"],
        "stolen_accuracy": accuracy["stolen"],
    }
    numbers = {
        "imagenet_answers_sha256": sha256(answers),
        "imagenet_stolen_losses": [row["loss"] for row in steal_log],
        "imagenet_stolen_accuracy": accuracy["stolen"],
    }
    return figures, numbers


def compare(first: dict, second: dict) -> dict:
    """Bitwise equality of every number of two runs, and how far apart they are."""
    identical = all(
        torch.equal(first[key], second[key]) if isinstance(first[key], torch.Tensor) else first[key] == second[key]
        for key in first
    )

    def largest_gap(key: str) -> float:
        return max(abs(a - b) for a, b in zip(first[key], second[key]))

    return {
        "identical": identical,
        "max_abs_difference_answers": (first["answers"] - second["answers"]).abs().max().item(),
        "max_abs_difference_victim_loss": largest_gap("victim_losses"),
        "max_abs_difference_stolen_loss": largest_gap("stolen_losses"),
        "max_abs_difference_stolen_features": (first["stolen_features"] - second["stolen_features"]).abs().max().item(),
        "victim_accuracy_difference": second["victim_accuracy"] - first["victim_accuracy"],
        "stolen_accuracy_difference": second["stolen_accuracy"] - first["stolen_accuracy"],
        "same_victim_weights": first["victim_weights_sha256"] == second["victim_weights_sha256"],
        "same_answers": first["answers_sha256"] == second["answers_sha256"],
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="folder holding Fashion-MNIST's four .gz files")
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu", "auto"])
    parser.add_argument("--precision", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    parser.add_argument("--toy", action="store_true", help="tiny sizes for a CPU smoke test")
    parser.add_argument("--epochs", type=int, help="victim epochs (default 3)")
    parser.add_argument("--train-size", type=int, help="victim training images (default 20000)")
    parser.add_argument("--batch-size", type=int, help="victim batch (default 256, the paper's)")
    parser.add_argument("--queries", type=int, help="query images, the first test images (default 5000)")
    parser.add_argument("--steps", type=int, help="extraction optimiser steps (default 400)")
    parser.add_argument("--extraction-batch-size", type=int, help="extraction batch (default 256, the paper's)")
    parser.add_argument("--image-size", type=int, help="images resized to this many pixels (default 32, CIFAR's)")
    parser.add_argument("--probe-per-class", type=int, help="labelled probe images per class (default 100)")
    parser.add_argument("--probe-test", type=int, help="probe test images, the last test images (default 2000)")
    parser.add_argument("--backbone", default="resnet18", choices=["resnet18", "resnet34"])
    parser.add_argument("--imagenet-image-size", type=int, help="the ImageNet path's input side (default 224)")
    parser.add_argument("--imagenet-queries", type=int, help="the ImageNet path's queries (default 2048)")
    parser.add_argument("--imagenet-steps", type=int, help="the ImageNet path's extraction steps (default 40)")
    parser.add_argument("--imagenet-batch-size", type=int, help="the ImageNet path's extraction batch (default 256)")
    parser.add_argument("--imagenet-probe-per-class", type=int, help="the ImageNet path's probe images per class (default 20)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="CPU threads")
    parser.add_argument("--no-rerun", action="store_true", help="skip the second run of each precision")
    parser.add_argument("--budget-s", type=float, default=450.0,
                        help="skip a run that would end past this many seconds (estimated from the runs before it)")
    parser.add_argument("--out", type=Path, help="write the figures to this JSON file")
    args = parser.parse_args(argv)
    for key, value in SIZES["toy" if args.toy else "default"].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.queries + args.probe_test > 10000:
        parser.error("--queries plus --probe-test exceed Fashion-MNIST's 10,000 test images")
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("gpu_check: torch sees no CUDA GPU; run it on a GPU machine, or pass --device cpu (with --toy)")
    started = time.perf_counter()
    data = load_fashion_mnist(args.data, args.image_size)
    sizes = {key: getattr(args, key) for key in SIZES["default"]}
    print(f"GPU check: torch {torch.__version__} (CUDA {torch.version.cuda}), Python {platform.python_version()}, "
          f"device {args.device}, {args.backbone}, precisions {' '.join(args.precision)}, sizes {sizes}", flush=True)
    runs: dict[str, dict] = {}
    numbers: dict[str, list[dict]] = {}
    plan = [(precision, 0) for precision in args.precision]  # every precision once, then the reruns
    if not args.no_rerun:
        plan += [(precision, 1) for precision in args.precision]
    longest = 0.0
    with tempfile.TemporaryDirectory() as folder:
        for precision, attempt in plan:
            elapsed = time.perf_counter() - started
            if longest and elapsed + longest > args.budget_s:
                print(f"{precision} {'rerun' if attempt else 'run'} skipped: {elapsed:.0f} s spent, a run takes up to "
                      f"{longest:.0f} s, budget {args.budget_s:.0f} s", flush=True)
                continue
            print(f"--- {precision}, {'rerun' if attempt else 'run'} (seed {args.seed})", flush=True)
            figures, compared = one_run(data, precision, args, Path(folder))
            longest = max(longest, figures["wall_seconds"])
            numbers.setdefault(precision, []).append(compared)
            if attempt == 0:
                runs[precision] = figures
            else:
                runs[precision]["rerun_wall_seconds"] = figures["wall_seconds"]
    for precision, figures in runs.items():
        figures["rerun"] = compare(*numbers[precision]) if len(numbers[precision]) == 2 else None
    skipped = [precision for precision in args.precision if precision not in runs]
    result = {
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "python": platform.python_version(),
        "device": args.device,
        "backbone": args.backbone,
        "sizes": sizes,
        "seed": args.seed,
        "recipe": PAPER_RECIPE,
        "extraction": PAPER_EXTRACTION,
        "runs": runs,
        "skipped_precisions": skipped,
        "total_seconds": round(time.perf_counter() - started, 1),
    }
    print_summary(result)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"figures written to {args.out}")
    return result


def print_summary(result: dict) -> None:
    print(f"\nGPU check summary ({result['backbone']}, torch {result['torch']}, total {result['total_seconds']} s):")
    for precision, r in result["runs"].items():
        peak = "n/a" if r["peak_gpu_memory_mib"] is None else f"{r['peak_gpu_memory_mib']:.0f} MiB"
        rerun = r["rerun"]
        if rerun is None:
            same = "not rerun (--no-rerun, or the time budget)"
        elif rerun["identical"]:
            same = "yes, bitwise identical"
        else:
            same = (
                f"no: answers differ by up to {rerun['max_abs_difference_answers']:.3g}, victim loss by "
                f"{rerun['max_abs_difference_victim_loss']:.3g}, stolen loss by "
                f"{rerun['max_abs_difference_stolen_loss']:.3g}, accuracy by "
                f"{rerun['victim_accuracy_difference']:+.4f} (victim) / "
                f"{rerun['stolen_accuracy_difference']:+.4f} (stolen)"
            )
        print(
            f"{precision}: {r['device']}\n"
            f"  victim training {r['victim_images_per_second']} images/s, two views each ({r['victim_seconds']} s)\n"
            f"  dump {r['dump_images_per_second']} images/s, extraction {r['extraction_images_per_second']} images/s "
            f"({r['extraction_seconds']} s)\n"
            f"  probe accuracy: victim {r['victim_accuracy']:.4f}, stolen copy {r['stolen_accuracy']:.4f} "
            f"(probe {r['probe_seconds']} s)\n"
            f"  ImageNet path (imported SimSiam ResNet50 at {r['imagenet']['image_size']} px): import "
            f"{r['imagenet']['import_seconds']} s, dump {r['imagenet']['dump_images_per_second']} images/s, extraction "
            f"{r['imagenet']['extraction_images_per_second']} images/s ({r['imagenet']['extraction_seconds']} s), probe "
            f"accuracy victim {r['imagenet']['victim_accuracy']:.4f}, stolen {r['imagenet']['stolen_accuracy']:.4f}\n"
            f"  peak GPU memory {peak}, wall time {r['wall_seconds']} s\n"
            f"  rerun with the same seed gives the same numbers: {same}"
        )
    for precision in result["skipped_precisions"]:
        print(f"{precision}: skipped (the time budget)")


if __name__ == "__main__":
    main()
