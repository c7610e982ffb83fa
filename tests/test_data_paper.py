"""The paper's datasets from local mirrors holding torchvision's own file names (tiny
generated files in each dataset's real format, verified against the mirror's own
MD5SUMS through the `checksums` option); ImageNet from a generated ImageFolder;
resizing and channel conversion to a victim's input; the device choice on this
machine. Never downloads."""

import pickle

import numpy as np
import pytest
import scipy.io
import torch
from torchvision.datasets import CIFAR10, STL10

from sslsteal.data import load_split, prepare_dataset
from sslsteal.errors import DatasetUnavailableError
from sslsteal.preprocessing import model_input

from mirrors import tar_gz, write_mirror

NO_NETWORK = "http://127.0.0.1:9/unreachable.tar.gz"


def from_mirror(mirror, download: bool = False) -> dict:
    """A dataset's config block: the mirror, verified against its own MD5SUMS."""
    return {"mirrors": [str(mirror)], "download": download, "checksums": str(mirror / "MD5SUMS")}


@pytest.fixture
def cifar_mirror(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    train = {"data": rng.integers(0, 256, (6, 3072), dtype=np.uint8), "labels": list(rng.integers(0, 10, 6))}
    test = {"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8), "labels": list(rng.integers(0, 10, 4))}
    empty = pickle.dumps({"data": np.zeros((0, 3072), dtype=np.uint8), "labels": []})
    files = {
        "data_batch_1": pickle.dumps(train),
        **{f"data_batch_{i}": empty for i in range(2, 6)},
        "test_batch": pickle.dumps(test),
        "batches.meta": pickle.dumps({"label_names": [f"c{i}" for i in range(10)]}),
    }
    members = {f"cifar-10-batches-py/{name}": content for name, content in files.items()}
    archive = tar_gz(members)
    mirror = tmp_path / "mirror"
    write_mirror(mirror, {"cifar-10-python.tar.gz": archive}, {"cifar-10-python.tar.gz": archive, **members})
    monkeypatch.setattr(CIFAR10, "url", NO_NETWORK)  # never download
    return mirror, train, files


def test_cifar10_from_archive_mirror(tmp_path, cifar_mirror):
    mirror, train, _ = cifar_mirror
    root = tmp_path / "cifar10"
    manifest = prepare_dataset("cifar10", root, from_mirror(mirror))
    assert manifest["source"] == f"mirror: {mirror}"
    assert manifest["splits"]["train"] == {"n": 6, "shape": [3, 32, 32], "classes": max(train["labels"]) + 1}
    assert "cifar-10-batches-py/data_batch_1" in manifest["files"]
    images, labels = load_split(root, "train")
    # CHW, exactly the bytes of the batch file (torchvision hands out HWC).
    np.testing.assert_array_equal(images.numpy(), train["data"].reshape(6, 3, 32, 32))
    assert labels.tolist() == train["labels"]
    assert not list(root.glob(".extract-*")), "scratch folder left behind"


def test_cifar10_from_extracted_folder_mirror(tmp_path, cifar_mirror):
    _, train, files = cifar_mirror
    mirror = tmp_path / "extracted"
    write_mirror(mirror, {f"cifar-10-batches-py/{name}": content for name, content in files.items()})
    root = tmp_path / "cifar10"
    manifest = prepare_dataset("cifar10", root, from_mirror(mirror))
    assert load_split(root, "test")[0].shape == (4, 3, 32, 32)
    assert manifest["checksums"] == str(mirror / "MD5SUMS")


def test_checksums_file_replaces_torchvision_s_and_still_verifies(tmp_path, cifar_mirror):
    """Without the mirror's MD5SUMS, torchvision's MD5s refuse the generated archive; a
    file the checksums list whose bytes differ is refused naming the checksums file;
    a malformed checksums line is named with its line number."""
    mirror, _, _ = cifar_mirror
    with pytest.raises(DatasetUnavailableError, match="cifar-10-python.tar.gz: checksum differs from torchvision's"):
        prepare_dataset("cifar10", tmp_path / "a", {"mirrors": [str(mirror)], "download": False})
    archive = mirror / "cifar-10-python.tar.gz"
    archive.write_bytes(archive.read_bytes() + b"\0")
    with pytest.raises(DatasetUnavailableError, match=f"checksum differs from the checksums in {mirror / 'MD5SUMS'}"):
        prepare_dataset("cifar10", tmp_path / "b", from_mirror(mirror))
    (mirror / "MD5SUMS").write_text("not-an-md5  cifar-10-python.tar.gz\n")
    with pytest.raises(DatasetUnavailableError, match="MD5SUMS line 1 is not `<md5>  <file name>`"):
        prepare_dataset("cifar10", tmp_path / "c", from_mirror(mirror))


def test_cifar10_corrupt_archive_names_it_and_both_fixes(tmp_path, cifar_mirror):
    mirror, _, _ = cifar_mirror
    (mirror / "cifar-10-python.tar.gz").write_bytes(b"truncated")
    with pytest.raises(DatasetUnavailableError) as err:
        prepare_dataset("cifar10", tmp_path / "c", from_mirror(mirror, download=True))
    message = str(err.value)
    assert f"cifar-10-python.tar.gz: checksum differs from the checksums in {mirror / 'MD5SUMS'}" in message
    assert f"download from {NO_NETWORK} failed" in message and "mirrors" in message


def test_corrupted_cifar_file_is_detected_at_load(tmp_path, cifar_mirror):
    mirror, _, _ = cifar_mirror
    root = tmp_path / "cifar10"
    prepare_dataset("cifar10", root, from_mirror(mirror))
    batch = root / "cifar-10-batches-py" / "test_batch"
    batch.write_bytes(batch.read_bytes()[:-1] + b"\x00")
    with pytest.raises(DatasetUnavailableError, match="test_batch is missing or corrupt"):
        load_split(root, "train")


def test_svhn_from_mirror(tmp_path):
    rng = np.random.default_rng(1)
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    for split, n in (("train", 5), ("test", 3)):
        x = rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8)
        y = np.array([[10], [1], [2], [3], [10]][:n], dtype=np.uint8)  # SVHN labels 0 as 10
        scipy.io.savemat(mirror / f"{split}_32x32.mat", {"X": x, "y": y})
    write_mirror(mirror, {}, {name: (mirror / name).read_bytes() for name in ("train_32x32.mat", "test_32x32.mat")})
    root = tmp_path / "svhn"
    manifest = prepare_dataset("svhn", root, from_mirror(mirror))
    assert manifest["splits"]["train"]["n"] == 5 and set(manifest["files"]) == {"train_32x32.mat", "test_32x32.mat"}
    images, labels = load_split(root, "train")
    assert images.shape == (5, 3, 32, 32) and labels.tolist() == [0, 1, 2, 3, 0]
    source = scipy.io.loadmat(mirror / "train_32x32.mat")["X"]
    np.testing.assert_array_equal(images.numpy(), source.transpose(3, 2, 0, 1))


def test_svhn_missing_and_no_download_is_a_clear_error(tmp_path):
    with pytest.raises(DatasetUnavailableError, match=r"train_32x32.mat: not found(.|\n)*download: true"):
        prepare_dataset("svhn", tmp_path / "svhn", {"mirrors": [str(tmp_path)], "download": False})


@pytest.fixture
def stl10_mirror(tmp_path, monkeypatch):
    rng = np.random.default_rng(2)
    sizes = {"train": 3, "test": 2, "unlabeled": 4}
    images = {split: rng.integers(0, 256, (n, 3, 96, 96), dtype=np.uint8) for split, n in sizes.items()}
    files = {
        "train_X.bin": images["train"].tobytes(),
        "train_y.bin": np.array([1, 10, 4], dtype=np.uint8).tobytes(),  # 1-based
        "unlabeled_X.bin": images["unlabeled"].tobytes(),
        "test_X.bin": images["test"].tobytes(),
        "test_y.bin": np.array([2, 3], dtype=np.uint8).tobytes(),
        "class_names.txt": b"\n".join(f"c{i}".encode() for i in range(10)),
    }
    members = {f"stl10_binary/{name}": content for name, content in files.items()}
    archive = tar_gz(members)
    mirror = tmp_path / "mirror"
    write_mirror(mirror, {"stl10_binary.tar.gz": archive}, {"stl10_binary.tar.gz": archive, **members})
    monkeypatch.setattr(STL10, "url", NO_NETWORK)  # never download
    return mirror, images


def test_stl10_with_its_unlabeled_split(tmp_path, stl10_mirror):
    mirror, images = stl10_mirror
    root = tmp_path / "stl10"
    manifest = prepare_dataset("stl10", root, from_mirror(mirror))
    assert {split: s["n"] for split, s in manifest["splits"].items()} == {"train": 3, "test": 2, "unlabeled": 4}
    unlabeled, labels = load_split(root, "unlabeled")
    assert unlabeled.shape == (4, 3, 96, 96) and (labels == -1).all()
    # torchvision's reading of the column-major binary, as it is.
    np.testing.assert_array_equal(unlabeled.numpy(), images["unlabeled"].transpose(0, 1, 3, 2))
    assert load_split(root, "train")[1].tolist() == [0, 9, 3]
    with pytest.raises(ValueError, match="unknown split 'extra' of stl10"):
        load_split(root, "extra")


def test_stl10_queries_are_resized_to_the_victims_input(tmp_path, stl10_mirror):
    """The authors' bug: STL10 queries reached a 32 px victim at 96 px. Here they are
    resized to the victim's input, and grey images are repeated to 3 channels."""
    from sslsteal.backbones import build_encoder, representations

    mirror, _ = stl10_mirror
    root = tmp_path / "stl10"
    prepare_dataset("stl10", root, from_mirror(mirror))
    queries, _ = load_split(root, "unlabeled")
    assert model_input(queries, 32).shape == (4, 3, 32, 32)
    victim = build_encoder({"name": "resnet18"}, in_channels=3, image_size=32)
    answers = representations(victim, queries)
    assert answers.shape == (4, victim.representation_dim) == (4, 512)
    # Exactly the answers to the images resized beforehand: resizing happens once.
    resized = model_input(queries, 32) * 255
    victim_on_resized = representations(victim, resized.round().clamp(0, 255).to(torch.uint8))
    assert torch.allclose(answers, victim_on_resized, atol=0.05)
    grey = torch.randint(0, 256, (3, 1, 28, 28), dtype=torch.uint8)  # Fashion-MNIST-shaped
    torch.testing.assert_close(representations(victim, grey), representations(victim, grey.expand(-1, 3, -1, -1)))


def test_imagenet_from_an_imagefolder(tmp_path):
    from PIL import Image

    folder = tmp_path / "imagenet"
    rng = np.random.default_rng(3)
    for split, per_class in (("train", 4), ("val", 2)):
        for cls in ("n01", "n02"):
            (folder / split / cls).mkdir(parents=True)
            for i in range(per_class):
                pixels = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / split / cls / f"{i}.png")
    options = {"path": str(folder), "image_size": 16, "train_size": 5, "test_size": None, "seed": 0, "workers": 0}
    root = tmp_path / "prepared"
    manifest = prepare_dataset("imagenet", root, options)
    assert manifest["splits"]["train"] == {"n": 5, "shape": [3, 16, 16], "classes": 2}
    assert manifest["splits"]["test"]["n"] == 4 and "train_images.npy" in manifest["files"]
    images, labels = load_split(root, "train")
    assert images.dtype == torch.uint8 and set(labels.tolist()) <= {0, 1}
    # Seeded: the same subset and pixels again.
    again = prepare_dataset("imagenet", tmp_path / "again", options)
    assert again["files"] == manifest["files"]


def test_imagenet_folder_missing_is_named(tmp_path):
    with pytest.raises(DatasetUnavailableError, match=r"datasets.imagenet.path: .*absent does not exist"):
        prepare_dataset("imagenet", tmp_path / "p", {"path": str(tmp_path / "absent")})


def test_device_is_cpu_here_and_cuda_is_refused_without_a_gpu():
    from sslsteal.runtime import device_stats, select_device, to_device

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    assert select_device("auto") == torch.device("cpu") == select_device("cpu")
    with pytest.raises(RuntimeError, match="config error at device: 'cuda' requested"):
        select_device("cuda")
    batch = torch.zeros(2, 1, 4, 4, dtype=torch.uint8)
    assert to_device(batch, torch.device("cpu")) is batch  # the CPU path is untouched
    stats = device_stats(torch.device("cpu"), 1000, 2.0)
    assert stats == {"device": "cpu", "images_per_second": 500.0, "gpu_max_memory_mib": None}
