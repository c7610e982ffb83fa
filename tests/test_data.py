"""Dataset preparation: a local mirror with matching checksums, the clear error when
nothing is available, and the synthetic generator. Never downloads."""

import gzip
import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision.datasets import FashionMNIST

from sslsteal.data import index_range, load_split, make_synthetic, prepare_dataset
from sslsteal.errors import DatasetUnavailableError

from mirrors import idx


@pytest.fixture
def small_mirror(tmp_path, monkeypatch):
    """A mirror of tiny Fashion-MNIST-format files (.gz, as torchvision downloads them)
    and an md5sum file of their decompressed contents: the dataset's `checksums` option,
    the supported path for a mirror whose bytes are not torchvision's. Returns the
    mirror, the decompressed contents and the options naming both."""
    rng = np.random.default_rng(0)
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    contents = {
        "train-images-idx3-ubyte": idx(rng.integers(0, 255, (12, 28, 28), dtype=np.uint8)),
        "train-labels-idx1-ubyte": idx(rng.integers(0, 10, 12)),
        "t10k-images-idx3-ubyte": idx(rng.integers(0, 255, (5, 28, 28), dtype=np.uint8)),
        "t10k-labels-idx1-ubyte": idx(rng.integers(0, 10, 5)),
    }
    for stem, content in contents.items():
        (mirror / f"{stem}.gz").write_bytes(gzip.compress(content, mtime=0))
    checksums = tmp_path / "MD5SUMS"
    checksums.write_text("".join(f"{hashlib.md5(content).hexdigest()}  {stem}\n" for stem, content in contents.items()))
    # Not a checksum: the download tests must never reach the network.
    monkeypatch.setattr(FashionMNIST, "mirrors", ["http://127.0.0.1:9/"])
    return mirror, contents, {"mirrors": [str(mirror)], "download": False, "checksums": str(checksums)}


def test_prepare_from_mirror(tmp_path, small_mirror):
    mirror, contents, options = small_mirror
    root = tmp_path / "prepared"
    manifest = prepare_dataset("fashion_mnist", root, {**options, "mirrors": [str(tmp_path / "absent"), str(mirror)]})
    assert manifest["source"] == f"mirror: {mirror}"
    assert manifest["checksums"] == options["checksums"]
    assert manifest["splits"]["train"]["n"] == 12 and manifest["splits"]["test"]["n"] == 5
    images, labels = load_split(root, "train")
    assert images.shape == (12, 1, 28, 28) and images.dtype == torch.uint8
    expected = np.frombuffer(contents["train-images-idx3-ubyte"][16:], dtype=np.uint8).reshape(12, 28, 28)
    np.testing.assert_array_equal(images[:, 0].numpy(), expected)


def test_corrupted_dataset_file_is_detected_and_named(tmp_path, small_mirror):
    _, _, options = small_mirror
    root = tmp_path / "prepared"
    manifest = prepare_dataset("fashion_mnist", root, options)
    assert "FashionMNIST/raw/train-images-idx3-ubyte" in manifest["files"]
    raw = root / "FashionMNIST/raw/train-images-idx3-ubyte"
    data = bytearray(raw.read_bytes())
    data[-1] ^= 0xFF  # one flipped byte: same size, still parses, wrong pixels
    raw.write_bytes(bytes(data))
    with pytest.raises(DatasetUnavailableError, match="train-images-idx3-ubyte is missing or corrupt"):
        load_split(root, "test")


def test_repackaged_gzip_accepted_by_content_checksum(tmp_path, small_mirror):
    """Debian's package re-gzips the files: different .gz MD5, same content."""
    mirror, contents, options = small_mirror
    for stem, content in contents.items():
        (mirror / f"{stem}.gz").write_bytes(gzip.compress(content, mtime=12345, compresslevel=1))
    manifest = prepare_dataset("fashion_mnist", tmp_path / "p", options)
    assert manifest["splits"]["test"]["n"] == 5


def test_corrupt_mirror_and_no_download_says_both_fixes(tmp_path, small_mirror):
    mirror, _, options = small_mirror
    (mirror / "train-images-idx3-ubyte.gz").write_bytes(b"not the right bytes")
    with pytest.raises(DatasetUnavailableError) as err:
        prepare_dataset("fashion_mnist", tmp_path / "p", options)
    message = str(err.value)
    assert f"train-images-idx3-ubyte.gz: checksum differs from the checksums in {options['checksums']}" in message
    assert "mirrors" in message and "apt-get install dataset-fashion-mnist" in message
    assert "internet access" in message


def test_failed_download_says_both_fixes(tmp_path, small_mirror):
    _, _, options = small_mirror
    with pytest.raises(DatasetUnavailableError) as err:
        prepare_dataset("fashion_mnist", tmp_path / "p", {**options, "mirrors": [], "download": True})
    message = str(err.value)
    assert "download from http://127.0.0.1:9/ failed" in message
    assert "dataset-fashion-mnist" in message and "download: true" in message


def test_unprepared_root_is_a_clear_error(tmp_path):
    with pytest.raises(DatasetUnavailableError, match="not a prepared dataset"):
        load_split(tmp_path, "train")


