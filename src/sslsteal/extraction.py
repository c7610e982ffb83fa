"""Model extraction from the victim's answers (docs/paper.md, "The three extraction approaches").

- ``direct``: the API returned h_v = f_v(x) for each query image x; the stolen encoder
  f_s is trained so that f_s(x) matches h_v under a stealing loss. No head.
- ``head_access``: the API returned the projection z_v = g_v(f_v(x)); the stolen encoder
  gets its own head g_s and g_s(f_s(x)) is trained to match z_v.
- ``head_recreation``: the API returned h_v only, for two augmented views of each
  query image (both are API calls). The attacker first fits its own head g' on those
  answers with the SimCLR loss (InfoNCE between the two views), then trains f_s plus
  its own head g_s so that g_s(f_s(x_a)) matches g'(h_v(x_a)) for every view x_a.

Beyond the paper (docs/protocol.md, "Attacks beyond the paper"), two approaches without a
head, reading the same cached answers:

- ``stolenencoder`` (Liu et al., CCS 2022): the API returned h_v(x) once per image; f_s
  is trained so that both f_s(x) and f_s(A(x)) match it, A(x) an augmentation the
  attacker makes itself (fresh each step, no API call):
  L = l(f_s(x), h_v(x)) + lambda l(f_s(A(x)), h_v(x)).
- ``contsteal`` (Sha et al., CVPR 2023): the API returned h_v for ``n_views`` augmented
  views of each image (the views dump head recreation reads). Each step, each image's
  target is its answer to one of its views, drawn at random, and f_s sees a fresh
  augmentation of the image made on the attacker's side: L = l(f_s(A(x)), h_v(x_k)).
  With ``infonce`` (the other images of the batch as negatives) this is Cont-Steal's
  contrastive loss.

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

from .augment import simclr_view
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
    checkpoint: dict | None = None,
) -> tuple[nn.Module, list[dict]]:
    """Train a stolen encoder (plus its own head when ``with_head``) so that its output
    on uint8 ``inputs`` matches ``targets`` (constants) under ``loss``; return the
    encoder without the head, and the training log. ``checkpoint``: fit()'s
    ``resume_from``, ``save_state`` and ``save_every`` (``training.resumable``), as in
    every approach's training."""
    if len(inputs) != len(targets):
        raise ValueError(f"{len(inputs)} query images but {len(targets)} answers")
    head = None
    if with_head:
        stolen = build_encoder(backbone, in_channels, image_size).to(device)
        # The attacker does not know the victim's head; it uses SimCLR's shape, sized to the answers.
        head = projection_head(stolen.representation_dim, targets.shape[1]).to(device)
    else:
        stolen = _headless_copy(backbone, in_channels, image_size, targets.shape[1], "direct", device)
    modules: list[nn.Module] = [stolen] if head is None else [stolen, head]
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
        **(checkpoint or {}),
    )
    return stolen, history


def _headless_copy(backbone: dict, in_channels: int, image_size: int, answer_dim: int, approach: str, device: torch.device) -> nn.Module:
    """A fresh stolen encoder whose representation is compared with the answers as they are."""
    stolen = build_encoder(backbone, in_channels, image_size).to(device)
    if stolen.representation_dim != answer_dim:
        raise ValueError(
            f"{approach} extraction needs the stolen representation ({stolen.representation_dim}-d) to match the "
            f"victim's answers ({answer_dim}-d); choose a stolen backbone of that width"
        )
    return stolen


def stolenencoder_loss(
    stolen: nn.Module,
    images: torch.Tensor,
    answers: torch.Tensor,
    objective,
    *,
    weight: float,
    augmentation: dict,
    generator: torch.Generator,
) -> torch.Tensor:
    """StolenEncoder's objective on one batch: l(f_s(x), v) + weight * l(f_s(A(x)), v).

    ``images``: the query images as the encoder takes them (float [0, 1], the victim's
    size); ``answers``: the victim's h_v(x) for each; A(x) is one SimCLR view of each
    image drawn from ``generator`` (the attacker's own augmentation: no API call). The
    two terms are two forward passes, so batch normalisation sees each batch alone.
    """
    augmented = simclr_view(images, generator, augmentation)
    return objective(stolen(images), answers) + weight * objective(stolen(augmented), answers)


