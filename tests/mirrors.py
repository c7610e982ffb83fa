"""Generated stand-ins for the paper's data, in the formats users download: mirrors of
torchvision's datasets holding its own file names (archives, .mat and IDX files), with
an md5sum-format ``MD5SUMS`` for the config's ``checksums`` option (their bytes are not
torchvision's); an ImageNet folder in ImageFolder layout; a checkpoint in the released
SimSiam layout. Labels are balanced (image i has class i mod classes) so every class has
its share of a split; pixels are seeded noise."""

from __future__ import annotations

import gzip
import hashlib
import io
import pickle
import tarfile
from pathlib import Path

import numpy as np
import torch

from sslsteal.backbones import build_encoder
from sslsteal.preprocessing import IMAGENET_NORMALISATION


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def tar_gz(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def write_mirror(folder: Path, files: dict[str, bytes], checksummed: dict[str, bytes] | None = None) -> Path:
    """Write ``files`` under ``folder`` and an ``MD5SUMS`` of ``checksummed`` (default
    ``files``): what ``md5sum`` would print for them, names relative to the mirror."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(content)
    lines = [f"{md5(content)}  {name}" for name, content in (checksummed or files).items()]
    (folder / "MD5SUMS").write_text("\n".join(lines) + "\n")
    return folder / "MD5SUMS"


def labels_for(n: int, classes: int) -> np.ndarray:
    return np.arange(n) % classes


def cifar_mirror(
    folder: Path, sizes: dict[str, int], classes: int = 10, seed: int = 0, labelled_classes: int | None = None
) -> Path:
    """``cifar-10-python.tar.gz`` (``classes=100``: CIFAR100's) holding pickled batches;
    return the MD5SUMS path. CIFAR10's train split is spread over its five batch files.
    ``labelled_classes`` uses only that many of the classes (a cheaper probe)."""
    rng = np.random.default_rng(seed)

    def batch(n: int, key: str) -> bytes:
        data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        return pickle.dumps({"data": data, key: labels_for(n, labelled_classes or classes).tolist()})

    if classes == 10:
        base, archive = "cifar-10-batches-py", "cifar-10-python.tar.gz"
        per_batch = np.array_split(np.arange(sizes["train"]), 5)
        members = {}
        rng_labels = labels_for(sizes["train"], classes)
        for i, part in enumerate(per_batch, 1):
            data = rng.integers(0, 256, (len(part), 3072), dtype=np.uint8)
            members[f"data_batch_{i}"] = pickle.dumps({"data": data, "labels": rng_labels[part].tolist()})
        members["test_batch"] = batch(sizes["test"], "labels")
        members["batches.meta"] = pickle.dumps({"label_names": [f"c{i}" for i in range(classes)]})
    else:
        base, archive = "cifar-100-python", "cifar-100-python.tar.gz"
        members = {
            "train": batch(sizes["train"], "fine_labels"),
            "test": batch(sizes["test"], "fine_labels"),
            "meta": pickle.dumps({"fine_label_names": [f"c{i}" for i in range(classes)]}),
        }
    members = {f"{base}/{name}": content for name, content in members.items()}
    packed = tar_gz(members)
    return write_mirror(folder, {archive: packed}, {archive: packed, **members})


def svhn_mirror(folder: Path, sizes: dict[str, int], seed: int = 0) -> Path:
    """``train_32x32.mat`` and ``test_32x32.mat`` (X: 32x32x3xN, y: digit 0 stored as 10)."""
    import scipy.io

    rng = np.random.default_rng(seed)
    files = {}
    for split, n in sizes.items():
        buffer = io.BytesIO()
        y = labels_for(n, 10)
        scipy.io.savemat(buffer, {"X": rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8), "y": np.where(y == 0, 10, y)[:, None]})
        files[f"{split}_32x32.mat"] = buffer.getvalue()
    return write_mirror(folder, files)


def stl10_mirror(folder: Path, sizes: dict[str, int], seed: int = 0) -> Path:
    """``stl10_binary.tar.gz``: 96 px images as torchvision reads them, 1-based labels,
    the unlabeled split without labels."""
    rng = np.random.default_rng(seed)
    members = {}
    for split, n in sizes.items():
        members[f"{split}_X.bin"] = rng.integers(0, 256, (n, 3, 96, 96), dtype=np.uint8).tobytes()
        if split != "unlabeled":
            members[f"{split}_y.bin"] = (labels_for(n, 10) + 1).astype(np.uint8).tobytes()
    members["class_names.txt"] = b"\n".join(f"c{i}".encode() for i in range(10))
    members = {f"stl10_binary/{name}": content for name, content in members.items()}
    packed = tar_gz(members)
    return write_mirror(folder, {"stl10_binary.tar.gz": packed}, {"stl10_binary.tar.gz": packed, **members})


def idx(array: np.ndarray) -> bytes:
    """An unsigned-byte IDX file (the MNIST format)."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def fashion_mnist_mirror(folder: Path, sizes: dict[str, int], seed: int = 0) -> Path:
    """torchvision's four ``.gz`` IDX files."""
    rng = np.random.default_rng(seed)
    files = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        n = sizes[split]
        files[f"{prefix}-images-idx3-ubyte.gz"] = gzip.compress(idx(rng.integers(0, 256, (n, 28, 28))), mtime=0)
        files[f"{prefix}-labels-idx1-ubyte.gz"] = gzip.compress(idx(labels_for(n, 10)), mtime=0)
    return write_mirror(folder, files)


def imagenet_folder(folder: Path, sizes: dict[str, int], classes: int = 2, side: int = 64, seed: int = 0) -> Path:
    """``train/<class>/*.JPEG`` and ``val/<class>/*.JPEG`` (ImageFolder layout)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for split, n in sizes.items():
        for i in range(n):
            path = folder / split / f"n{i % classes:08d}" / f"{split}_{i}.JPEG"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 256, (side, side + 8, 3), dtype=np.uint8)).save(path, format="JPEG")
    return folder


def simsiam_checkpoint(path: Path, backbone_name: str = "resnet50_imagenet", seed: int = 0) -> torch.nn.Module:
    """A checkpoint laid out like facebookresearch/simsiam's releases (``module.encoder.*``
    with its projector in ``fc``, ``module.predictor.*``), random weights; return the
    source encoder, which normalises its input as the imported one will (ImageNet's
    statistics)."""
    torch.manual_seed(seed)
    source = build_encoder({"name": backbone_name}, 3, 32, IMAGENET_NORMALISATION)
    state = {f"module.encoder.{k}": v for k, v in source.net.state_dict().items()}
    width = source.representation_dim
    state["module.encoder.fc.0.weight"] = torch.randn(2048, width)  # the projector, to be dropped
    state["module.predictor.0.weight"] = torch.randn(512, 2048)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"epoch": 100, "arch": "resnet50", "state_dict": state, "optimizer": {}}, path)
    return source
