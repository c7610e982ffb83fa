"""Encoders (backbones) and projection heads: built, checkpointed, loaded, imported, run.

The representation an encoder returns (:func:`representations`) is what the victim's
API answers with, what the linear probe reads and what the watermark's head is applied
to. Its dimension is measured from the model (a dummy forward), never hard-coded.

Every encoder takes images in [0, 1] (``preprocessing.model_input``) and applies the
input normalisation its weights expect itself, as its first step, so no caller can feed
it another one: victims, dumps, extraction, probes and watermark checks all go through
it. The normalisation is recorded in the encoder's checkpoint.
"""

from __future__ import annotations

import torch
from torch import nn

from .errors import CheckpointError
from .preprocessing import IMAGENET_NORMALISATION, ChannelAdapter, Normalise, model_input, symmetric_normalisation
from .registry import BACKBONES
from .runtime import autocast_dtype, to_device


class SmallCNN(nn.Module):
    """A small conv net for 2-core CPUs: 3x3 convs with BatchNorm/ReLU, stride-2
    downsampling after the first block, global average pooling. The first block runs at
    full resolution, so it is kept narrow (16 channels: 1.75x faster than 32 on CPU). The representation is
    non-negative (post-ReLU), which the Wasserstein loss needs."""

    def __init__(self, in_channels: int = 1, widths: tuple[int, ...] = (16, 64, 128, 256)):
        super().__init__()
        layers: list[nn.Module] = []
        previous = in_channels
        for i, width in enumerate(widths):
            stride = 1 if i == 0 else 2
            layers += [
                nn.Conv2d(previous, width, 3, stride=stride, padding=1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
            ]
            previous = width
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.pool(self.features(x)), 1)


class Encoder(nn.Module):
    """A backbone behind its input normalisation and a channel adapter; takes images in
    [0, 1]; ``net`` holds every parameter."""

    def __init__(self, net: nn.Module, backbone_channels: int, input_normalisation: dict | None = None):
        super().__init__()
        normalisation = input_normalisation or symmetric_normalisation(backbone_channels)
        if len(normalisation["mean"]) != backbone_channels:
            raise ValueError(
                f"input normalisation {normalisation} has {len(normalisation['mean'])} channels; "
                f"the backbone takes {backbone_channels}"
            )
        self.normalise = Normalise(normalisation["mean"], normalisation["std"])
        self.adapter = ChannelAdapter(backbone_channels)
        self.net = net

    @property
    def input_normalisation(self) -> dict:
        """What the checkpoint records: {"mean": [...], "std": [...]}, one per backbone channel."""
        return {"mean": list(self.normalise.mean_values), "std": list(self.normalise.std_values)}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.normalise(x)  # in float32, before any autocast
        dtype = autocast_dtype()
        if dtype is None:
            return self.net(self.adapter(x))
        with torch.autocast(x.device.type, dtype=dtype):
            out = self.net(self.adapter(x))
        return out.float()  # heads, losses and probes work in float32


def cifar_resnet(depth: int) -> nn.Module:
    """torchvision's ResNet with the CIFAR stem the paper uses (3x3 stride-1 first conv,
    no max-pool) and no classifier: the output is the pooled representation (512-d for
    ResNet18/34, 2048-d for ResNet50)."""
    import torchvision  # only for ResNets: its import is slow

    constructors = {18: torchvision.models.resnet18, 34: torchvision.models.resnet34, 50: torchvision.models.resnet50}
    net = constructors[depth](weights=None)
    net.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
    net.maxpool = nn.Identity()
    net.fc = nn.Identity()
    return net


def imagenet_resnet50() -> nn.Module:
    """torchvision's ResNet50 with its ImageNet stem and no classifier (2048-d): the
    architecture of the public SimSiam ImageNet checkpoint."""
    import torchvision

    net = torchvision.models.resnet50(weights=None)
    net.fc = nn.Identity()
    return net




