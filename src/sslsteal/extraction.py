"""Model extraction from the victim's answers (PAPER.md, "The three extraction approaches").

Direct extraction: the API returned h_v = f_v(x) for each query image x; the stolen
encoder f_s is trained so that f_s(x) matches h_v under a stealing loss. No head. The
stolen encoder sees exactly the query images, un-augmented, as the answers were made.
"""

from __future__ import annotations

import torch

from .backbones import build_encoder
from .data import model_input
from .losses import stealing_loss
from .training import fit


def steal_direct(
    query_images: torch.Tensor,
    answers: torch.Tensor,
    *,
    loss: str,
    loss_options: dict,
    backbone: dict,
    epochs: int,
    batch_size: int,
    lr: float,
    weight_decay: float,
    generator: torch.Generator,
    device: torch.device = torch.device("cpu"),
    image_size: int | None = None,
) -> tuple[torch.nn.Module, list[dict]]:
    """Train a stolen encoder on (query image, victim answer) pairs; return it and its log.

    ``image_size`` is the victim's input size (query images are resized to it, as the
    API would); by default the query images' own size."""
    if len(query_images) != len(answers):
        raise ValueError(f"{len(query_images)} query images but {len(answers)} answers")
    stolen = build_encoder(backbone, query_images.shape[1], image_size or query_images.shape[-1]).to(device)
    if stolen.representation_dim != answers.shape[1]:
        raise ValueError(
            f"direct extraction needs the stolen representation ({stolen.representation_dim}-d) to match the "
            f"victim's answers ({answers.shape[1]}-d); choose a stolen backbone of that width"
        )
    objective = stealing_loss(loss, **loss_options)
    answers = answers.to(device)

    def batch_loss(indices: torch.Tensor) -> torch.Tensor:
        batch = model_input(query_images[indices], stolen.image_size).to(device)
        return objective(stolen(batch), answers[indices])

    history = fit(
        [stolen],
        len(query_images),
        batch_loss,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        weight_decay=weight_decay,
        generator=generator,
        description=f"steal {loss}",
    )
    return stolen, history
