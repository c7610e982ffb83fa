"""ImageNet, prepared from a folder the user provides (never downloaded).

ImageNet's licence forbids redistribution, so the config names a directory in
torchvision's ImageFolder layout (``<path>/train/<class>/*.JPEG``,
``<path>/val/<class>/*.JPEG``). The data rule decodes a seeded subset of each split
once (resize the shorter side to 256/224 of ``image_size``, centre crop, the standard
ImageNet evaluation transform) into uint8 arrays, memory-mapped at load: 200,000
images at 224 px are 30 GB, more than a job should hold in RAM, and every later
stage indexes batches of the uint8 tensor as it does for the small datasets.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from .errors import DatasetUnavailableError
from .io import atomic_path, file_sha256

# Our split name -> the ImageFolder subdirectory (ImageNet's labelled test set is "val").
FOLDERS = {"train": "train", "test": "val"}


def imagenet_folder_problem(path: str | Path) -> str | None:
    """Why ``path`` is not an ImageFolder-layout ImageNet, or None when it looks like one."""
    path = Path(path)
    if not path.is_dir():
        return f"{path} does not exist"
    missing = [f"{path / sub}" for sub in FOLDERS.values() if not (path / sub).is_dir()]
    if missing:
        return f"{', '.join(missing)} missing (ImageFolder layout: <path>/train/<class>/*.JPEG, <path>/val/<class>/*.JPEG)"
    return None


def _subset(n: int, size: int | None, seed: int) -> np.ndarray:
    if size is None or size >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False))


def prepare_imagenet(root: Path, options: dict, workers: int | None = None) -> tuple[dict[str, str], str]:
    """Decode the seeded subsets into ``root`` with ``workers`` processes (default
    ``options["workers"]``, else 8); return (file sha256s, source)."""
    import torchvision.transforms as T
    from torch.utils.data import DataLoader, Subset
    from torchvision.datasets import ImageFolder

    problem = imagenet_folder_problem(options["path"])
    if problem:
        raise DatasetUnavailableError(f"datasets.imagenet.path: {problem}; ImageNet is never downloaded, prepare it by hand")
    size = int(options.get("image_size", 224))
    workers = int(options.get("workers", 8) if workers is None else workers)
    transform = T.Compose([T.Resize(round(size * 256 / 224)), T.CenterCrop(size), T.PILToTensor()])
    files = {}
    for split, folder in FOLDERS.items():
        dataset = ImageFolder(str(Path(options["path"]) / folder), transform=transform)
        keep = _subset(len(dataset), options.get(f"{split}_size"), int(options.get("seed", 0)) + (split == "test"))
        # Decoding JPEGs is the cost: worker processes keep the cores busy.
        loader = DataLoader(Subset(dataset, keep.tolist()), batch_size=256, num_workers=workers)
        images_path, labels_path = root / f"{split}_images.npy", root / f"{split}_labels.npy"
        with atomic_path(images_path) as tmp:
            images = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(len(keep), 3, size, size))
            labels = np.empty(len(keep), dtype=np.int64)
            start = 0
            for batch, batch_labels in loader:
                images[start : start + len(batch)] = batch.numpy()
                labels[start : start + len(batch)] = batch_labels.numpy()
                start += len(batch)
            images.flush()
            del images
        with atomic_path(labels_path) as tmp:
            with open(tmp, "wb") as f:
                np.save(f, labels)
        files[images_path.name] = file_sha256(images_path)
        files[labels_path.name] = file_sha256(labels_path)
    source = f"ImageFolder {options['path']} (seeded subsets, {size} px centre crops)"
    return files, source


def load_imagenet(root: Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The prepared split, images memory-mapped (read-only: nothing writes to them)."""
    images = np.load(root / f"{split}_images.npy", mmap_mode="r")
    labels = np.load(root / f"{split}_labels.npy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "non-writable array": read-only by design
        return torch.from_numpy(images), torch.from_numpy(labels)
