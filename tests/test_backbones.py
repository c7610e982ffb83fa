"""Backbones: the paper's CIFAR-stem ResNets, channel conversion, checkpoint safety."""

import pickle

import pytest
import torch
from torch import nn

from sslsteal.backbones import build_encoder, import_encoder, load_encoder, save_encoder
from sslsteal.errors import CheckpointError
from sslsteal.preprocessing import IMAGENET_NORMALISATION

from mirrors import simsiam_checkpoint


@pytest.mark.parametrize("name, dim", [("resnet18", 512), ("resnet34", 512), ("resnet50", 2048)])
def test_cifar_resnets(name, dim):
    encoder = build_encoder({"name": name}, in_channels=3, image_size=32)
    assert encoder.representation_dim == dim
    conv1 = encoder.net.conv1
    assert conv1.kernel_size == (3, 3) and conv1.stride == (1, 1)
    assert isinstance(encoder.net.maxpool, nn.Identity) and isinstance(encoder.net.fc, nn.Identity)


def test_grey_images_feed_rgb_backbones_and_back():
    rgb_backbone = build_encoder({"name": "resnet18"}, in_channels=1, image_size=16)
    grey = torch.rand(2, 1, 16, 16)
    # Grey repeated to 3 channels equals feeding the repeated image explicitly.
    rgb_backbone.eval()
    torch.testing.assert_close(rgb_backbone(grey), rgb_backbone(grey.repeat(1, 3, 1, 1)))
    grey_backbone = build_encoder({"name": "small_cnn", "widths": [4, 8], "in_channels": 1}, in_channels=3, image_size=16)
    assert grey_backbone(torch.rand(2, 3, 16, 16)).shape == (2, 8)


class NotATensor:
    def __reduce__(self):  # what a malicious checkpoint would do
        return (print, ("arbitrary code ran",))


def test_checkpoint_with_pickled_objects_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"encoder": NotATensor()}, path)
    with pytest.raises(CheckpointError, match="weights_only=True"):
        load_encoder(path)


def test_truncated_checkpoint_names_the_file(tmp_path):
    encoder = build_encoder({"name": "small_cnn", "widths": [4, 8]}, 1, 12)
    path = tmp_path / "victim.pt"
    save_encoder(path, encoder, {"name": "small_cnn", "widths": [4, 8]}, 1, 12)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CheckpointError, match=str(path)):
        load_encoder(path)


def test_import_simsiam_format(tmp_path):
    path = tmp_path / "checkpoint_0099.pth.tar"
    source = simsiam_checkpoint(path, "resnet18")
    encoder = import_encoder(path, "simsiam_imagenet", {"name": "resnet18"}, 3, 32)
    source.eval()
    x = torch.rand(2, 3, 32, 32)
    torch.testing.assert_close(encoder(x), source(x))
    assert encoder.representation_dim == 512


def test_import_refuses_shape_mismatch(tmp_path):
    path = tmp_path / "checkpoint.pth.tar"
    simsiam_checkpoint(path, "resnet18")
    with pytest.raises(CheckpointError, match="does not fit backbone resnet34"):
        import_encoder(path, "simsiam_imagenet", {"name": "resnet34"}, 3, 32)


def test_import_refuses_pickled_objects(tmp_path):
    path = tmp_path / "checkpoint.pth.tar"
    with open(path, "wb") as f:
        pickle.dump({"state_dict": NotATensor()}, f)
    with pytest.raises(CheckpointError, match="weights_only=True"):
        import_encoder(path, "simsiam_imagenet", {"name": "resnet18"}, 3, 32)


def test_bad_imported_checkpoints_are_named_with_the_user_s_fix(tmp_path):
    """A user's checkpoint is fetched again, not rebuilt: no "rebuild only it" hint."""
    folder = tmp_path / "folder.pth.tar"
    folder.mkdir()
    with pytest.raises(CheckpointError, match="folder.pth.tar is a folder"):
        import_encoder(folder, "simsiam_imagenet", {"name": "resnet18"}, 3, 32)
    path = tmp_path / "checkpoint.pth.tar"
    simsiam_checkpoint(path, "resnet18")
    truncated = tmp_path / "truncated.pth.tar"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="truncated.pth.tar") as error:
        import_encoder(truncated, "simsiam_imagenet", {"name": "resnet18"}, 3, 32)
    assert "download it again" in str(error.value) and "rebuild only it" not in str(error.value)
    listed = tmp_path / "list.pth.tar"
    torch.save([torch.zeros(2)], listed)
    with pytest.raises(CheckpointError, match="list.pth.tar holds a list, not a dict"):
        import_encoder(listed, "simsiam_imagenet", {"name": "resnet18"}, 3, 32)


def test_checkpoint_with_another_config_hash_is_refused(tmp_path):
    from sslsteal.backbones import build_encoder, load_encoder, save_encoder
    from sslsteal.errors import CheckpointError

    encoder = build_encoder({"name": "small_cnn", "widths": [4, 8]}, 1, 12)
    save_encoder(tmp_path / "e.pt", encoder, {"name": "small_cnn", "widths": [4, 8]}, 1, 12, config_hash="aaaa")
    load_encoder(tmp_path / "e.pt", expect={"config_hash": "aaaa"})
    with pytest.raises(CheckpointError, match="config_hash='aaaa', expected 'bbbb'"):
        load_encoder(tmp_path / "e.pt", expect={"config_hash": "bbbb"})


def test_import_simsiam_resnet50_imagenet_layout(tmp_path):
    """The public SimSiam ResNet50: torchvision's ResNet50 keys under module.encoder.,
    its 3-layer projector as module.encoder.fc.*, and the predictor beside it; imported
    into resnet50_imagenet with fc and the predictor dropped, 2048-d at 224 px."""
    import torchvision

    source = torchvision.models.resnet50(weights=None)
    source.fc = nn.Identity()
    state = {f"module.encoder.{k}": v for k, v in source.state_dict().items()}
    for key, shape in {"fc.0.weight": (2048, 2048), "fc.1.running_mean": (2048,), "fc.6.weight": (2048, 2048)}.items():
        state[f"module.encoder.{key}"] = torch.randn(shape)
    state["module.predictor.0.weight"] = torch.randn(512, 2048)
    path = tmp_path / "checkpoint_0099.pth.tar"
    torch.save({"epoch": 100, "arch": "resnet50", "state_dict": state, "optimizer": {}}, path)
    encoder = import_encoder(path, "simsiam_imagenet", {"name": "resnet50_imagenet"}, 3, 224)
    assert encoder.representation_dim == 2048 and encoder.image_size == 224
    # Every backbone weight imported exactly; fc and the predictor left out.
    imported = encoder.net.state_dict()
    assert imported.keys() == source.state_dict().keys()
    for key, value in source.state_dict().items():
        assert torch.equal(imported[key], value), key
    source.eval()
    x = torch.rand(1, 3, 224, 224)
    # The imported encoder takes [0, 1] images and normalises them with ImageNet's
    # statistics itself. Channels-last vs contiguous convolutions: equal up to rounding.
    mean, std = (torch.tensor(IMAGENET_NORMALISATION[k]).view(1, 3, 1, 1) for k in ("mean", "std"))
    torch.testing.assert_close(encoder(x), source((x - mean) / std), rtol=1e-4, atol=1e-4)
