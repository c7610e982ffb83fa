"""Victim answers stored in HDF5: the API's responses, computed once.

One file per (victim, query set): ``representation`` (N x D float32), ``index`` (the
position of each query image in its pool's dataset split), optionally ``projection``
(N x K: the head's output, for the attack with access to the projection head), plus
attributes naming what made it. A views dump (the head-recreation attack's augmented
queries) holds ``representation`` as V x N x D, one slice per view. The attacker reads
only these files, never the victim model.

Reads open the file with HDF5 file locking off (``locking=False``): dumps are written
once, atomically, and only read afterwards, so concurrent readers on shared file
systems (NFS, Lustre) need no lock, and some of those file systems refuse one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
import torch

from .errors import DumpError
from .io import atomic_path, rebuild_hint

REQUIRED_ATTRS = ("victim", "query_set", "dim", "n")


@dataclass
class Dump:
    representation: torch.Tensor  # (N, D) float32, or (V, N, D) for a views dump
    index: np.ndarray  # (N,) int64, positions in the dataset split
    meta: dict
    projection: torch.Tensor | None = None  # (N, K), when the API returns the head's output
    # A defended dump's per-query record (same leading shape as the answers, without D):
    # ``flagged`` (answered with noise by the duplicate detector), ``duplicate`` (truth),
    # ``score`` (the detector's similarity to the user's earlier queries); under B4B
    # ``account`` (which sybil sent it), ``coverage`` and ``sigma`` (its noise level).
    extra: dict = field(default_factory=dict)


EXTRA = ("flagged", "duplicate", "score", "account", "coverage", "sigma")


def write_dump(
    path: str | Path,
    representation: np.ndarray,
    index: np.ndarray,
    meta: dict,
    projection: np.ndarray | None = None,
    extra: dict | None = None,
) -> None:
    representation = np.asarray(representation, dtype=np.float32)
    index = np.asarray(index, dtype=np.int64)
    if representation.ndim not in (2, 3) or representation.shape[-2] != index.shape[0]:
        raise ValueError(f"representation {representation.shape} and index {index.shape} do not match")
    meta = {**meta, "dim": int(representation.shape[-1]), "n": int(index.shape[0])}
    if representation.ndim == 3:
        meta["n_views"] = int(representation.shape[0])
    if projection is not None:
        projection = np.asarray(projection, dtype=np.float32)
        if projection.shape[0] != index.shape[0]:
            raise ValueError(f"projection {projection.shape} and index {index.shape} do not match")
        meta["projection_dim"] = int(projection.shape[1])
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            # fletcher32: a checksum per chunk, so a flipped byte fails the read.
            f.create_dataset("representation", data=representation, fletcher32=True)
            f.create_dataset("index", data=index, fletcher32=True)
            if projection is not None:
                f.create_dataset("projection", data=projection, fletcher32=True)
            for name, values in (extra or {}).items():
                if name not in EXTRA or np.shape(values) != representation.shape[:-1]:
                    raise ValueError(f"extra array {name!r} {np.shape(values)}: expected one of {EXTRA} shaped {representation.shape[:-1]}")
                f.create_dataset(name, data=np.asarray(values), fletcher32=True)
            for key, value in meta.items():
                f.attrs[key] = json.dumps(value) if isinstance(value, (dict, list)) else value


def read_dump(path: str | Path, expect: dict | None = None) -> Dump:
    """Read a dump, checking its shapes and metadata (and ``expect``ed attributes)."""
    path = Path(path)
    if not path.exists():
        raise DumpError(f"victim dump {path} does not exist; build it: snakemake --cores all {path}")
    try:
        with h5py.File(path, "r", locking=False) as f:
            meta = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in f.attrs.items()}
            representation = f["representation"][()]
            index = f["index"][()]
            projection = f["projection"][()] if "projection" in f else None
            extra = {name: f[name][()] for name in EXTRA if name in f}
    except (OSError, KeyError) as err:
        raise DumpError(f"cannot read victim dump {path} (truncated or corrupt): {err}. {rebuild_hint(path)}") from err
    missing = [k for k in REQUIRED_ATTRS if k not in meta]
    if missing:
        raise DumpError(f"victim dump {path} lacks metadata {missing}")
    expected = (meta["n"], meta["dim"]) if "n_views" not in meta else (meta["n_views"], meta["n"], meta["dim"])
    consistent = representation.shape == expected and index.shape == (meta["n"],)
    if projection is not None:
        consistent = consistent and projection.shape == (meta["n"], meta.get("projection_dim"))
    consistent = consistent and all(v.shape == representation.shape[:-1] for v in extra.values())
    if not consistent:
        raise DumpError(
            f"victim dump {path} is inconsistent: representation {representation.shape}, index {index.shape}, "
            f"projection {None if projection is None else projection.shape}, metadata says {expected}"
        )
    if not np.isfinite(representation).all() or (projection is not None and not np.isfinite(projection).all()):
        raise DumpError(f"victim dump {path} holds non-finite values")
    for key, value in (expect or {}).items():
        if meta.get(key) != value:
            raise DumpError(f"victim dump {path} has {key}={meta.get(key)!r}, expected {value!r}")
    return Dump(
        torch.from_numpy(representation),
        index,
        meta,
        None if projection is None else torch.from_numpy(projection),
        {name: torch.from_numpy(values) for name, values in extra.items()},
    )
