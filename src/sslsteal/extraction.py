"""Model extraction from the victim's answers (docs/paper.md, "The three extraction approaches").

- ``direct``: the API returned h_v = f_v(x) for each query image x; the stolen encoder
  f_s is trained so that f_s(x) matches h_v under a stealing loss. No head.
- ``head_access``: the API returned the projection z_v = g_v(f_v(x)); the stolen encoder
  gets its own head g_s and g_s(f_s(x)) is trained to match z_v.
- ``head_recreation``: the API returned h_v only, for two augmented views of each
  query image (both are API calls). The attacker first fits its own head g' on those
  answers with the SimCLR loss (InfoNCE between the two views), then trains f_s plus
  its own head g_s so that g_s(f_s(x_a)) matches g'(h_v(x_a)) for every view x_a.

In every approach the head is dropped and f_s's representation is what gets probed.
The stolen encoder sees exactly the images the victim answered, resized and
channel-converted to the victim's input as the API would. Its input normalisation is
this project's default ([-1, 1]), not the victim's: the API takes images, how the
victim normalises them is not part of what it exposes. The stolen checkpoint records
the normalisation the copy was trained with (``save_encoder`` reads it from the copy).
"""

from __future__ import annotations

import torch
from torch import nn

from .backbones import build_encoder, projection_head
from .losses import info_nce, stealing_loss
from .preprocessing import model_input
from .registry import APPROACHES
from .runtime import to_device
from .training import fit



def train_stolen(
    inputs: torch.Tensor,
    targets: torch.Tensor,
    *,
    loss: str,
    loss_options: dict,
    backbone: dict,
    in_channels: int,
    image_size: int,
    with_head: bool,
    steps: int,
    batch_size: int,
    lr: float,
    weight_decay: float,
    generator: torch.Generator,
    device: torch.device = torch.device("cpu"),
    description: str = "steal",
) -> tuple[nn.Module, list[dict]]:
    """Train a stolen encoder (plus its own head when ``with_head``) so that its output
    on uint8 ``inputs`` matches ``targets`` (constants) under ``loss``; return the
    encoder without the head, and the training log."""
    if len(inputs) != len(targets):
        raise ValueError(f"{len(inputs)} query images but {len(targets)} answers")
    stolen = build_encoder(backbone, in_channels, image_size).to(device)
    modules: list[nn.Module] = [stolen]
    head = None
    if with_head:
        # The attacker does not know the victim's head; it uses SimCLR's shape, sized to the answers.
        head = projection_head(stolen.representation_dim, targets.shape[1]).to(device)
        modules.append(head)
    elif stolen.representation_dim != targets.shape[1]:
        raise ValueError(
            f"direct extraction needs the stolen representation ({stolen.representation_dim}-d) to match the "
            f"victim's answers ({targets.shape[1]}-d); choose a stolen backbone of that width"
        )
    objective = stealing_loss(loss, **loss_options)
    targets = targets.to(device)

    def batch_loss(indices: torch.Tensor) -> torch.Tensor:
        # Resized on the device, from the uint8 batch; the copy normalises it itself.
        output = stolen(model_input(to_device(inputs[indices], device), image_size))
        if head is not None:
            output = head(output)
        return objective(output, targets[indices])

    history = fit(
        modules,
        len(inputs),
        batch_loss,
        epochs=1,
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        weight_decay=weight_decay,
        generator=generator,
        description=description,
    )
    return stolen, history


def recreate_head(
    view_answers: torch.Tensor,
    *,
    output_dim: int,
    temperature: float,
    epochs: int,
    batch_size: int,
    lr: float,
    generator: torch.Generator,
) -> tuple[nn.Module, list[dict]]:
    """Fit the attacker's head g' = Linear(d,d)-ReLU-Linear(d,k) on the victim's answers
    to two views of each image (``view_answers``: V x N x d, V >= 2), with the SimCLR
    loss between views 0 and 1: InfoNCE(g'(h_v(x_1)), g'(h_v(x_2)))."""
    if view_answers.ndim != 3 or view_answers.shape[0] < 2:
        raise ValueError(f"head recreation needs answers to at least two views per image, got {tuple(view_answers.shape)}")
    head = projection_head(view_answers.shape[2], output_dim)
    first, second = view_answers[0], view_answers[1]

    def batch_loss(indices: torch.Tensor) -> torch.Tensor:
        return info_nce(head(first[indices]), head(second[indices]), temperature=temperature)

    history = fit(
        [head],
        view_answers.shape[1],
        batch_loss,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        weight_decay=0.0,
        generator=generator,
        description="recreate head",
    )
    return head.eval(), history


