"""Victim answers stored in HDF5: the API's responses, computed once.

One file per (victim, query set): ``representation`` (N x D float32) and ``index`` (the
position of each query image in its dataset split), plus attributes naming what made
it. The attacker reads only these files, never the victim model.

Reads open the file with HDF5 file locking off (``locking=False``): dumps are written
once, atomically, and only read afterwards, so concurrent readers on shared file
systems (NFS, Lustre) need no lock, and some of those file systems refuse one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import torch

from .io import atomic_path

REQUIRED_ATTRS = ("victim", "dim", "dataset", "split", "n")


class DumpError(RuntimeError):
    """A dump that is truncated, corrupt, or not what its path claims."""


@dataclass
class Dump:
    representation: torch.Tensor  # (N, D) float32
    index: np.ndarray  # (N,) int64, positions in the dataset split
    meta: dict


def write_dump(path: str | Path, representation: np.ndarray, index: np.ndarray, meta: dict) -> None:
    representation = np.asarray(representation, dtype=np.float32)
    index = np.asarray(index, dtype=np.int64)
    if representation.ndim != 2 or representation.shape[0] != index.shape[0]:
        raise ValueError(f"representation {representation.shape} and index {index.shape} do not match")
    meta = {**meta, "dim": int(representation.shape[1]), "n": int(representation.shape[0])}
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            f.create_dataset("representation", data=representation)
            f.create_dataset("index", data=index)
            for key, value in meta.items():
                f.attrs[key] = json.dumps(value) if isinstance(value, (dict, list)) else value


def read_dump(path: str | Path, expect: dict | None = None) -> Dump:
    """Read a dump, checking its shapes and metadata (and ``expect``ed attributes)."""
    path = Path(path)
    try:
        with h5py.File(path, "r", locking=False) as f:
            meta = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in f.attrs.items()}
            representation = f["representation"][()]
            index = f["index"][()]
    except (OSError, KeyError) as err:
        raise DumpError(f"cannot read victim dump {path}: {err}; delete it and rerun its rule") from err
    missing = [k for k in REQUIRED_ATTRS if k not in meta]
    if missing:
        raise DumpError(f"victim dump {path} lacks metadata {missing}")
    if representation.shape != (meta["n"], meta["dim"]) or index.shape != (meta["n"],):
        raise DumpError(
            f"victim dump {path} is inconsistent: representation {representation.shape}, index {index.shape}, "
            f"metadata says n={meta['n']} dim={meta['dim']}"
        )
    if not np.isfinite(representation).all():
        raise DumpError(f"victim dump {path} holds non-finite values")
    for key, value in (expect or {}).items():
        if meta.get(key) != value:
            raise DumpError(f"victim dump {path} has {key}={meta.get(key)!r}, expected {value!r}")
    return Dump(torch.from_numpy(representation), index, meta)
