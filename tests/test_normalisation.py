"""Input normalisation per encoder: every checkpoint records the normalisation its
encoder expects, and every encoder applies its own (victims, dumps, extraction, probes).

The imported SimSiam ResNet50 must see ImageNet-normalised images, as torchvision's
ResNet50 with the same weights does; encoders trained here keep [-1, 1].
"""

import pytest
import torch
from torch import nn

from sslsteal.backbones import build_encoder, import_encoder, load_encoder, representations, save_encoder
from sslsteal.data import make_synthetic
from sslsteal.errors import CheckpointError
from sslsteal.extraction import train_stolen
from sslsteal.io import file_sha256, save_checkpoint
from sslsteal.preprocessing import IMAGENET_NORMALISATION, symmetric_normalisation
from sslsteal.runtime import configure_torch, seed_everything
from sslsteal.victim import train_victim

SMALL = {"name": "small_cnn", "widths": [4, 8]}
SYMMETRIC_GREY = {"mean": [0.5], "std": [0.5]}


def synthetic(n=32, size=12, channels=1):
    arrays = make_synthetic(seed=0, n_train=n, n_test=2, image_size=size, channels=channels, num_classes=4)
    return torch.from_numpy(arrays["train_images"])


class SimSiam(nn.Module):
    """facebookresearch/simsiam's model (simsiam/builder.py): torchvision's ResNet50 whose
    fc is the 3-layer projector, and a bottleneck predictor beside it."""

    def __init__(self, dim=2048, pred_dim=512):
        import torchvision

        super().__init__()
        self.encoder = torchvision.models.resnet50(num_classes=dim, zero_init_residual=True)
        prev_dim = self.encoder.fc.weight.shape[1]
        self.encoder.fc = nn.Sequential(
            nn.Linear(prev_dim, prev_dim, bias=False), nn.BatchNorm1d(prev_dim), nn.ReLU(inplace=True),
            nn.Linear(prev_dim, prev_dim, bias=False), nn.BatchNorm1d(prev_dim), nn.ReLU(inplace=True),
            self.encoder.fc, nn.BatchNorm1d(dim, affine=False),
        )
        self.predictor = nn.Sequential(
            nn.Linear(dim, pred_dim, bias=False), nn.BatchNorm1d(pred_dim), nn.ReLU(inplace=True),
            nn.Linear(pred_dim, dim),
        )


