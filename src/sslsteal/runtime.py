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


def configure_torch(threads: int, precision: str = "fp32") -> torch.device:
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
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


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
