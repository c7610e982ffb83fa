"""The three extraction approaches: what each trains on, and what each costs in API calls."""

import pytest
import torch

from sslsteal.data import make_synthetic
from sslsteal.dumps import Dump
from sslsteal.extraction import recreate_head, steal
from sslsteal.queries import augmented_views, images_sha256
from sslsteal.runtime import configure_torch, seed_everything

BACKBONE = {"name": "small_cnn", "widths": [4, 8, 16]}
VIEWS = {"view_seed": 3, "augmentation": {"crop_scale": [0.5, 1.0]}, "temperature": 0.2, "head_dim": 8,
         "head_epochs": 3, "head_batch_size": 16, "head_lr": 0.01}


def pool(n=48):
    return torch.from_numpy(make_synthetic(seed=0, n_train=n, n_test=2, image_size=12, num_classes=4)["train_images"])


def meta(**extra):
    return {"victim": "v", "query_set": "q", "n": 48, "dim": 16, "victim_in_channels": 1, "victim_image_size": 12, **extra}


def run(method, dump, budget=32, loss="mse"):
    configure_torch(1)
    return steal(
        method, pool(), dump, budget, loss=loss, loss_options={}, method_options=VIEWS, backbone=BACKBONE,
        epochs=3, batch_size=16, lr=0.01, weight_decay=0.0, generator=seed_everything(0),
    )


def test_direct_counts_one_call_per_image():
    dump = Dump(torch.rand(48, 16), None, meta())
    stolen, history, accounting = run("direct", dump)
    assert accounting == {"queries": 32, "api_calls": 32} and stolen.representation_dim == 16
    assert history[-1]["loss"] < history[0]["loss"]


def test_head_access_trains_a_head_on_projections_and_returns_the_encoder():
    dump = Dump(torch.rand(48, 16), None, meta(), projection=torch.randn(48, 6))
    stolen, history, accounting = run("head_access", dump)
    assert accounting["api_calls"] == 32
    assert stolen(torch.zeros(2, 1, 12, 12)).shape == (2, 16)  # the pre-head representation
    assert history[-1]["loss"] < history[0]["loss"]
    with pytest.raises(ValueError, match="no projections"):
        run("head_access", Dump(torch.rand(48, 16), None, meta()))


def test_head_recreation_counts_every_view_and_checks_the_views():
    views = augmented_views(pool(), 2, VIEWS["view_seed"], VIEWS["augmentation"])
    dump = Dump(torch.rand(2, 48, 16), None, meta(n_views=2, views_sha256=images_sha256(views)))
    stolen, history, accounting = run("head_recreation", dump)
    assert accounting == {"queries": 32, "api_calls": 64}
    assert [row["phase"] for row in history] == ["recreate_head"] * 3 + ["steal"] * 3
    assert stolen(torch.zeros(2, 1, 12, 12)).shape == (2, 16)
    wrong = Dump(dump.representation, None, meta(n_views=2, views_sha256="0" * 64))
    with pytest.raises(ValueError, match="views regenerated"):
        run("head_recreation", wrong)


def test_recreated_head_learns_to_match_views():
    g = torch.Generator().manual_seed(0)
    first = torch.randn(256, 16, generator=g)
    answers = torch.stack([first, first + 0.1 * torch.randn(256, 16, generator=g)])
    _, history = recreate_head(answers, output_dim=8, temperature=0.2, epochs=20, batch_size=64, lr=0.01,
                               generator=seed_everything(0))
    assert history[-1]["loss"] < 0.5 * history[0]["loss"]