def build_encoder(spec: dict, in_channels: int, image_size: int, input_normalisation: dict | None = None) -> nn.Module:
    """Build an encoder from its config ``spec`` (``{"name": ..., **options}``) for
    images of ``in_channels`` channels.

    ``input_normalisation`` ({"mean": [...], "std": [...]}, one per backbone channel) is
    what its weights expect; None: [-1, 1] (:func:`symmetric_normalisation`), what every
    encoder trained here uses, stolen copies included (the attacker's choice: the API
    takes images, its normalisation is the victim's secret).

    Sets ``encoder.representation_dim`` by running one dummy image through it.
    """
    name = spec["name"]
    if name == "small_cnn":
        channels = spec.get("in_channels", in_channels)
        net = SmallCNN(channels, tuple(spec.get("widths", (16, 64, 128, 256))))
    elif name in ("resnet18", "resnet34", "resnet50"):
        channels, net = 3, cifar_resnet(int(name.removeprefix("resnet")))
    elif name == "resnet50_imagenet":
        channels, net = 3, imagenet_resnet50()
    else:
        raise ValueError(f"unknown backbone {name!r}; known: {', '.join(BACKBONES)}")
    # Channels-last weights, as Normalise's output.
    encoder = Encoder(net, channels, input_normalisation).to(memory_format=torch.channels_last)
    encoder.image_size = image_size  # the input size it is built (and trained) for
    encoder.representation_dim = representation_dim(encoder, in_channels, image_size)
    return encoder


@torch.no_grad()
def representation_dim(encoder: nn.Module, in_channels: int, image_size: int) -> int:
    was_training = encoder.training
    encoder.eval()
    dim = encoder(torch.zeros(2, in_channels, image_size, image_size)).shape[1]
    encoder.train(was_training)
    return int(dim)


@torch.no_grad()
def representations(
    encoder: nn.Module, images: torch.Tensor, batch_size: int = 1024, device: torch.device = torch.device("cpu")
) -> torch.Tensor:
    """The frozen encoder's representation of uint8 ``images`` (eval mode, no grad),
    resized to its input size; the encoder applies its own input normalisation."""
    encoder.eval()
    size = getattr(encoder, "image_size", None)
    out = [
        encoder(model_input(to_device(images[i : i + batch_size], device), size)).float().cpu()
        for i in range(0, len(images), batch_size)
    ]
    return torch.cat(out)


def projection_head(in_dim: int, out_dim: int = 128) -> nn.Module:
    """SimCLR's head g: Linear(d, d) - ReLU - Linear(d, out_dim) (docs/paper.md, Victims)."""
    return nn.Sequential(nn.Linear(in_dim, in_dim), nn.ReLU(inplace=True), nn.Linear(in_dim, out_dim))


# Random-init encoders (the floor of probes and the watermark's null) draw their weights
# from this offset plus a seed: at the victims' own seed they would be a victim's initial
# weights, which its trained features still resemble.
RANDOM_INIT_SEED_OFFSET = 1_000_003


def random_init_encoder(spec: dict, in_channels: int, image_size: int, seed: int) -> nn.Module:
    """The ``spec`` architecture with seeded random weights, never trained."""
    torch.manual_seed(RANDOM_INIT_SEED_OFFSET + seed)
    return build_encoder(spec, in_channels, image_size)


def save_encoder(path, encoder: nn.Module, backbone: dict, in_channels: int, image_size: int, **meta) -> None:
    """Checkpoint an encoder with everything needed to rebuild it (and what made it),
    its input normalisation included: read from the encoder itself, so the checkpoint
    records what the encoder was trained (or imported) with."""
    from .io import save_checkpoint

    save_checkpoint(
        path,
        encoder=encoder.state_dict(),
        backbone=backbone,
        in_channels=in_channels,
        image_size=image_size,
        representation_dim=encoder.representation_dim,
        input_normalisation=encoder.input_normalisation,
        **meta,
    )


def load_suspect(kind: str, path, victim_meta: dict, expected_hash: str | None, seed: int | None = None) -> tuple[nn.Module, dict]:
    """An ownership test's suspect and its checkpoint metadata: a random-init encoder of
    the victim's architecture (``kind`` random_init, weights drawn from ``seed`` as the
    random-init probes draw them; no metadata), or the checkpoint at ``path``, checked
    against ``expected_hash``: its own config hash for a victim or an independent twin,
    its victim's for a copy or an own-SSL encoder."""
    if kind == "random_init":
        return random_init_encoder(victim_meta["backbone"], victim_meta["in_channels"], victim_meta["image_size"], seed), {}
    key = "config_hash" if kind in ("victim", "independent") else "victim_config_hash"
    return load_encoder(path, expect={key: expected_hash})


