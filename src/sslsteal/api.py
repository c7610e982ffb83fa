"""The victim's API: answers to a query set, computed once and stored as a dump.

Answers are the victim's representations f_v(x) of the query images (eval mode), and,
when the victim has a projection head, its projections g_v(f_v(x)) too. For the
head-recreation attack the queries are augmented views of each image, each view one
API call. Queries are resized and channel-converted to the victim's input.
"""

from __future__ import annotations

from pathlib import Path

import torch

from .backbones import load_encoder, representations
from .io import file_sha256
from .queries import augmented_views, images_sha256, query_pool
from .victim import victim_projector


def answer_query_set(
    encoder_path: str | Path,
    query_set: dict,
    dataset_root: str | Path | None,
    views: dict | None = None,
    device: torch.device = torch.device("cpu"),
    victim_hash: str | None = None,
) -> tuple[torch.Tensor, object, dict, torch.Tensor | None]:
    """(representation, index, metadata, projection) for one query set.

    With ``views`` (``{"n_views", "view_seed", "augmentation"}``) the representation is
    V x N x D, one slice per augmented view, and no projection is returned.
    """
    encoder, meta = load_encoder(encoder_path, expect={"config_hash": victim_hash} if victim_hash else None)
    encoder = encoder.to(device)
    shape = (meta["in_channels"], meta["image_size"], meta["image_size"])
    images, index = query_pool(query_set, dataset_root, shape)
    info = {
        "victim_config_hash": meta["config_hash"],
        "victim_image_size": meta["image_size"],
        "victim_in_channels": meta["in_channels"],
        "victim_checkpoint_sha256": file_sha256(encoder_path),
        "queries_sha256": images_sha256(images),
    }
    if views is not None:
        view_images = augmented_views(images, views["n_views"], views["view_seed"], views.get("augmentation", {}))
        answers = torch.stack([representations(encoder, v, device=device) for v in view_images])
        info.update(view_seed=views["view_seed"], views_sha256=images_sha256(view_images))
        return answers, index, info, None
    answers = representations(encoder, images, device=device)
    projector = victim_projector(meta)
    projection = None
    if projector is not None:
        with torch.no_grad():
            projection = torch.cat([projector(answers[i : i + 1024]) for i in range(0, len(answers), 1024)])
    return answers, index, info, projection