def train_stolenencoder(
    inputs: torch.Tensor,
    targets: torch.Tensor,
    *,
    weight: float,
    augmentation: dict,
    loss: str,
    loss_options: dict,
    backbone: dict,
    in_channels: int,
    image_size: int,
    steps: int,
    batch_size: int,
    lr: float,
    weight_decay: float,
    generator: torch.Generator,
    device: torch.device = torch.device("cpu"),
    description: str = "steal stolenencoder",
    checkpoint: dict | None = None,
) -> tuple[nn.Module, list[dict]]:
    """Train a stolen encoder (no head) with :func:`stolenencoder_loss` on uint8
    ``inputs`` and the victim's answers ``targets`` (N x D, one per image)."""
    if len(inputs) != len(targets):
        raise ValueError(f"{len(inputs)} query images but {len(targets)} answers")
    stolen = _headless_copy(backbone, in_channels, image_size, targets.shape[1], "stolenencoder", device)
    objective = stealing_loss(loss, **loss_options)
    targets = targets.to(device)

    def batch_loss(indices: torch.Tensor) -> torch.Tensor:
        images = model_input(to_device(inputs[indices], device), image_size)
        return stolenencoder_loss(
            stolen, images, targets[indices], objective, weight=weight, augmentation=augmentation, generator=generator
        )

    history = fit(
        [stolen], len(inputs), batch_loss, epochs=1, steps=steps, batch_size=batch_size, lr=lr,
        weight_decay=weight_decay, generator=generator, description=description, **(checkpoint or {}),
    )
    return stolen, history


