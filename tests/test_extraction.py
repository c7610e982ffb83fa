"""The extraction approaches: what each trains on, and what each costs in API calls."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sslsteal.augment import simclr_view
from sslsteal.data import make_synthetic
from sslsteal.dumps import Dump
from sslsteal.extraction import contsteal_batch, recreate_head, steal, stolenencoder_loss
from sslsteal.losses import stealing_loss
from sslsteal.preprocessing import model_input
from sslsteal.queries import augmented_views, images_sha256
from sslsteal.runtime import configure_torch, seed_everything

BACKBONE = {"name": "small_cnn", "widths": [4, 8, 16]}
VIEWS = {"view_seed": 3, "augmentation": {"crop_scale": [0.5, 1.0]}, "temperature": 0.2, "head_dim": 8,
         "head_epochs": 3, "head_batch_size": 16, "head_lr": 0.01}


def pool(n=48):
    return torch.from_numpy(make_synthetic(seed=0, n_train=n, n_test=2, image_size=12, num_classes=4)["train_images"])


def meta(**extra):
    return {"victim": "v", "query_set": "q", "n": 48, "dim": 16, "victim_in_channels": 1, "victim_image_size": 12, **extra}


AUGMENTATION = {"crop_scale": [0.5, 1.0]}
STOLENENCODER = {"weight": 1.0, "augmentation": AUGMENTATION}
CONTSTEAL = {"n_views": 2, "view_seed": 3, "augmentation": AUGMENTATION}


def run(approach, dump, budget=32, loss="mse", steps=6, loss_options=None, approach_options=VIEWS, seed=0):
    configure_torch(1)
    return steal(
        approach, pool(), dump, budget, loss=loss, loss_options=loss_options or {}, approach_options=approach_options,
        backbone=BACKBONE, steps=steps, batch_size=16, lr=0.01, weight_decay=0.0, generator=seed_everything(seed),
    )


def same_weights(first, second):
    return all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), second.state_dict().values(), strict=True))


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


# --- StolenEncoder ---------------------------------------------------------------------


def test_stolenencoder_objective_is_both_terms_with_the_generators_augmentation():
    """One batch's loss is l(f(x), v) + weight * l(f(A(x)), v), A(x) the SimCLR view the
    same generator draws, here recomputed by hand with torch's cosine similarity."""
    torch.manual_seed(0)
    encoder = nn.Sequential(nn.Flatten(), nn.Linear(12 * 12, 16))
    images = model_input(pool()[:8])
    answers = torch.randn(8, 16, generator=torch.Generator().manual_seed(1))
    loss = stolenencoder_loss(
        encoder, images, answers, stealing_loss("cosine"), weight=0.5, augmentation=AUGMENTATION,
        generator=torch.Generator().manual_seed(5),
    )
    augmented = simclr_view(images, torch.Generator().manual_seed(5), AUGMENTATION)
    assert not torch.equal(augmented, images)
    by_hand = -F.cosine_similarity(encoder(images), answers, dim=1).mean() - 0.5 * F.cosine_similarity(encoder(augmented), answers, dim=1).mean()
    assert loss.item() == pytest.approx(by_hand.item(), rel=1e-6)
    plain = stolenencoder_loss(encoder, images, answers, stealing_loss("cosine"), weight=0.0, augmentation=AUGMENTATION, generator=torch.Generator())
    assert plain.item() == pytest.approx(-F.cosine_similarity(encoder(images), answers, dim=1).mean().item(), rel=1e-6)


def test_stolenencoder_reads_one_answer_per_image_and_is_deterministic():
    dump = Dump(torch.rand(48, 16), None, meta())
    stolen, history, accounting = run("stolenencoder", dump, loss="cosine", approach_options=STOLENENCODER)
    assert accounting == {"queries": 32, "api_calls": 32, "steps": 6} and stolen.representation_dim == 16
    assert history[-1]["loss"] < history[0]["loss"]
    again, _, _ = run("stolenencoder", dump, loss="cosine", approach_options=STOLENENCODER)
    other_seed, _, _ = run("stolenencoder", dump, loss="cosine", approach_options=STOLENENCODER, seed=1)
    assert same_weights(stolen, again) and not same_weights(stolen, other_seed)
    # The augmentation changes what the copy learns (the second term is there).
    unaugmented, _, _ = run("stolenencoder", dump, loss="cosine", approach_options={**STOLENENCODER, "weight": 0.0})
    assert not same_weights(stolen, unaugmented)
    with pytest.raises(ValueError, match="one answer per image"):
        run("stolenencoder", Dump(torch.rand(2, 48, 16), None, meta(n_views=2)), approach_options=STOLENENCODER)