def released_simsiam_checkpoint(path):
    """A checkpoint as main_simsiam.py saves it (the model inside DistributedDataParallel,
    hence "module."), with random weights; returns the model."""
    torch.manual_seed(0)
    model = SimSiam()
    # zero_init_residual zeroes the last BatchNorm of every block, and fresh running
    # statistics are (0, 1): randomised so every layer and statistic shapes the features.
    with torch.no_grad():
        for module in model.encoder.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0, 0.1)
                module.running_mean.normal_(0, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
    state = {f"module.{key}": value for key, value in model.state_dict().items()}
    torch.save({"epoch": 100, "arch": "resnet50", "state_dict": state, "optimizer": optimizer.state_dict()}, path)
    return model


def test_imported_simsiam_resnet50_sees_imagenet_normalisation(tmp_path):
    """The released format imported as import_victim.py does, saved, reloaded (as the dump
    and probe jobs do) and queried with uint8 images: the features are torchvision's
    ResNet50's with the same weights on images/255 normalised with ImageNet's statistics."""
    import torchvision

    configure_torch(1)
    source = tmp_path / "checkpoint_0099.pth.tar"
    model = released_simsiam_checkpoint(source)
    imported = import_encoder(source, "simsiam_imagenet", {"name": "resnet50_imagenet"}, 3, 64)
    path = tmp_path / "encoder.pt"
    save_encoder(path, imported, {"name": "resnet50_imagenet"}, 3, 64, victim="simsiam_imagenet",
                 method="simsiam", config_hash="aaaa", source_sha256=file_sha256(source))
    encoder, meta = load_encoder(path, expect={"config_hash": "aaaa"})
    assert meta["input_normalisation"] == IMAGENET_NORMALISATION

    reference = torchvision.models.resnet50(weights=None)
    reference.fc = nn.Identity()
    backbone = {k: v for k, v in model.encoder.state_dict().items() if not k.startswith("fc.")}
    reference.load_state_dict(backbone)
    reference.eval()
    images = torch.randint(0, 256, (2, 3, 64, 64), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    normalise = torchvision.transforms.Normalize(IMAGENET_NORMALISATION["mean"], IMAGENET_NORMALISATION["std"])
    with torch.no_grad():
        expected = reference(normalise(images.float() / 255))
    features = representations(encoder, images)
    assert features.dtype == torch.float32 and features.shape == (2, 2048)
    # Equal up to float32 rounding (channels-last vs contiguous convolutions): within
    # 1e-5 of the features' scale (random weights make them reach hundreds).
    assert torch.allclose(features, expected, rtol=1e-5, atol=1e-5 * expected.abs().max().item())
    # The test can tell: the [-1, 1] the SimSiam encoder used to be fed gives other features.
    wrong = build_encoder({"name": "resnet50_imagenet"}, 3, 64)
    wrong.net.load_state_dict(encoder.net.state_dict())
    scale = expected.abs().max().item()
    assert not torch.allclose(representations(wrong, images), expected, rtol=1e-2, atol=1e-2 * scale)


def test_trained_victim_records_and_applies_minus_one_one(tmp_path):
    configure_torch(1)
    images = synthetic()
    recipe = {"epochs": 1, "batch_size": 16, "lr": 0.002, "temperature": 0.2, "projection_dim": 8}
    encoder, _, _ = train_victim("simclr", images, SMALL, recipe, seed_everything(0))
    save_encoder(tmp_path / "victim.pt", encoder, SMALL, 1, 12, config_hash="aaaa")
    victim, meta = load_encoder(tmp_path / "victim.pt")
    assert meta["input_normalisation"] == SYMMETRIC_GREY == encoder.input_normalisation
    # representations() (dumps, probes) feed the encoder's own normalisation: [-1, 1].
    with torch.no_grad():
        manual = victim.net(images.float() / 255 * 2 - 1)
    torch.testing.assert_close(representations(victim, images), manual)
    # An RGB backbone records it on each of its channels.
    assert build_encoder(SMALL, 3, 12).input_normalisation == {"mean": [0.5] * 3, "std": [0.5] * 3}


def test_stolen_copy_records_the_normalisation_it_was_trained_with(tmp_path):
    configure_torch(1)
    images = synthetic()
    answers = torch.randn(len(images), 8)
    stolen, _ = train_stolen(
        images, answers, loss="mse", loss_options={}, backbone=SMALL, in_channels=1, image_size=12,
        with_head=False, steps=2, batch_size=16, lr=0.01, weight_decay=0.0, generator=seed_everything(0),
    )
    # Our choice: the project's [-1, 1], not the victim's (the API does not expose it).
    assert stolen.input_normalisation == SYMMETRIC_GREY
    save_encoder(tmp_path / "stolen.pt", stolen, SMALL, 1, 12, victim_config_hash="aaaa")
    reloaded, meta = load_encoder(tmp_path / "stolen.pt", expect={"victim_config_hash": "aaaa"})
    assert meta["input_normalisation"] == SYMMETRIC_GREY
    torch.testing.assert_close(representations(reloaded, images), representations(stolen, images))


def test_a_recorded_normalisation_is_what_the_reloaded_encoder_applies(tmp_path):
    custom = {"mean": [0.2, 0.3, 0.4], "std": [0.5, 0.6, 0.7]}
    encoder = build_encoder(SMALL, 3, 12, custom)
    save_encoder(tmp_path / "e.pt", encoder, SMALL, 3, 12)
    reloaded, meta = load_encoder(tmp_path / "e.pt")
    assert meta["input_normalisation"] == custom == reloaded.input_normalisation
    images = synthetic(n=4, channels=3)
    mean, std = (torch.tensor(custom[k]).view(1, 3, 1, 1) for k in ("mean", "std"))
    with torch.no_grad():
        manual = reloaded.net((images.float() / 255 - mean) / std)
    torch.testing.assert_close(representations(reloaded, images), manual)


def test_grey_images_into_an_imagenet_normalised_encoder():
    """A grey image is normalised as the repeated RGB image would be, per channel."""
    encoder = build_encoder(SMALL, 3, 12, IMAGENET_NORMALISATION).eval()
    grey = synthetic(n=4)
    torch.testing.assert_close(representations(encoder, grey), representations(encoder, grey.expand(-1, 3, -1, -1)))


def test_symmetric_normalisation_is_bitwise_the_old_scale():
    """(x - 0.5) / 0.5 is exactly 2x - 1 in floating point: trained encoders' numbers
    are unchanged by carrying their normalisation."""
    encoder = build_encoder(SMALL, 1, 12)
    pixels = torch.arange(144.0).view(1, 1, 12, 12) / 255
    x = torch.cat([torch.rand(1, 1, 12, 12), torch.rand(1, 1, 12, 12) * 1e-3, pixels])
    assert torch.equal(encoder.normalise(x), x * 2.0 - 1.0)


def test_normalisation_must_fit_the_backbone(tmp_path):
    with pytest.raises(ValueError, match="has 1 channels; the backbone takes 3"):
        build_encoder(SMALL, 3, 12, SYMMETRIC_GREY)
    with pytest.raises(ValueError, match="std must be positive"):
        build_encoder(SMALL, 1, 12, {"mean": [0.5], "std": [0.0]})
    encoder = build_encoder(SMALL, 1, 12)
    save_checkpoint(tmp_path / "e.pt", encoder=encoder.state_dict(), backbone=SMALL, in_channels=1, image_size=12,
                    input_normalisation={"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]})
    with pytest.raises(CheckpointError, match="e.pt.*has 3 channels"):
        load_encoder(tmp_path / "e.pt")


def old_checkpoint(path, encoder, **meta):
    """A checkpoint written before checkpoints recorded their input normalisation."""
    save_checkpoint(path, encoder=encoder.state_dict(), backbone=SMALL, in_channels=1, image_size=12,
                    representation_dim=encoder.representation_dim, **meta)


def test_checkpoints_from_before_the_key(tmp_path):
    encoder = build_encoder(SMALL, 1, 12)
    # Trained here: trained and served on [-1, 1], which they keep.
    old_checkpoint(tmp_path / "trained.pt", encoder, config_hash="aaaa")
    loaded, meta = load_encoder(tmp_path / "trained.pt", expect={"config_hash": "aaaa"})
    assert loaded.input_normalisation == SYMMETRIC_GREY and "input_normalisation" not in meta
    # Imported: it was fed [-1, 1] whatever its weights expected; refused, naming the file.
    old_checkpoint(tmp_path / "imported.pt", encoder, config_hash="aaaa", source_sha256="0" * 64)
    with pytest.raises(CheckpointError, match=r"imported\.pt was imported before .*input normalisation.*rebuild"):
        load_encoder(tmp_path / "imported.pt")


def test_external_formats_record_their_normalisation(tmp_path):
    source = build_encoder(SMALL, 1, 12)
    torch.save(source.net.state_dict(), tmp_path / "bare.pt")
    # A bare state dict: assumed trained as this project trains.
    assert import_encoder(tmp_path / "bare.pt", "state_dict", SMALL, 1, 12).input_normalisation == SYMMETRIC_GREY
    assert symmetric_normalisation(1) == SYMMETRIC_GREY