def test_synthetic_is_deterministic_and_learnable_shape():
    a = make_synthetic(seed=3, n_train=40, n_test=20, image_size=16, num_classes=4)
    b = make_synthetic(seed=3, n_train=40, n_test=20, image_size=16, num_classes=4)
    c = make_synthetic(seed=4, n_train=40, n_test=20, image_size=16, num_classes=4)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    assert not np.array_equal(a["train_images"], c["train_images"])
    assert a["train_images"].shape == (40, 1, 16, 16) and a["train_images"].dtype == np.uint8
    assert set(np.unique(a["train_labels"])) == {0, 1, 2, 3}


def test_synthetic_classes_are_separable_by_nearest_class_mean():
    arrays = make_synthetic(seed=0, n_train=400, n_test=200, image_size=16, num_classes=4)
    x = arrays["train_images"].reshape(400, -1).astype(float)
    means = np.stack([x[arrays["train_labels"] == c].mean(0) for c in range(4)])
    test = arrays["test_images"].reshape(200, -1).astype(float)
    predicted = ((test[:, None] - means[None]) ** 2).sum(-1).argmin(1)
    assert (predicted == arrays["test_labels"]).mean() > 0.6


def nearest_other_distance(images: np.ndarray, pool: int = 4) -> np.ndarray:
    """Each image's distance to its nearest other image, on means of pool x pool blocks:
    they average the per-pixel noise away, which alone would set every distance."""
    n, c, h, w = images.shape
    x = (images.astype(float) / 255).reshape(n, c, h // pool, pool, w // pool, pool).mean((3, 5)).reshape(n, -1)
    squared = (x**2).sum(1)
    distances = squared[:, None] + squared[None] - 2 * x @ x.T
    np.fill_diagonal(distances, np.inf)
    return np.sqrt(np.maximum(distances.min(1), 0))


def test_instance_detail_gives_each_image_content_of_its_own():
    """Without the option a class's images are shifts of one prototype plus noise, so
    most have a near-duplicate; with it they are further apart, and the classes stay
    separable. 0 draws the same bytes as no option at all."""
    sizes = dict(seed=0, n_train=400, n_test=200, image_size=16, num_classes=4)
    plain, zero, detailed = make_synthetic(**sizes), make_synthetic(**sizes, instance_detail=0.0), make_synthetic(**sizes, instance_detail=0.5)
    for key in plain:
        np.testing.assert_array_equal(plain[key], zero[key])
    np.testing.assert_array_equal(plain["train_labels"], detailed["train_labels"])
    ratio = np.median(nearest_other_distance(detailed["train_images"])) / np.median(nearest_other_distance(plain["train_images"]))
    assert ratio > 1.5, ratio
    x = detailed["train_images"].reshape(400, -1).astype(float)
    means = np.stack([x[detailed["train_labels"] == c].mean(0) for c in range(4)])
    test = detailed["test_images"].reshape(200, -1).astype(float)
    assert (((test[:, None] - means[None]) ** 2).sum(-1).argmin(1) == detailed["test_labels"]).mean() > 0.6


def test_index_range_holds_out_the_tail():
    np.testing.assert_array_equal(index_range(10, exclude_last=3), np.arange(7))
    with pytest.raises(ValueError):
        index_range(5, exclude_last=5)


DEBIAN_MIRROR = "/usr/share/datasets/fashion-mnist"


@pytest.mark.skipif(not Path(DEBIAN_MIRROR).is_dir(), reason="Debian's dataset-fashion-mnist is not installed")
def test_real_fashion_mnist_from_debian_mirror(tmp_path):
    """The default config's mirror passes our checksums and loads with torchvision."""
    manifest = prepare_dataset("fashion_mnist", tmp_path, {"mirrors": [DEBIAN_MIRROR], "download": False})
    assert manifest["splits"]["train"] == {"n": 60000, "shape": [1, 28, 28], "classes": 10}
    assert manifest["splits"]["test"]["n"] == 10000
    again = prepare_dataset("fashion_mnist", tmp_path, {"mirrors": [], "download": False})
    assert again["source"] == "already prepared"


def test_idx_reader_matches_torchvision_and_refuses_a_truncated_file(tmp_path):
    """Fashion-MNIST's prepared files are read with numpy (no torchvision import in
    every job); the same bytes through torchvision's own reader give the same arrays."""
    import struct

    import numpy as np
    import torch
    from torchvision.datasets.mnist import read_image_file, read_label_file

    from sslsteal.data import read_idx
    from sslsteal.errors import DatasetUnavailableError

    rng = np.random.default_rng(0)
    images, labels = rng.integers(0, 256, (7, 28, 28), dtype=np.uint8), rng.integers(0, 10, 7, dtype=np.uint8)
    image_file, label_file = tmp_path / "images-idx3-ubyte", tmp_path / "labels-idx1-ubyte"
    image_file.write_bytes(struct.pack(">BBBBiii", 0, 0, 8, 3, 7, 28, 28) + images.tobytes())
    label_file.write_bytes(struct.pack(">BBBBi", 0, 0, 8, 1, 7) + labels.tobytes())
    assert torch.equal(torch.from_numpy(read_idx(image_file)), read_image_file(str(image_file)))
    assert torch.equal(torch.from_numpy(read_idx(label_file)).long(), read_label_file(str(label_file)))
    image_file.write_bytes(image_file.read_bytes()[:-5])
    with pytest.raises(DatasetUnavailableError, match="header says"):
        read_idx(image_file)
