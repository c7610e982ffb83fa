"""Atomic outputs, JSON and checkpoints.

Every file the workflow produces is written to a temporary name in the same folder and
renamed into place, so a killed job never leaves a file that looks complete.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Iterator

from .errors import CheckpointError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` on success only."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_json(path: str | os.PathLike, obj: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    with open(path) as f:
        return json.load(f)


def config_hash(cfg: Any) -> str:
    """A stable short hash of a JSON-able config (key order does not matter)."""
    blob = json.dumps(cfg, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def save_checkpoint(path: str | os.PathLike, **content: Any) -> None:
    """Save plain tensors and JSON-like metadata only, so ``weights_only=True`` loads it.

    Saved through a file object: torch then names the zip archive "archive" instead of
    after the (random) temporary file, so the same content gives the same bytes, and a
    rebuilt checkpoint leaves its consumers up to date (Snakemake compares checksums).
    """
    with atomic_path(path) as tmp:
        import torch  # here, not at the top: the table jobs need no torch (1.7 s to import)

        with open(tmp, "wb") as f:
            torch.save(content, f)


def load_checkpoint(path: str | os.PathLike, external: bool = False) -> dict:
    """Load a checkpoint with ``weights_only=True``: never execute pickled code.

    ``external``: the user's own file (an imported victim), not a workflow output, so a
    bad one is fetched again rather than rebuilt."""
    path = Path(path)
    hint = EXTERNAL_HINT if external else rebuild_hint(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist")
    if path.is_dir():
        raise CheckpointError(f"checkpoint {path} is a folder, not a checkpoint file")
    # torch.load does not check the zip members' CRC32s: a flipped byte in a weight
    # would load silently. zipfile does check them (about 1 s per GB).
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as archive:
                bad = archive.testzip()
        except (zipfile.BadZipFile, OSError, EOFError) as err:
            bad = f"unreadable archive ({err})"
        if bad is not None:
            raise CheckpointError(f"checkpoint {path} is corrupt: {bad} fails its CRC32 check. {hint}")
    try:
        import torch

        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises UnpicklingError, RuntimeError, EOFError...
        raise CheckpointError(
            f"cannot load checkpoint {path} safely (weights_only=True): {err}. "
            f"It may be truncated, corrupt, or contain arbitrary pickled objects. {hint}"
        ) from err


# A user's checkpoint is not rebuilt by the workflow: it is downloaded again.
EXTERNAL_HINT = "It is an imported checkpoint: download it again (docs/paper-scale.md) and check its size and checksum."


def rebuild_hint(path: str | os.PathLike) -> str:
    """How to replace one bad output without redoing what was built from it.

    The rebuilt file is byte-identical (same config and seed), so Snakemake's input
    checksums (profiles/default raises their size limit) keep its consumers up to date.
    """
    return f"Delete it and rebuild only it: snakemake --cores all {path}"