def steal(
    approach: str,
    pool_images: torch.Tensor,
    dump,
    budget: int,
    *,
    loss: str,
    loss_options: dict,
    approach_options: dict,
    backbone: dict,
    steps: int,
    batch_size: int,
    lr: float,
    weight_decay: float,
    generator: torch.Generator,
    device: torch.device = torch.device("cpu"),
) -> tuple[nn.Module, list[dict], dict]:
    """Run one extraction approach on the first ``budget`` images of the query pool.

    ``dump`` holds the victim's answers (``dumps.Dump``): representations for
    ``direct``, projections for ``head_access``, representations of augmented views for
    ``head_recreation`` (whose views are regenerated here from the seed and checked
    against the checksum of those the victim answered). Returns the stolen encoder, its
    log, and the query accounting: distinct query images, API calls, the optimiser
    steps and the SoftNN temperature used (``temperature_factor`` resolved against the
    answers this budget bought).
    """
    from .queries import augmented_views, images_sha256

    if approach not in APPROACHES:
        raise ValueError(f"unknown extraction approach {approach!r}; known: {', '.join(APPROACHES)}")
    meta = dump.meta
    common = dict(
        backbone=backbone, in_channels=meta["victim_in_channels"],
        image_size=meta["victim_image_size"], steps=steps, batch_size=batch_size, lr=lr,
        weight_decay=weight_decay, generator=generator, device=device, description=f"steal {approach} {loss}",
    )
    if approach == "direct":
        options = resolve_temperature(loss_options, dump.representation[:budget])
        stolen, history = train_stolen(pool_images[:budget], dump.representation[:budget], with_head=False, loss=loss, loss_options=options, **common)
        return stolen, history, {"queries": budget, "api_calls": budget, "steps": steps, **options}
    if approach == "head_access":
        if dump.projection is None:
            raise ValueError(f"the dump of victim {meta['victim']} holds no projections (the victim has no head)")
        options = resolve_temperature(loss_options, dump.projection[:budget])
        stolen, history = train_stolen(pool_images[:budget], dump.projection[:budget], with_head=True, loss=loss, loss_options=options, **common)
        return stolen, history, {"queries": budget, "api_calls": budget, "steps": steps, **options}

    n_views = meta["n_views"]
    views = augmented_views(pool_images, n_views, approach_options["view_seed"], approach_options.get("augmentation", {}))
    if images_sha256(views) != meta["views_sha256"]:
        raise ValueError(
            f"the views regenerated from seed {approach_options['view_seed']} differ from those victim "
            f"{meta['victim']} answered; rebuild the views dump"
        )
    view_answers = dump.representation[:, :budget]
    head, head_history = recreate_head(
        view_answers,
        output_dim=approach_options.get("head_dim", 128),
        temperature=approach_options["temperature"],
        epochs=approach_options["head_epochs"],
        batch_size=approach_options["head_batch_size"],
        lr=approach_options["head_lr"],
        generator=generator,
    )
    with torch.no_grad():
        targets = head(view_answers.reshape(-1, view_answers.shape[-1]))
    inputs = views[:, :budget].reshape(-1, *views.shape[2:])
    options = resolve_temperature(loss_options, targets)
    stolen, history = train_stolen(inputs, targets, with_head=True, loss=loss, loss_options=options, **common)
    history = [{"phase": "recreate_head", **row} for row in head_history] + [{"phase": "steal", **row} for row in history]
    return stolen, history, {"queries": budget, "api_calls": budget * n_views, "steps": steps, **options}


def median_squared_distance(answers: torch.Tensor, n: int = 1000) -> float:
    """The median squared Euclidean distance between two of the first ``n`` answers
    (pairs of distinct rows): the scale of the answers' neighbourhoods."""
    x = answers.reshape(-1, answers.shape[-1])[:n].double()
    distances = torch.cdist(x, x).pow(2)
    pairs = distances[torch.triu_indices(len(x), len(x), offset=1).unbind()]
    return pairs.median().item()


def resolve_temperature(loss_options: dict, answers: torch.Tensor | None) -> dict:
    """SoftNN's ``temperature_factor`` as an absolute temperature: factor x the median
    pairwise squared distance of the answers (docs/paper.md's T = 100 was set for CIFAR
    ResNet representations; at another scale nearly every pair would get the same
    weight, or none but the nearest)."""
    if "temperature_factor" not in loss_options:
        return dict(loss_options)
    options = {k: v for k, v in loss_options.items() if k != "temperature_factor"}
    options["temperature"] = loss_options["temperature_factor"] * median_squared_distance(answers)
    return options
