"""The names the workflow knows, in one place, without torch: datasets with their splits
and image sizes, SSL methods, extraction approaches, losses, backbones, defenses.

The config schema's enums, the Snakefile's wildcard constraints, the config checks and
the code all read these (``tests/test_registry.py`` holds the schema to them).
"""

from __future__ import annotations

from pathlib import Path

# Split sizes of the real datasets (torchvision's splits; scikit-learn's digits with its
# last 300 images as "test"). Synthetic sizes come from the config; ImageNet's are its
# train and val folders, or the prepared subsets (datasets.imagenet.*_size).
SPLIT_SIZES = {
    "fashion_mnist": {"train": 60000, "test": 10000},
    "digits": {"train": 1497, "test": 300},
    "synthetic": {"train": None, "test": None},
    "cifar10": {"train": 50000, "test": 10000},
    "cifar100": {"train": 50000, "test": 10000},
    "svhn": {"train": 73257, "test": 26032},
    # STL10's 100K unlabeled images: the paper's STL10 victim's training set and an
    # out-of-distribution query set (no labels: -1).
    "stl10": {"train": 5000, "test": 8000, "unlabeled": 100000},
    "imagenet": {"train": 1281167, "test": 50000},
}
DATASETS = tuple(SPLIT_SIZES)
# Classes of the labelled datasets (synthetic: the config's num_classes; ImageNet: its
# train folder's class folders).
NUM_CLASSES = {"fashion_mnist": 10, "digits": 10, "cifar10": 10, "cifar100": 100, "svhn": 10, "stl10": 10}
# Image side length of each dataset: an encoder trained on one is fed every other dataset
# resized to it (e.g. STL10's 96 px queries to a 32 px CIFAR victim). Synthetic and
# ImageNet: the config's image_size, else these defaults.
IMAGE_SIZES = {
    "fashion_mnist": 28,
    "digits": 8,
    "cifar10": 32,
    "cifar100": 32,
    "svhn": 32,
    "stl10": 96,
    "synthetic": 28,
    "imagenet": 224,
}
# ImageNet's ImageFolder sub-folders of each split (prepared by hand, never downloaded).
IMAGENET_FOLDERS = {"train": "train", "test": "val"}

# The datasets torchvision provides (and downloads), by torchvision class name.
TORCHVISION_DATASETS = {
    "fashion_mnist": "FashionMNIST",
    "cifar10": "CIFAR10",
    "cifar100": "CIFAR100",
    "svhn": "SVHN",
    "stl10": "STL10",
}

# How a victim was trained (victims.<id>.method).
SSL_METHODS = ("simclr", "simsiam", "barlow_twins")
# How a cell steals (the path's approach): train on the answers directly, or on the
# answers of the victim's projection head, or on a head the attacker recreates (the
# paper's three); StolenEncoder (Liu et al., CCS 2022) and Cont-Steal (Sha et al., CVPR
# 2023) beyond the paper (docs/protocol.md, "Attacks beyond the paper").
APPROACHES = ("direct", "head_access", "head_recreation", "stolenencoder", "contsteal")
# Trained through a head (the victim's answers, or the attacker's head, are head outputs).
HEAD_APPROACHES = ("head_access", "head_recreation")
# No head: the copy's representation is trained to equal the victim's answers, in the
# victim's basis (so cosine fidelity to the victim means something).
HEADLESS_APPROACHES = ("direct", "stolenencoder", "contsteal")
# Those reading the victim's answers to augmented views of each image (the views dump,
# extraction.views), one API call per view.
VIEWS_APPROACHES = ("head_recreation", "contsteal")
# The stealing losses: the paper's (Table 1), and StolenEncoder's negative cosine.
LOSSES = ("mse", "infonce", "softnn", "wasserstein", "cosine")
CONTRASTIVE_LOSSES = ("infonce", "softnn")
# Wasserstein compares non-negative histograms: direct answers (post-ReLU) only.
NON_NEGATIVE_LOSSES = ("wasserstein",)
BACKBONES = ("small_cnn", "resnet18", "resnet34", "resnet50", "resnet50_imagenet")
PRECISIONS = ("fp32", "bf16")

# Defenses at the API, by config block; each setting is one path segment, e.g.
# ``poisoning_sigma0.3`` (see :mod:`sslsteal.defense_spec`).
DEFENSE_KINDS = ("poisoning", "detection", "b4b")


def wildcard_pattern(names) -> str:
    """A regex alternative matching exactly ``names`` (one matching nothing when empty)."""
    return "|".join(sorted(names, key=len, reverse=True)) or "(?!)"


def imagenet_folder_problem(path: str | Path) -> str | None:
    """Why ``path`` is not an ImageFolder-layout ImageNet, or None when it looks like one."""
    path = Path(path)
    if not path.is_dir():
        return f"{path} does not exist"
    missing = [f"{path / sub}" for sub in IMAGENET_FOLDERS.values() if not (path / sub).is_dir()]
    if missing:
        return f"{', '.join(missing)} missing (ImageFolder layout: <path>/train/<class>/*.JPEG, <path>/val/<class>/*.JPEG)"
    return None
