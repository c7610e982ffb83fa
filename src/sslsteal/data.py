"""Datasets: preparation (the only code that downloads), loading, and index sets.

Every dataset is here: torchvision's (Fashion-MNIST, CIFAR10/100, SVHN, STL10), the
seeded synthetic set, scikit-learn's bundled digits, and ImageNet from a folder the user
provides. A dataset is prepared once into ``<root>`` by the workflow's data rule, which
writes ``<root>/prepared.json`` last; every consumer calls :func:`load_split` on that
root and never downloads. Images are returned as uint8 tensors (N, C, H, W) and int64
labels, so batches can be augmented and fed to a model without per-image Python work.
"""

from __future__ import annotations

import gzip
import hashlib
import re
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch

from .errors import DatasetUnavailableError
from .io import atomic_path, file_sha256, read_json, write_json
from .registry import DATASETS, IMAGENET_FOLDERS, SPLIT_SIZES, TORCHVISION_DATASETS, imagenet_folder_problem

# torchvision is imported only where a torchvision dataset is used: importing it costs
# about 1.3 s per job, most of the run time of a small job.
# How torchvision ships each dataset: Fashion-MNIST as .gz files, SVHN as one .mat file
# per split, CIFAR and STL10 as one archive holding the files of every split.
ARCHIVE_DATASETS = ("CIFAR10", "CIFAR100", "STL10")
FILE_DATASETS = ("SVHN",)


def torchvision_dataset(name: str) -> type:
    import torchvision.datasets

    return getattr(torchvision.datasets, TORCHVISION_DATASETS[name])


def check_integrity(path: Path, md5: str) -> bool:
    from torchvision.datasets.utils import check_integrity as torchvision_check

    return torchvision_check(str(path), md5)


# A re-packaged mirror (a lab's own copy, a generated test mirror) holds torchvision's
# file names with other bytes, so torchvision's MD5s reject it. The dataset's
# ``checksums`` option names a file in md5sum's format (``md5sum * > MD5SUMS`` in the
# mirror) whose MD5s replace torchvision's for the files it lists: the files are still
# verified, against checksums the user vouches for, and the manifest says which.
def read_checksums(path: str | Path) -> dict[str, str]:
    """{file name: MD5} from an md5sum-format file (``<md5>  <name>`` per line; names
    relative to the mirror, e.g. ``cifar-10-batches-py/data_batch_1``)."""
    path = Path(path)
    if not path.is_file():
        raise DatasetUnavailableError(f"checksums file {path} does not exist (the dataset's `checksums` option)")
    table = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        match = re.fullmatch(r"([0-9a-fA-F]{32}) [ *](.+)", line.strip())
        if not match:
            raise DatasetUnavailableError(f"{path} line {number} is not `<md5>  <file name>` (md5sum's format): {line!r}")
        table[match.group(2).removeprefix("./")] = match.group(1).lower()
    return table


def _md5_source(options: dict) -> dict[str, str]:
    return read_checksums(options["checksums"]) if options.get("checksums") else {}


def _expected(table: dict[str, str], name: str, torchvision_md5: str | None) -> str | None:
    """The MD5 a file must have: the user's checksums file's when it lists the file (by
    its path or its base name), else torchvision's."""
    return table.get(name, table.get(Path(name).name, torchvision_md5))


# scikit-learn's bundled handwritten digits (8x8 grey, 1,797 images; no download): a real
# out-of-distribution query set available offline. No official split: the last 300
# images are "test".
DIGITS_TEST = 300
MANIFEST = "prepared.json"


