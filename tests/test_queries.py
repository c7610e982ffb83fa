"""Query sets: the noise baseline, pools with held-out images, reproducible views."""

import numpy as np
import torch

from sslsteal.data import make_synthetic, prepare_dataset
from sslsteal.queries import augmented_views, images_sha256, query_pool


def test_noise_pool_is_seeded_uniform_and_victim_shaped():
    images, index = query_pool({"noise": {"n": 500, "seed": 3}}, None, (1, 12, 12))
    again, _ = query_pool({"noise": {"n": 500, "seed": 3}}, None, (1, 12, 12))
    assert images.shape == (500, 1, 12, 12) and images.dtype == torch.uint8
    assert torch.equal(images, again) and np.array_equal(index, np.arange(500))
    assert 110 < images.float().mean() < 145 and images.min() == 0 and images.max() == 255


def test_dataset_pool_excludes_held_out(tmp_path):
    prepare_dataset("synthetic", tmp_path, {"seed": 0, "n_train": 20, "n_test": 30, "image_size": 12})
    images, index = query_pool({"dataset": "synthetic", "split": "test", "exclude_last": 10}, tmp_path, (1, 12, 12))
    assert len(images) == 20 and index.tolist() == list(range(20))


def test_views_are_reproducible_and_a_prefix_is_a_prefix():
    images = torch.from_numpy(make_synthetic(0, 1200, 1, image_size=12)["train_images"])
    augmentation = {"crop_scale": [0.3, 1.0]}
    views = augmented_views(images, 2, seed=5, augmentation=augmentation)
    assert views.shape == (2, 1200, 1, 12, 12) and views.dtype == torch.uint8
    assert images_sha256(views) == images_sha256(augmented_views(images, 2, seed=5, augmentation=augmentation))
    assert torch.equal(augmented_views(images[:700], 2, seed=5, augmentation=augmentation), views[:, :700])
    assert not torch.equal(views[0], views[1]), "the two views of an image must differ"
    assert images_sha256(views) != images_sha256(augmented_views(images, 2, seed=6, augmentation=augmentation))
