"""The paper's datasets from local mirrors holding torchvision's own file names (tiny
generated files in each dataset's real format, torchvision's checksums patched to
match); ImageNet from a generated ImageFolder; resizing and channel conversion to a
victim's input; the device choice on this machine. Never downloads."""

import hashlib
import io
import pickle
import tarfile

import numpy as np
import pytest
import scipy.io
import torch
from torchvision.datasets import CIFAR10, STL10, SVHN

from sslsteal.data import load_split, prepare_dataset
from sslsteal.errors import DatasetUnavailableError
from sslsteal.preprocessing import model_input

NO_NETWORK = "http://127.0.0.1:9/unreachable.tar.gz"


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


@pytest.fixture
def cifar_mirror(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    train = {"data": rng.integers(0, 256, (6, 3072), dtype=np.uint8), "labels": list(rng.integers(0, 10, 6))}
    test = {"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8), "labels": list(rng.integers(0, 10, 4))}
    files = {
        "data_batch_1": pickle.dumps(train),
        "test_batch": pickle.dumps(test),
        "batches.meta": pickle.dumps({"label_names": [f"c{i}" for i in range(10)]}),
    }
    archive = tar_gz({f"cifar-10-batches-py/{name}": content for name, content in files.items()})
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "cifar-10-python.tar.gz").write_bytes(archive)
    monkeypatch.setattr(CIFAR10, "train_list", [["data_batch_1", md5(files["data_batch_1"])]])
    monkeypatch.setattr(CIFAR10, "test_list", [["test_batch", md5(files["test_batch"])]])
    monkeypatch.setattr(CIFAR10, "meta", {**CIFAR10.meta, "md5": md5(files["batches.meta"])})
    monkeypatch.setattr(CIFAR10, "tgz_md5", md5(archive))
    monkeypatch.setattr(CIFAR10, "url", NO_NETWORK)
    return mirror, train, files


def test_cifar10_from_archive_mirror(tmp_path, cifar_mirror):
    mirror, train, _ = cifar_mirror
    root = tmp_path / "cifar10"
    manifest = prepare_dataset("cifar10", root, {"mirrors": [str(mirror)], "download": False})
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
    (mirror / "cifar-10-batches-py").mkdir(parents=True)
    for name, content in files.items():
        (mirror / "cifar-10-batches-py" / name).write_bytes(content)
    root = tmp_path / "cifar10"
    prepare_dataset("cifar10", root, {"mirrors": [str(mirror)], "download": False})
    assert load_split(root, "test")[0].shape == (4, 3, 32, 32)


def test_cifar10_corrupt_archive_names_it_and_both_fixes(tmp_path, cifar_mirror):
    mirror, _, _ = cifar_mirror
    (mirror / "cifar-10-python.tar.gz").write_bytes(b"truncated")
    with pytest.raises(DatasetUnavailableError) as err:
        prepare_dataset("cifar10", tmp_path / "c", {"mirrors": [str(mirror)], "download": True})
    message = str(err.value)
    assert "cifar-10-python.tar.gz: checksum differs from torchvision's" in message
    assert f"download from {NO_NETWORK} failed" in message and "mirrors" in message


def test_corrupted_cifar_file_is_detected_at_load(tmp_path, cifar_mirror):
    mirror, _, _ = cifar_mirror
    root = tmp_path / "cifar10"
    prepare_dataset("cifar10", root, {"mirrors": [str(mirror)], "download": False})
    batch = root / "cifar-10-batches-py" / "test_batch"
    batch.write_bytes(batch.read_bytes()[:-1] + b"\x00")
    with pytest.raises(DatasetUnavailableError, match="test_batch is missing or corrupt"):
        load_split(root, "train")


def test_svhn_from_mirror(tmp_path, monkeypatch):
    rng = np.random.default_rng(1)
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    split_list = {}
    for split, n in (("train", 5), ("test", 3)):
        x = rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8)
        y = np.array([[10], [1], [2], [3], [10]][:n], dtype=np.uint8)  # SVHN labels 0 as 10
        scipy.io.savemat(mirror / f"{split}_32x32.mat", {"X": x, "y": y})
        split_list[split] = [NO_NETWORK, f"{split}_32x32.mat", md5((mirror / f"{split}_32x32.mat").read_bytes())]
    monkeypatch.setattr(SVHN, "split_list", split_list)
    root = tmp_path / "svhn"
    manifest = prepare_dataset("svhn", root, {"mirrors": [str(mirror)], "download": False})
    assert manifest["splits"]["train"]["n"] == 5 and set(manifest["files"]) == {"train_32x32.mat", "test_32x32.mat"}
    images, labels = load_split(root, "train")
    assert images.shape == (5, 3, 32, 32) and labels.tolist() == [0, 1, 2, 3, 0]
    source = scipy.io.loadmat(mirror / "train_32x32.mat")["X"]
    np.testing.assert_array_equal(images.numpy(), source.transpose(3, 2, 0, 1))


def test_svhn_missing_and_no_download_is_a_clear_error(tmp_path, monkeypatch):
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
    archive = tar_gz({f"stl10_binary/{name}": content for name, content in files.items()})
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "stl10_binary.tar.gz").write_bytes(archive)
    monkeypatch.setattr(STL10, "train_list", [[n, md5(files[n])] for n in ("train_X.bin", "train_y.bin", "unlabeled_X.bin")])
    monkeypatch.setattr(STL10, "test_list", [[n, md5(files[n])] for n in ("test_X.bin", "test_y.bin")])
    monkeypatch.setattr(STL10, "tgz_md5", md5(archive))
    monkeypatch.setattr(STL10, "url", NO_NETWORK)
    return mirror, images


def test_stl10_with_its_unlabeled_split(tmp_path, stl10_mirror):
    mirror, images = stl10_mirror
    root = tmp_path / "stl10"
    manifest = prepare_dataset("stl10", root, {"mirrors": [str(mirror)], "download": False})
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
    prepare_dataset("stl10", root, {"mirrors": [str(mirror)], "download": False})
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