# --------------------------------------------------------------------------- synthetic
def make_synthetic(
    seed: int,
    n_train: int,
    n_test: int,
    image_size: int = 28,
    channels: int = 1,
    num_classes: int = 10,
    instance_detail: float = 0.0,
) -> dict[str, np.ndarray]:
    """Small labelled images with class structure a conv net can learn, from a seed.

    Each class has a prototype made of a few Gaussian blobs; an image is its class
    prototype shifted by up to 3 pixels, rescaled in contrast and corrupted by noise.
    With ``instance_detail`` > 0 each image also gets blobs of its own (that amplitude
    relative to the prototype's): without them the images of a class are one of 49
    shifts of its prototype plus noise, so a stream of different images holds
    near-duplicates and no image has anything an encoder could memorise. Drawn from a
    second generator, so 0 gives the same bytes as before the option existed.
    """
    rng = np.random.default_rng(seed)
    detail_rng = np.random.default_rng([seed, 1])
    grid = np.arange(image_size)
    yy, xx = np.meshgrid(grid, grid, indexing="ij")

    def gaussian(cy: float, cx: float, width: float) -> np.ndarray:
        return np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * width**2))
    prototypes = np.zeros((num_classes, channels, image_size, image_size))
    for c in range(num_classes):
        for _ in range(4):
            cy, cx = rng.uniform(4, image_size - 4, size=2)
            width = rng.uniform(1.5, 4.0)
            weight = rng.uniform(0.5, 1.0) * rng.choice([-1.0, 1.0])
            blob = weight * gaussian(cy, cx, width)
            prototypes[c] += blob * rng.uniform(0.5, 1.0, size=(channels, 1, 1))
    prototypes -= prototypes.min(axis=(1, 2, 3), keepdims=True)
    prototypes /= prototypes.max(axis=(1, 2, 3), keepdims=True)

    def own_blobs() -> np.ndarray:
        detail = np.zeros((channels, image_size, image_size))
        for _ in range(3):
            cy, cx = detail_rng.uniform(2, image_size - 2, size=2)
            width = detail_rng.uniform(1.0, 2.5)
            weight = detail_rng.uniform(0.5, 1.0) * detail_rng.choice([-1.0, 1.0])
            detail += weight * gaussian(cy, cx, width)
        return instance_detail * detail

    def sample(n: int) -> tuple[np.ndarray, np.ndarray]:
        labels = rng.permutation(np.arange(n) % num_classes)
        images = np.empty((n, channels, image_size, image_size), dtype=np.uint8)
        for i, label in enumerate(labels):
            shift = rng.integers(-3, 4, size=2)
            image = np.roll(prototypes[label], tuple(shift), axis=(1, 2))
            if instance_detail:
                image = image + own_blobs()
            image = image * rng.uniform(0.7, 1.3) + rng.normal(0, 0.12, size=image.shape)
            images[i] = np.clip(image * 255, 0, 255).astype(np.uint8)
        return images, labels.astype(np.int64)

    train_images, train_labels = sample(n_train)
    test_images, test_labels = sample(n_test)
    return {
        "train_images": train_images,
        "train_labels": train_labels,
        "test_images": test_images,
        "test_labels": test_labels,
    }