def load_encoder(path, expect: dict | None = None) -> tuple[nn.Module, dict]:
    """Rebuild an encoder from :func:`save_encoder`'s checkpoint (``weights_only=True``).

    ``expect``: metadata the checkpoint must carry (e.g. the victim's ``config_hash``),
    so a checkpoint made by another victim or config than its path claims is refused.
    """
    from .io import load_checkpoint, rebuild_hint

    checkpoint = load_checkpoint(path)
    missing = [k for k in ("encoder", "backbone", "in_channels", "image_size") if k not in checkpoint]
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks {missing}; it was not written by save_encoder")
    for key, value in (expect or {}).items():
        if checkpoint.get(key) != value:
            raise CheckpointError(
                f"checkpoint {path} has {key}={checkpoint.get(key)!r}, expected {value!r}: it was made by another "
                "victim or config than its path claims; delete it and rerun the rule that makes it"
            )
    normalisation = checkpoint.get("input_normalisation")
    if normalisation is None:
        # Written before checkpoints recorded their normalisation. Every encoder trained
        # here was trained and served on [-1, 1], which is then the default (so those
        # results stay valid); an imported one was fed [-1, 1] whatever its weights
        # expected (ImageNet's statistics for SimSiam's), so it is refused.
        if "source_sha256" in checkpoint:
            raise CheckpointError(
                f"checkpoint {path} was imported before checkpoints recorded their input normalisation "
                f"(it would be fed the wrong one). {rebuild_hint(path)}"
            )
    elif not isinstance(normalisation, dict) or set(normalisation) != {"mean", "std"}:
        raise CheckpointError(
            f"checkpoint {path} has a malformed input_normalisation {normalisation!r}. {rebuild_hint(path)}"
        )
    try:
        encoder = build_encoder(
            checkpoint["backbone"], checkpoint["in_channels"], checkpoint["image_size"], normalisation
        )
    except ValueError as err:  # a normalisation that does not fit the backbone
        raise CheckpointError(f"checkpoint {path}: {err}") from err
    try:
        encoder.load_state_dict(checkpoint["encoder"])
    except RuntimeError as err:
        raise CheckpointError(f"checkpoint {path} does not fit backbone {checkpoint['backbone']}: {err}") from err
    encoder.eval()
    meta = {k: v for k, v in checkpoint.items() if k not in ("encoder", "head")}
    return encoder, meta


# Presets for external checkpoints: which keys hold the encoder, what to drop, and the
# input normalisation the weights were trained with (None: [-1, 1], this project's).
EXTERNAL_FORMATS = {
    # facebookresearch/simsiam's released ImageNet checkpoints: {"state_dict": ...} with
    # keys "module.encoder.*"; "module.encoder.fc.*" is the projector, dropped to expose
    # the 2048-d pooled representation. Trained on ImageNet-normalised images.
    "simsiam_imagenet": {
        "container": "state_dict",
        "prefix": "module.encoder.",
        "drop": ["fc."],
        "input_normalisation": IMAGENET_NORMALISATION,
    },
    # A bare state dict of the backbone itself, assumed trained as this project trains.
    "state_dict": {"container": None, "prefix": "", "drop": [], "input_normalisation": None},
}


def import_encoder(path, checkpoint_format: str, backbone: dict, in_channels: int, image_size: int) -> nn.Module:
    """Load an externally trained encoder (``weights_only=True``) into ``backbone``, with
    the input normalisation of its format (``EXTERNAL_FORMATS``).

    Refuses checkpoints that need arbitrary pickled objects, lack the expected keys, or
    whose shapes do not fit the configured backbone, with an error naming the file.
    """
    from .io import load_checkpoint

    if checkpoint_format not in EXTERNAL_FORMATS:
        raise ValueError(f"unknown checkpoint format {checkpoint_format!r}; known: {sorted(EXTERNAL_FORMATS)}")
    preset = EXTERNAL_FORMATS[checkpoint_format]
    checkpoint = load_checkpoint(path, external=True)
    if not isinstance(checkpoint, dict):
        raise CheckpointError(f"{path} holds a {type(checkpoint).__name__}, not a dict of weights (format {checkpoint_format})")
    if preset["container"] is not None:
        if preset["container"] not in checkpoint:
            raise CheckpointError(f"{path} has no {preset['container']!r} entry (format {checkpoint_format})")
        checkpoint = checkpoint[preset["container"]]
        if not isinstance(checkpoint, dict):
            raise CheckpointError(f"{path}: {preset['container']!r} holds a {type(checkpoint).__name__}, not a dict of weights")
    prefix = preset["prefix"]
    state = {
        key.removeprefix(prefix): value
        for key, value in checkpoint.items()
        if key.startswith(prefix) and not any(key.removeprefix(prefix).startswith(d) for d in preset["drop"])
    }
    if not state:
        raise CheckpointError(f"{path} holds no keys starting with {prefix!r} (format {checkpoint_format})")
    encoder = build_encoder(backbone, in_channels, image_size, preset["input_normalisation"])
    try:
        encoder.net.load_state_dict(state)
    except RuntimeError as err:
        raise CheckpointError(f"{path} does not fit backbone {backbone['name']}: {err}") from err
    return encoder.eval()