def contsteal_batch(
    images: torch.Tensor,
    view_answers: torch.Tensor,
    indices: torch.Tensor,
    *,
    augmentation: dict,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One Cont-Steal batch: (the attacker's views, the targets, the answered view chosen
    for each image).

    ``images``: the batch's query images as the encoder takes them (float [0, 1]);
    ``view_answers``: V x N x D, the victim's answers to the V views of every image;
    ``indices``: the batch's images. Each image's target is its answer to one view drawn
    uniformly from ``generator``; the copy sees a fresh SimCLR view of the image, drawn
    next from the same generator (another view than the answered one: made by the
    attacker, never sent).
    """
    chosen = torch.randint(view_answers.shape[0], (len(indices),), generator=generator)
    targets = view_answers[chosen, indices.cpu()]
    return simclr_view(images, generator, augmentation), targets, chosen


def train_contsteal(
    inputs: torch.Tensor,
    view_answers: torch.Tensor,
    *,
    augmentation: dict,
    loss: str,
    loss_options: dict,
    backbone: dict,
    in_channels: int,
    image_size: int,
    steps: int,
    batch_size: int,
    lr: float,
    weight_decay: float,
    generator: torch.Generator,
    device: torch.device = torch.device("cpu"),
    description: str = "steal contsteal",
    checkpoint: dict | None = None,
) -> tuple[nn.Module, list[dict]]:
    """Train a stolen encoder (no head) so that f_s(A(x)) matches the victim's answer to
    a random answered view of x (:func:`contsteal_batch`) under ``loss``; the items are
    the images (uint8 ``inputs``), so a step is a batch of images, as in every approach."""
    if view_answers.ndim != 3 or view_answers.shape[1] != len(inputs):
        raise ValueError(f"{len(inputs)} query images but answers of shape {tuple(view_answers.shape)} (V x N x D)")
    stolen = _headless_copy(backbone, in_channels, image_size, view_answers.shape[2], "contsteal", device)
    objective = stealing_loss(loss, **loss_options)

    def batch_loss(indices: torch.Tensor) -> torch.Tensor:
        images = model_input(to_device(inputs[indices], device), image_size)
        views, targets, _ = contsteal_batch(images, view_answers, indices, augmentation=augmentation, generator=generator)
        return objective(stolen(views), targets.to(device))

    history = fit(
        [stolen], len(inputs), batch_loss, epochs=1, steps=steps, batch_size=batch_size, lr=lr,
        weight_decay=weight_decay, generator=generator, description=description, **(checkpoint or {}),
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
    checkpoint: dict | None = None,
) -> tuple[nn.Module, list[dict], dict]:
    """Run one extraction approach on the first ``budget`` images of the query pool.

    ``dump`` holds the victim's answers (``dumps.Dump``): representations for
    ``direct`` and ``stolenencoder``, projections for ``head_access``, representations
    of augmented views for ``head_recreation`` (whose views are regenerated here from
    the seed and checked against the checksum of those the victim answered) and
    ``contsteal`` (which needs only the answers: their number of views and seed are
    checked against ``approach_options``). ``approach_options``: the views and head
    recipe (head_recreation), the views (contsteal), ``{weight, augmentation}``
    (stolenencoder). Returns the stolen encoder, its log, and the query accounting:
    distinct query images, API calls, the optimiser steps and the SoftNN temperature
    used (``temperature_factor`` resolved against the answers this budget bought).
    ``checkpoint`` (``training.resumable``) saves and resumes the stolen encoder's
    training; head recreation's head is fitted again on resuming (the same seed gives
    the same head, and fit() restores the generator's state after it).
    """
    from .queries import augmented_views, images_sha256

    if approach not in APPROACHES:
        raise ValueError(f"unknown extraction approach {approach!r}; known: {', '.join(APPROACHES)}")
    meta = dump.meta
    common = dict(
        backbone=backbone, in_channels=meta["victim_in_channels"],
        image_size=meta["victim_image_size"], steps=steps, batch_size=batch_size, lr=lr,
        weight_decay=weight_decay, generator=generator, device=device, description=f"steal {approach} {loss}",
        checkpoint=checkpoint,
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
    if approach == "stolenencoder":
        if dump.representation.ndim != 2:
            raise ValueError(f"stolenencoder reads one answer per image (the answers dump), got {tuple(dump.representation.shape)}")
        answers = dump.representation[:budget]
        options = resolve_temperature(loss_options, answers)
        stolen, history = train_stolenencoder(
            pool_images[:budget], answers, weight=approach_options.get("weight", 1.0),
            augmentation=approach_options.get("augmentation", {}), loss=loss, loss_options=options, **common,
        )
        return stolen, history, {"queries": budget, "api_calls": budget, "steps": steps, **options}
    if approach == "contsteal":
        n_views = check_views_dump(meta, dump.representation, approach_options)
        view_answers = dump.representation[:, :budget]
        options = resolve_temperature(loss_options, view_answers)
        stolen, history = train_contsteal(
            pool_images[:budget], view_answers, augmentation=approach_options.get("augmentation", {}), loss=loss,
            loss_options=options, **common,
        )
        return stolen, history, {"queries": budget, "api_calls": budget * n_views, "steps": steps, **options}

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


def check_views_dump(meta: dict, answers: torch.Tensor, views: dict) -> int:
    """The number of views of a views dump, refused unless it holds answers to views
    (V x N x D) made with the configured number of views and seed."""
    if answers.ndim != 3:
        raise ValueError(f"the answers of victim {meta['victim']} are not a views dump (V x N x D): {tuple(answers.shape)}")
    n_views = int(answers.shape[0])
    expected = {"n_views": views.get("n_views", n_views), "view_seed": views.get("view_seed", meta.get("view_seed"))}
    found = {"n_views": n_views, "view_seed": meta.get("view_seed", expected["view_seed"])}
    if found != expected:
        raise ValueError(f"the views dump of victim {meta['victim']} holds {found}, the config asks for {expected}; rebuild the views dump")
    return n_views


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