# --------------------------------------------------------------------------- preparation
def prepare_dataset(name: str, root: str | Path, options: dict, workers: int | None = None) -> dict:
    """Prepare dataset ``name`` under ``root`` and write its manifest; return it.

    ``options`` is the dataset's config block: for torchvision datasets ``mirrors``
    (local folders holding torchvision's file names, checked against its MD5s) and
    ``download`` (bool); for ``synthetic`` the generator's sizes and seed.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    if name == "synthetic":
        arrays = make_synthetic(
            seed=options["seed"],
            n_train=options["n_train"],
            n_test=options["n_test"],
            image_size=options.get("image_size", 28),
            channels=options.get("channels", 1),
            num_classes=options.get("num_classes", 10),
            instance_detail=options.get("instance_detail", 0.0),
        )
        target = root / "synthetic.npz"
        with atomic_path(target) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, **arrays)
        files = {target.name: file_sha256(target)}
        source = f"generated (seed {options['seed']})"
    elif name in TORCHVISION_DATASETS:
        cls = torchvision_dataset(name)
        if cls.__name__ in ARCHIVE_DATASETS:
            source = _prepare_archive(cls, root, options)
        elif cls.__name__ in FILE_DATASETS:
            source = _prepare_split_files(cls, root, options)
        else:
            source = _prepare_torchvision(cls, root, options)
        # Checksums of the verified raw files, checked again at every load.
        files = {str(f.relative_to(root)): file_sha256(f) for f in _dataset_files(cls, root)}
    elif name == "imagenet":
        files, source = prepare_imagenet(root, options, workers)
    elif name == "digits":
        from sklearn.datasets import load_digits

        digits = load_digits()
        # Pixel values are 0..16; scaled to the 0..255 of every other dataset.
        images = np.round(digits.images * (255 / 16)).astype(np.uint8)[:, None]
        labels = digits.target.astype(np.int64)
        cut = len(images) - DIGITS_TEST
        target = root / "digits.npz"
        with atomic_path(target) as tmp:
            with open(tmp, "wb") as f:
                np.savez(
                    f, train_images=images[:cut], train_labels=labels[:cut], test_images=images[cut:], test_labels=labels[cut:]
                )
        files = {target.name: file_sha256(target)}
        source = "scikit-learn's bundled load_digits()"
    else:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")

    splits = {}
    for split in SPLIT_SIZES[name]:
        images, labels = _load(name, root, split)
        splits[split] = {"n": int(images.shape[0]), "shape": list(images.shape[1:]), "classes": int(labels.max()) + 1}
    manifest = {"dataset": name, "source": source, "splits": splits, "files": files}
    if name in TORCHVISION_DATASETS:
        manifest["checksums"] = options.get("checksums") or "torchvision's"
    write_json(root / MANIFEST, manifest)
    return manifest


# torchvision checks the MD5 of the .gz files it downloads. Re-packaged mirrors
# (Debian's dataset-fashion-mnist rewrites the gzip headers) hold the same bytes under a
# different .gz MD5, so a mirror file is also accepted when its decompressed content
# matches the upstream MD5 of the decompressed file (as published by Fashion-MNIST).
DECOMPRESSED_MD5 = {
    "FashionMNIST": {
        "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
        "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
        "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
        "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
    }
}


def _decompressed_md5(path: Path) -> str:
    digest = hashlib.md5()
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _verified(candidate: Path, gz_md5: str, raw_md5: str | None) -> bool:
    if candidate.suffix == ".gz" and check_integrity(candidate, gz_md5):
        return True
    try:
        return raw_md5 is not None and _decompressed_md5(candidate) == raw_md5
    except (OSError, EOFError, gzip.BadGzipFile):
        return False


def _prepare_torchvision(cls: type, root: Path, options: dict) -> str:
    """Decompress verified files from the first mirror that has them; download the rest."""
    raw = root / cls.__name__ / "raw"
    mirrors = [Path(m) for m in options.get("mirrors", [])]
    table = _md5_source(options)
    raw_md5s = {**DECOMPRESSED_MD5.get(cls.__name__, {})}
    for filename, _ in cls.resources:
        stem = Path(filename).stem
        # A listed .gz vouches for its content; a listed decompressed file for itself.
        listed_gz = Path(filename).name in table
        raw_md5s[stem] = _expected(table, stem, None if listed_gz else raw_md5s.get(stem))
    problems: list[str] = []
    used: list[str] = []
    for filename, gz_md5 in cls.resources:
        filename = Path(filename).name
        stem = Path(filename).stem
        gz_md5 = _expected(table, filename, gz_md5)
        if _raw_file_ok(raw / stem, raw_md5s.get(stem)):
            continue
        for mirror in mirrors:
            # A mirror may hold the .gz torchvision downloads or the decompressed file.
            candidates = [mirror / filename, mirror / stem]
            found = [c for c in candidates if c.exists()]
            if not found:
                problems.append(f"{mirror / filename}: not found")
                continue
            candidate = found[0]
            if not _verified(candidate, gz_md5, raw_md5s.get(stem)):
                problems.append(f"{candidate}: checksum differs from {_whose(options)} (corrupt or wrong file)")
                continue
            raw.mkdir(parents=True, exist_ok=True)
            opener = gzip.open if candidate.suffix == ".gz" else open
            with atomic_path(raw / stem) as tmp, opener(candidate, "rb") as src, open(tmp, "wb") as dst:
                shutil.copyfileobj(src, dst)
            used.append(str(mirror))
            break
    if all(_raw_file_ok(raw / Path(f).stem, raw_md5s.get(Path(f).stem)) for f, _ in cls.resources):
        return "mirror: " + ", ".join(sorted(set(used))) if used else "already prepared"
    if options.get("download", True):
        try:
            cls(str(root), train=True, download=True)
            return "downloaded by torchvision"
        except Exception as err:  # URLError, RuntimeError (checksum), OSError...
            problems.append(f"download from {', '.join(cls.mirrors)} failed: {err}")
    else:
        problems.append("download disabled in config (download: false)")
    raise DatasetUnavailableError(
        f"dataset {cls.__name__} is not available under {root}.\n"
        + "\n".join(f"  - {p}" for p in problems)
        + "\nFix it either way:\n"
        "  1. put torchvision's files (" + ", ".join(Path(f).name for f, _ in cls.resources) + ") in a local "
        "folder and list it under the dataset's `mirrors` in the config; on Debian/Ubuntu "
        "`apt-get install dataset-fashion-mnist` provides /usr/share/datasets/fashion-mnist;\n"
        "  2. or run the data rule on a machine with internet access and `download: true`."
    )


def _archive_members(cls: type) -> list[tuple[str, str | None]]:
    """(path under root, torchvision's MD5 or None) of every file an archive dataset
    loads: CIFAR's batches and meta file, STL10's binaries and class names."""
    members = [(f"{cls.base_folder}/{name}", md5) for name, md5 in cls.train_list + cls.test_list]
    if hasattr(cls, "meta"):  # CIFAR
        members.append((f"{cls.base_folder}/{cls.meta['filename']}", cls.meta["md5"]))
    if hasattr(cls, "class_names_file"):  # STL10; torchvision publishes no MD5 for it
        members.append((f"{cls.base_folder}/{cls.class_names_file}", None))
    return members


def _split_files(cls: type) -> list[tuple[str, str]]:
    """(file name, MD5) of the train and test files of a dataset shipped one file per split."""
    return [(cls.split_list[split][1], cls.split_list[split][2]) for split in ("train", "test")]


def _dataset_files(cls: type, root: Path) -> list[Path]:
    """The prepared files of a torchvision dataset, whose sha256 the manifest records."""
    if cls.__name__ in ARCHIVE_DATASETS:
        names = [name for name, _ in _archive_members(cls)]
    elif cls.__name__ in FILE_DATASETS:
        names = [name for name, _ in _split_files(cls)]
    else:
        return [f for f in sorted(root.glob("*/raw/*")) if f.is_file()]
    return [root / name for name in names]


def _md5_ok(path: Path, md5: str | None) -> bool:
    return path.is_file() and (md5 is None or check_integrity(path, md5))


def _unavailable(cls: type, root: Path, problems: list[str], names: list[str]) -> DatasetUnavailableError:
    return DatasetUnavailableError(
        f"dataset {cls.__name__} is not available under {root}.\n"
        + "\n".join(f"  - {p}" for p in problems)
        + "\nFix it either way:\n"
        f"  1. put torchvision's files ({', '.join(names)}) in a local folder and list it under the "
        "dataset's `mirrors` in the config;\n"
        "  2. or run the data rule on a machine with internet access and `download: true`."
    )


def _prepare_archive(cls: type, root: Path, options: dict) -> str:
    """CIFAR10/100 and STL10: torchvision downloads one .tar.gz (checked against its MD5)
    and extracts it. A mirror holds that archive under torchvision's file name, or the
    extracted folder (``cifar-10-batches-py``, ``stl10_binary``...); every extracted file
    is checked against torchvision's MD5s."""
    from torchvision.datasets.utils import extract_archive

    table = _md5_source(options)
    members = [(name, _expected(table, name, md5)) for name, md5 in _archive_members(cls)]
    archive_md5 = _expected(table, cls.filename, cls.tgz_md5)

    def complete() -> bool:
        return all(_md5_ok(root / name, md5) for name, md5 in members)

    if complete():
        return "already prepared"
    problems: list[str] = []
    for mirror in map(Path, options.get("mirrors", [])):
        archive = mirror / cls.filename
        if archive.is_file():
            if check_integrity(archive, archive_md5):
                # Extracted into a temporary folder and moved into place, so a killed
                # job leaves no half-extracted folder that looks complete.
                scratch = Path(tempfile.mkdtemp(prefix=".extract-", dir=root))
                try:
                    extract_archive(str(archive), str(scratch))
                    shutil.rmtree(root / cls.base_folder, ignore_errors=True)
                    (scratch / cls.base_folder).rename(root / cls.base_folder)
                finally:
                    shutil.rmtree(scratch, ignore_errors=True)
                if complete():
                    return f"mirror: {mirror}"
                problems.append(f"{archive}: extracted files differ from {_whose(options)}")
            else:
                problems.append(f"{archive}: checksum differs from {_whose(options)} (corrupt or wrong file)")
            continue
        folder = mirror / cls.base_folder
        if not folder.is_dir():
            problems.append(f"{archive}: not found (nor the extracted {folder})")
            continue
        bad = [name for name, md5 in members if not _md5_ok(mirror / name, md5)]
        if bad:
            problems.append(f"{mirror}: {', '.join(bad)} missing or with a checksum differing from {_whose(options)}")
            continue
        for name, _ in members:
            with atomic_path(root / name) as tmp:
                shutil.copyfile(mirror / name, tmp)
        return f"mirror: {mirror}"
    if options.get("download", True):
        try:
            if cls.__name__ == "STL10":
                cls(str(root), split="train", download=True)
            else:
                cls(str(root), train=True, download=True)
            if complete():
                return "downloaded by torchvision"
            problems.append("the downloaded files differ from torchvision's checksums")
        except Exception as err:  # URLError, RuntimeError (checksum), OSError...
            problems.append(f"download from {cls.url} failed: {err}")
    else:
        problems.append("download disabled in config (download: false)")
    raise _unavailable(cls, root, problems, [cls.filename, cls.base_folder + "/"])


def _prepare_split_files(cls: type, root: Path, options: dict) -> str:
    """SVHN: one .mat file per split under torchvision's file name, each checked against
    its MD5; copied from the first mirror that has it, otherwise downloaded."""
    table = _md5_source(options)
    files = [(name, _expected(table, name, md5)) for name, md5 in _split_files(cls)]
    problems: list[str] = []
    used: list[str] = []
    for name, md5 in files:
        if _md5_ok(root / name, md5):
            continue
        for mirror in map(Path, options.get("mirrors", [])):
            if not (mirror / name).is_file():
                problems.append(f"{mirror / name}: not found")
            elif not check_integrity(mirror / name, md5):
                problems.append(f"{mirror / name}: checksum differs from {_whose(options)} (corrupt or wrong file)")
            else:
                with atomic_path(root / name) as tmp:
                    shutil.copyfile(mirror / name, tmp)
                used.append(str(mirror))
                break
    missing = [split for split, (name, md5) in zip(("train", "test"), files) if not _md5_ok(root / name, md5)]
    if missing and options.get("download", True):
        try:
            for split in missing:
                cls(str(root), split=split, download=True)
        except Exception as err:  # URLError, RuntimeError (checksum), OSError...
            problems.append(f"download of {cls.__name__} {missing} failed: {err}")
    elif missing:
        problems.append("download disabled in config (download: false)")
    if all(_md5_ok(root / name, md5) for name, md5 in files):
        if used:
            return "mirror: " + ", ".join(sorted(set(used)))
        return "downloaded by torchvision" if missing else "already prepared"
    raise _unavailable(cls, root, problems, [name for name, _ in _split_files(cls)])


def _whose(options: dict) -> str:
    return f"the checksums in {options['checksums']}" if options.get("checksums") else "torchvision's"


def _raw_file_ok(path: Path, raw_md5: str | None) -> bool:
    if not path.exists():
        return False
    return raw_md5 is None or _decompressed_md5(path) == raw_md5


# --------------------------------------------------------------------------- ImageNet
# ImageNet, prepared from a folder the user provides (never downloaded).
#
# ImageNet's licence forbids redistribution, so the config names a directory in
# torchvision's ImageFolder layout (``<path>/train/<class>/*.JPEG``,
# ``<path>/val/<class>/*.JPEG``). The data rule decodes a seeded subset of each split
# once (resize the shorter side to 256/224 of ``image_size``, centre crop, the standard
# ImageNet evaluation transform) into uint8 arrays, memory-mapped at load: 200,000
# images at 224 px are 30 GB, more than a job should hold in RAM, and every later
# stage indexes batches of the uint8 tensor as it does for the small datasets.

# Our split name -> the ImageFolder subdirectory (ImageNet's labelled test set is "val").


def _imagenet_subset(n: int, size: int | None, seed: int) -> np.ndarray:
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
    for split, folder in IMAGENET_FOLDERS.items():
        dataset = ImageFolder(str(Path(options["path"]) / folder), transform=transform)
        keep = _imagenet_subset(len(dataset), options.get(f"{split}_size"), int(options.get("seed", 0)) + (split == "test"))
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


# --------------------------------------------------------------------------- loading
# Datasets whose prepared files are IDX files (torchvision's raw MNIST-format files):
# folder and file prefix of each split. Read with numpy: importing torchvision costs
# 1.2 s, paid by every job that loads a split (about 90 in the default run).
IDX_DATASETS = {"fashion_mnist": ("FashionMNIST", {"train": "train", "test": "t10k"})}


def read_idx(path: Path) -> np.ndarray:
    """An uncompressed unsigned-byte IDX file (the MNIST format: two zero bytes, type
    0x08, the number of dimensions, each dimension as a big-endian int32, then the data)."""
    data = bytearray(path.read_bytes())
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise DatasetUnavailableError(f"{path} is not an unsigned-byte IDX file")
    ndim = data[3]
    dims = tuple(int(d) for d in np.frombuffer(data, ">i4", count=ndim, offset=4))
    values = np.frombuffer(data, np.uint8, offset=4 + 4 * ndim)
    if values.size != int(np.prod(dims)):
        raise DatasetUnavailableError(f"{path} holds {values.size} values, its header says {dims}")
    return values.reshape(dims)


def _load(name: str, root: Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    known = tuple(SPLIT_SIZES[name])
    if split not in known:
        raise ValueError(f"unknown split {split!r} of {name}; known: {', '.join(known)}")
    if name in ("synthetic", "digits"):
        with np.load(root / f"{name}.npz") as arrays:
            return torch.from_numpy(arrays[f"{split}_images"]), torch.from_numpy(arrays[f"{split}_labels"])
    if name == "imagenet":
        return load_imagenet(root, split)
    if name in IDX_DATASETS:
        folder, prefixes = IDX_DATASETS[name]
        raw = root / folder / "raw"
        images = read_idx(raw / f"{prefixes[split]}-images-idx3-ubyte")
        labels = read_idx(raw / f"{prefixes[split]}-labels-idx1-ubyte")
        return torch.from_numpy(images).unsqueeze(1).contiguous(), torch.from_numpy(labels.astype(np.int64))
    cls = _verified_by_manifest(torchvision_dataset(name))
    if cls.__name__ in ("SVHN", "STL10"):
        dataset = cls(str(root), split=split, download=False)
        labels = dataset.labels
    else:
        dataset = cls(str(root), train=split == "train", download=False)
        labels = dataset.targets
    images = torch.as_tensor(np.asarray(dataset.data))
    if images.ndim == 3:  # grey datasets come as (N, H, W)
        images = images.unsqueeze(1)
    elif images.shape[-1] == 3 and images.shape[1] != 3:  # CIFAR comes as (N, H, W, C)
        images = images.permute(0, 3, 1, 2)
    return images.contiguous(), torch.as_tensor(np.asarray(labels), dtype=torch.int64)


def _verified_by_manifest(cls: type) -> type:
    """torchvision's reader of ``cls`` without its MD5 checks at load: the files were
    verified when prepared (against torchvision's or the user's checksums) and
    :func:`load_split` checks them against the manifest's sha256 before every read."""
    overrides = {"_check_integrity": lambda self: True}
    if hasattr(cls, "meta"):  # CIFAR reads its meta file through an MD5 check of its own
        overrides["meta"] = {**cls.meta, "md5": None}
    return type(cls.__name__, (cls,), overrides)


def load_split(root: str | Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (uint8, N x C x H x W) and labels of a prepared dataset's split."""
    root = Path(root)
    manifest_path = root / MANIFEST
    if not manifest_path.exists():
        raise DatasetUnavailableError(f"{root} is not a prepared dataset (no {MANIFEST}); run the data rule first")
    manifest = read_json(manifest_path)
    for name, sha256 in manifest.get("files", {}).items():
        path = root / name
        if not path.exists() or file_sha256(path) != sha256:
            raise DatasetUnavailableError(
                f"{path} is missing or corrupt (its sha256 differs from {manifest_path}); "
                f"delete {root} and rebuild only it: snakemake --cores all {manifest_path}"
            )
    images, labels = _load(manifest["dataset"], root, split)
    expected = manifest["splits"][split]["n"]
    if images.shape[0] != expected:
        raise DatasetUnavailableError(f"{root} {split} has {images.shape[0]} images, manifest says {expected}")
    return images, labels


def index_range(n: int, start: int = 0, stop: int | None = None, exclude_last: int = 0) -> np.ndarray:
    """Indices start..stop of a split of n images, minus its last ``exclude_last``.

    The paper's query pool is ``index_range(n_test, exclude_last=1000)`` and the probe's
    test set the last 1,000 test images, so no query is ever a test image.
    """
    end = n - exclude_last if stop is None else min(stop, n - exclude_last)
    if not 0 <= start < end:
        raise ValueError(f"empty index range: start {start}, stop {stop}, exclude_last {exclude_last}, n {n}")
    return np.arange(start, end)