@pytest.mark.parametrize("approach", ["stolenencoder", "contsteal"])
def test_new_approaches_never_read_answers_beyond_the_budget(approach):
    shape, options, extra = ((48, 16), STOLENENCODER, {}) if approach == "stolenencoder" else ((2, 48, 16), CONTSTEAL, {"n_views": 2, "view_seed": 3})
    answers = torch.rand(*shape)
    poisoned = answers.clone()
    poisoned[..., 32:, :] = float("nan")
    first, _, _ = run(approach, Dump(answers, None, meta(**extra)), loss="softnn", loss_options={"temperature_factor": 1.0}, approach_options=options)
    second, _, _ = run(approach, Dump(poisoned, None, meta(**extra)), loss="softnn", loss_options={"temperature_factor": 1.0}, approach_options=options)
    assert same_weights(first, second)


# --- Cont-Steal ------------------------------------------------------------------------


def test_contsteal_targets_are_answers_to_each_images_own_views():
    """Answers that encode (image, view): each target is one of its own image's views,
    drawn from the generator, and the copy sees the attacker's view drawn next."""
    n_views, n = 3, 40
    view_answers = torch.zeros(n_views, n, 4)
    view_answers[..., 0] = torch.arange(n).float()  # the image
    view_answers[..., 1] = torch.arange(n_views).float()[:, None]  # the view
    indices = torch.randperm(n, generator=torch.Generator().manual_seed(0))[:32]
    images = model_input(pool(n)[indices])
    views, targets, chosen = contsteal_batch(images, view_answers, indices, augmentation=AUGMENTATION, generator=torch.Generator().manual_seed(7))
    assert torch.equal(targets[:, 0], indices.float()) and torch.equal(targets[:, 1], chosen.float())
    assert set(chosen.tolist()) == {0, 1, 2}  # a random view per image, not always the first
    replay = torch.Generator().manual_seed(7)
    assert torch.equal(chosen, torch.randint(n_views, (32,), generator=replay))
    assert torch.equal(views, simclr_view(images, replay, AUGMENTATION))
    # The attacker's view is its own: neither the image nor a view the victim answered.
    answered = augmented_views(pool(n), n_views, 3, AUGMENTATION)[:, indices]
    assert not torch.equal(views, images)
    assert not any(torch.equal((views * 255).round().to(torch.uint8), answered[k]) for k in range(n_views))


def test_contsteal_counts_every_view_and_is_deterministic():
    dump = Dump(torch.rand(2, 48, 16), None, meta(n_views=2, view_seed=3))
    stolen, history, accounting = run("contsteal", dump, loss="infonce", loss_options={"temperature": 0.5}, approach_options=CONTSTEAL)
    assert accounting == {"queries": 32, "api_calls": 64, "steps": 6, "temperature": 0.5}
    # Items are the 32 images (not their 64 views): 6 steps of 16 are 3 epochs, no head phase.
    assert len(history) == 3 and "phase" not in history[0]
    assert stolen(torch.zeros(2, 1, 12, 12)).shape == (2, 16)
    again, _, _ = run("contsteal", dump, loss="infonce", loss_options={"temperature": 0.5}, approach_options=CONTSTEAL)
    assert same_weights(stolen, again)
    with pytest.raises(ValueError, match="rebuild the views dump"):
        run("contsteal", Dump(dump.representation, None, meta(n_views=2, view_seed=4)), approach_options=CONTSTEAL)
    with pytest.raises(ValueError, match="not a views dump"):
        run("contsteal", Dump(torch.rand(48, 16), None, meta()), approach_options=CONTSTEAL)
