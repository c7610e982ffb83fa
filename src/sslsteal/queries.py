"""The attacker's queries (docs/paper.md, "Query protocol"): which images it sends, and the
augmented views the head-recreation attack sends.

A query set is either a pool of real images (a dataset split, minus held-out images)
or a uniform-noise baseline that shows how much real data matters. Images keep their
own size and channels here; the encoders resize (``preprocessing.model_input``) and convert
channels (``preprocessing.ChannelAdapter``) to the victim's input, as the API would.

Both the dump job (the API answering) and the extraction job (the attacker) build the
same queries from the same config and seed, and the dump stores a checksum of them, so
the attacker can prove it trains on exactly the images the victim answered.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch

from .augment import simclr_view
from .data import index_range, load_split
from .preprocessing import to_float

# Views are generated in fixed chunks, each from its own seed, so the views of the
# first N images do not depend on how many images follow (a smaller budget is a prefix).
VIEW_CHUNK = 512


def is_noise(query_set: dict) -> bool:
    return "noise" in query_set


def query_pool(query_set: dict, dataset_root: str | Path | None, shape: tuple[int, int, int]) -> tuple[torch.Tensor, np.ndarray]:
    """(uint8 images, index) of a query set's whole pool.

    ``shape`` (C, H, W) is the victim's input, used by the noise baseline: uniform
    random pixels, seeded, of exactly the shape the API takes.
    """
    if is_noise(query_set):
        noise = query_set["noise"]
        generator = torch.Generator().manual_seed(int(noise["seed"]))
        images = torch.randint(0, 256, (int(noise["n"]), *shape), generator=generator, dtype=torch.uint8)
        return images, np.arange(len(images))
    if dataset_root is None:
        raise ValueError(f"query set {query_set} needs its prepared dataset")
    images, _ = load_split(dataset_root, query_set["split"])
    index = index_range(len(images), exclude_last=query_set.get("exclude_last", 0))
    # A slice, not a gather: the same images, but a view, so a memory-mapped pool
    # (ImageNet: 30 GB at 200K images) is not copied into memory.
    return images[int(index[0]) : int(index[-1]) + 1], index


def answered_pool(query_set: dict, dataset_root: str | Path | None, meta: dict, dump_path: str | Path) -> torch.Tensor:
    """The attacker's query pool rebuilt from the config, in the API's input shape (from
    the dump's ``meta``), refused unless its checksum is that of the images the victim
    answered: the attacker trains on exactly those."""
    size, channels = meta["victim_image_size"], meta["victim_in_channels"]
    pool, _ = query_pool(query_set, dataset_root, (channels, size, size))
    if images_sha256(pool) != meta["queries_sha256"]:
        raise ValueError(f"the query images differ from those answered in {dump_path}; rebuild the dump")
    return pool


def augmented_views(images: torch.Tensor, n_views: int, seed: int, augmentation: dict) -> torch.Tensor:
    """``n_views`` SimCLR views of every image, as uint8 images (V, N, C, H, W).

    Quantised to uint8 because that is what an attacker sends (image files), and it
    makes the views exactly reproducible from the seed.
    """
    out = torch.empty((n_views, *images.shape), dtype=torch.uint8)
    for chunk, start in enumerate(range(0, len(images), VIEW_CHUNK)):
        generator = torch.Generator().manual_seed(seed * 1_000_003 + chunk)
        batch = to_float(images[start : start + VIEW_CHUNK])
        n = len(batch)
        # A last, partial chunk is padded to full size: the random draws then depend on
        # the chunk's seed only, not on how many images it holds.
        batch = torch.cat([batch, batch.new_zeros((VIEW_CHUNK - n, *batch.shape[1:]))])
        for view in range(n_views):
            view_images = simclr_view(batch, generator, augmentation)[:n]
            out[view, start : start + n] = (view_images * 255).round().to(torch.uint8)
    return out


def images_sha256(images: torch.Tensor) -> str:
    """Checksum of a uint8 image tensor (shape included)."""
    digest = hashlib.sha256(str(tuple(images.shape)).encode())
    # Chunk by chunk (same digest as hashing all bytes at once): a memory-mapped pool is
    # never copied whole into memory.
    for start in range(0, len(images), 4096):
        digest.update(memoryview(images[start : start + 4096].contiguous().numpy()).cast("B"))
    return digest.hexdigest()
