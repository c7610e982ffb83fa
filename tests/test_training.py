"""Victim training and extraction: seeded runs repeat exactly on CPU, and they learn."""

import torch

from sslsteal.backbones import build_encoder
from sslsteal.data import make_synthetic
from sslsteal.extraction import train_stolen
from sslsteal.runtime import configure_torch, seed_everything
from sslsteal.victim import train_victim

BACKBONE = {"name": "small_cnn", "widths": [4, 8, 16]}
RECIPE = {
    "epochs": 2,
    "batch_size": 32,
    "lr": 0.002,
    "weight_decay": 0.0,
    "temperature": 0.2,
    "projection_dim": 8,
    "augmentation": {"crop_scale": [0.5, 1.0]},
}


def images(n=96):
    return torch.from_numpy(make_synthetic(seed=0, n_train=n, n_test=2, image_size=12, num_classes=4)["train_images"])


def train(seed):
    configure_torch(1)
    encoder, _, history = train_victim("simclr", images(), BACKBONE, RECIPE, seed_everything(seed))
    return encoder, history


def test_same_seed_same_weights():
    (a, history_a), (b, history_b) = train(1), train(1)
    assert [h["loss"] for h in history_a] == [h["loss"] for h in history_b]
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(pa, pb), name
    c, _ = train(2)
    assert not torch.equal(a.state_dict()["net.features.0.weight"], c.state_dict()["net.features.0.weight"])


def test_direct_extraction_reduces_the_loss():
    configure_torch(1)
    query = images(64)
    answers = torch.rand(64, 16)
    _, history = train_stolen(
        query, answers, loss="mse", loss_options={}, backbone=BACKBONE, in_channels=1, image_size=12,
        with_head=False, steps=20, batch_size=16, lr=0.01, weight_decay=0.0, generator=seed_everything(0),
    )
    assert history[-1]["loss"] < history[0]["loss"]


def test_direct_extraction_refuses_a_width_mismatch():
    import pytest

    with pytest.raises(ValueError, match="match the victim's answers"):
        train_stolen(
            images(8), torch.rand(8, 32), loss="mse", loss_options={}, backbone=BACKBONE, in_channels=1,
            image_size=12, with_head=False, steps=1, batch_size=4, lr=0.01, weight_decay=0.0,
            generator=seed_everything(0),
        )


def test_resumed_training_ends_with_the_same_weights():
    from sslsteal.victim import train_victim

    configure_torch(1)
    recipe = {**RECIPE, "epochs": 3}
    full, _, full_history = train_victim("simclr", images(), BACKBONE, recipe, seed_everything(5))

    saved = []

    class Killed(Exception):
        pass

    def save_and_die(state):
        saved.append(state)
        raise Killed  # the job dies right after epoch 1 was saved

    import copy

    import pytest

    with pytest.raises(Killed):
        train_victim("simclr", images(), BACKBONE, recipe, seed_everything(5), save_state=save_and_die)
    state = copy.deepcopy(saved[0])
    assert state["epoch"] == 1
    resumed, _, history = train_victim("simclr", images(), BACKBONE, recipe, seed_everything(5), resume_from=state)
    assert [h["loss"] for h in history] == [h["loss"] for h in full_history]
    for (name, a), b in zip(full.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name


import pytest  # noqa: E402


@pytest.mark.parametrize("method", ["simsiam", "barlow_twins"])
def test_other_ssl_methods_train_encoder_and_heads(method):
    from sslsteal.backbones import build_encoder
    from sslsteal.victim import make_heads, train_victim

    configure_torch(1)
    recipe = {**RECIPE, "hidden_dim": 16, "projection_dim": 16}
    # The same seeded construction as train_victim: the weights before training.
    seed_everything(0)
    initial_encoder = build_encoder(BACKBONE, 1, 12)
    initial_heads = make_heads(method, initial_encoder.representation_dim, recipe)
    encoder, heads, history = train_victim(method, images(), BACKBONE, recipe, seed_everything(0))
    assert all(torch.isfinite(torch.tensor(h["loss"])) for h in history)
    assert not torch.equal(encoder.net.features[0].weight, initial_encoder.net.features[0].weight)
    for name, head in heads.items():
        first_linear = next(m for m in head if isinstance(m, torch.nn.Linear))
        initial_linear = next(m for m in initial_heads[name] if isinstance(m, torch.nn.Linear))
        assert not torch.equal(first_linear.weight, initial_linear.weight), f"{name} was not optimised"


def test_sgd_recipe_trains_and_unknown_optimiser_is_named():
    from sslsteal.victim import train_victim

    configure_torch(1)
    recipe = {**RECIPE, "optimiser": "sgd", "lr": 0.05, "momentum": 0.9, "hidden_dim": 16, "projection_dim": 16}
    seed_everything(0)
    initial = build_encoder(BACKBONE, 1, 12)
    encoder, _, history = train_victim("simsiam", images(), BACKBONE, recipe, seed_everything(0))
    assert not torch.equal(encoder.net.features[0].weight, initial.net.features[0].weight)
    with pytest.raises(ValueError, match="unknown optimiser 'lamb'"):
        train_victim("simclr", images(), BACKBONE, {**RECIPE, "optimiser": "lamb"}, seed_everything(0))
