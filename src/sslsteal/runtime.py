"""Seeding, threads and logging shared by every workflow script.

torch and NumPy are imported inside the functions that use them: the table and figure
jobs only need ``logged_to``, and importing torch costs 1.7 s per job.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import sys
from typing import TYPE_CHECKING, Iterator

if TYPE_CHECKING:
    import torch


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; return a torch generator for explicit sampling."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


PRECISIONS = {"fp32": None, "bf16": "bfloat16"}  # names of torch dtypes
_precision = {"dtype": None}


DEVICES = ("auto", "cpu", "cuda")


def select_device(requested: str = "auto") -> torch.device:
    """``auto``: CUDA when a GPU is visible, else the CPU; ``cpu`` or ``cuda`` force it
    (``cuda`` without a GPU is an error rather than a silent CPU run)."""
    import torch

    if requested not in DEVICES:
        raise ValueError(f"config error at device: unknown device {requested!r}; known: {', '.join(DEVICES)}")
    if requested == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("config error at device: 'cuda' requested but torch sees no CUDA GPU on this node")
    if requested == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda")


def configure_torch(threads: int, precision: str = "fp32", device: str = "auto") -> torch.device:
    """Fix the thread count (CPU results depend on it), the encoders' precision, and
    pick the device.

    ``precision="bf16"`` runs every encoder forward (and so its backward) under bfloat16
    autocast; encoder outputs, heads and losses stay float32. On CPUs with AVX512-BF16
    it makes the small CNN about 1.8x faster; results differ from fp32 runs but are
    still deterministic. Deterministic algorithms make two CPU runs with the same config
    and seed give the same numbers.
    """
    import torch

    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; known: {', '.join(PRECISIONS)}")
    _precision["dtype"] = None if PRECISIONS[precision] is None else getattr(torch, PRECISIONS[precision])
    torch.set_num_threads(max(1, int(threads)))
    torch.use_deterministic_algorithms(True, warn_only=True)
    chosen = select_device(device)
    if chosen.type == "cuda":
        # Deterministic cuBLAS needs this workspace setting (set before the first matmul).
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.cuda.reset_peak_memory_stats(chosen)
    return chosen


def to_device(images: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Move a uint8 batch to ``device`` before any float conversion (4x fewer bytes over
    PCIe than float32); on CUDA from pinned memory without blocking, so the copy
    overlaps the previous step's kernels. On the CPU it returns ``images`` unchanged,
    so CPU results stay bitwise what they were."""
    if device.type != "cuda":
        return images
    return images.pin_memory().to(device, non_blocking=True)


def device_stats(device: torch.device, images: int, seconds: float) -> dict:
    """Throughput and peak GPU memory of a job, for its log and its JSON/TSV outputs."""
    import torch

    stats = {
        "device": str(device),
        "images_per_second": round(images / seconds, 1) if seconds > 0 else None,
        "gpu_max_memory_mib": None,
    }
    if device.type == "cuda":
        stats["device"] = torch.cuda.get_device_name(device)
        stats["gpu_max_memory_mib"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    return stats


def autocast_dtype() -> torch.dtype | None:
    """The encoders' autocast dtype set by :func:`configure_torch` (None: float32)."""
    return _precision["dtype"]


@contextlib.contextmanager
def logged_to(log_path: str | None) -> Iterator[logging.Logger]:
    """Send stdout, stderr (tqdm bars, tracebacks) and a logger to the rule's log file."""
    logger = logging.getLogger("sslsteal")
    logger.setLevel(logging.INFO)
    if log_path is None:
        handler = logging.StreamHandler(sys.stderr)
        logger.addHandler(handler)
        try:
            yield logger
        finally:
            logger.removeHandler(handler)
        return
    os.makedirs(os.path.dirname(log_path) or ".", exist_ok=True)
    with open(log_path, "w", buffering=1) as log_file:
        handler = logging.StreamHandler(log_file)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        logger.addHandler(handler)
        old_out, old_err = sys.stdout, sys.stderr
        sys.stdout = sys.stderr = log_file
        try:
            yield logger
        except BaseException:
            logger.exception("job failed")
            raise
        finally:
            sys.stdout, sys.stderr = old_out, old_err
            logger.removeHandler(handler)
