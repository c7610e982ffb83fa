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


def run(approach, dump, budget=32, loss="mse", steps=6, loss_options=None):
    configure_torch(1)
    return steal(
        approach, pool(), dump, budget, loss=loss, loss_options=loss_options or {}, approach_options=VIEWS, backbone=BACKBONE,
        steps=steps, batch_size=16, lr=0.01, weight_decay=0.0, generator=seed_everything(0),
    )


def test_direct_counts_one_call_per_image():
    dump = Dump(torch.rand(48, 16), None, meta())
    stolen, history, accounting = run("direct", dump)
    assert accounting == {"queries": 32, "api_calls": 32, "steps": 6} and stolen.representation_dim == 16
    assert history[-1]["loss"] < history[0]["loss"]


def test_steps_do_not_depend_on_budget_or_batch_size():
    """Every cell gets the configured optimiser steps: 6 steps are 3 epochs of 32
    queries (2 batches of 16) but under one epoch of 48 (3 batches)."""
    dump = Dump(torch.rand(48, 16), None, meta())
    _, small, _ = run("direct", dump, budget=32)
    _, large, _ = run("direct", dump, budget=48)
    assert len(small) == 3 and len(large) == 2


def test_a_budget_never_reads_answers_beyond_it():
    """A budget-B copy is the same when the answers beyond B are NaN: it cannot have
    used them (nor their images: the attacker did not pay for them)."""
    answers = torch.rand(48, 16)
    poisoned = answers.clone()
    poisoned[32:] = float("nan")
    first, _, _ = run("direct", Dump(answers, None, meta()), loss="softnn", loss_options={"temperature_factor": 1.0})
    second, _, _ = run("direct", Dump(poisoned, None, meta()), loss="softnn", loss_options={"temperature_factor": 1.0})
    for a, b in zip(first.state_dict().values(), second.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_softnn_temperature_factor_scales_with_the_answers():
    from sslsteal.extraction import median_squared_distance, resolve_temperature

    answers = torch.tensor([[0.0, 0.0], [3.0, 0.0], [0.0, 4.0]])
    # Squared distances 9, 16, 25: median 16.
    assert median_squared_distance(answers) == 16.0
    assert resolve_temperature({"temperature_factor": 0.5}, answers) == {"temperature": 8.0}
    assert resolve_temperature({"temperature": 100.0}, answers) == {"temperature": 100.0}
    assert resolve_temperature({"temperature_factor": 0.5}, 10 * answers)["temperature"] == 800.0


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
    assert accounting == {"queries": 32, "api_calls": 64, "steps": 6}
    # 64 views in batches of 16: the 6 steps end in the second epoch.
    assert [row["phase"] for row in history] == ["recreate_head"] * 3 + ["steal"] * 2
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
