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


# Resuming mid-epoch: a job killed right after the state of some optimiser step was saved
# (every `save_every` steps) continues from the file and ends as if never stopped.

class Killed(Exception):
    pass


def killed_after_step(train, kill_at: int, path):
    """Run ``train(checkpoint)`` whose save_state writes the state to ``path`` (as a job
    does) and dies right after step ``kill_at`` is saved; return the state read back."""
    from sslsteal.io import load_checkpoint, save_checkpoint

    def save_and_die(state):
        save_checkpoint(path, **state)
        if state["step"] == kill_at:
            raise Killed

    with pytest.raises(Killed):
        train({"save_state": save_and_die, "save_every": 3})
    return load_checkpoint(path)


def same_log(first, second):
    """The logs without their wall-clock columns."""
    def drop(rows):
        return [{k: v for k, v in row.items() if k not in ("seconds", "images_per_second")} for row in rows]

    return drop(first) == drop(second)


@pytest.mark.parametrize("approach", ["direct", "head_access", "head_recreation", "stolenencoder", "contsteal"])
def test_extraction_killed_mid_epoch_resumes_to_the_same_weights(approach, tmp_path):
    """Every approach, with its per-batch randomness (Cont-Steal's chosen views, the
    attacker's augmentations) and head recreation's head fitted before it: killed after
    step 3 (mid-epoch: 2 steps an epoch, 4 for head recreation's two views of each image),
    resumed from the file."""
    from sslsteal.dumps import Dump
    from sslsteal.extraction import steal
    from sslsteal.queries import augmented_views, images_sha256

    pool = images(48)
    meta = {"victim": "v", "query_set": "q", "n": 48, "dim": 16, "victim_in_channels": 1, "victim_image_size": 12}
    answers = torch.rand(48, 16, generator=torch.Generator().manual_seed(0))
    options = {"view_seed": 3, "n_views": 2, "augmentation": {"crop_scale": [0.5, 1.0]}, "temperature": 0.2,
               "head_dim": 8, "head_epochs": 2, "head_batch_size": 16, "head_lr": 0.01, "weight": 1.0}
    if approach in ("head_recreation", "contsteal"):
        views = augmented_views(pool, 2, 3, options["augmentation"])
        view_meta = {**meta, "n_views": 2, "view_seed": 3, "views_sha256": images_sha256(views)}
        dump = Dump(torch.stack([answers, answers.flip(0)]), None, view_meta)
    else:
        dump = Dump(answers, None, meta, projection=torch.rand(48, 8) if approach == "head_access" else None)

    def train(checkpoint=None):
        configure_torch(1)
        stolen, history, _ = steal(
            approach, pool, dump, 32, loss="mse", loss_options={}, approach_options=options, backbone=BACKBONE,
            steps=10, batch_size=16, lr=0.01, weight_decay=0.0, generator=seed_everything(4), checkpoint=checkpoint,
        )
        return stolen, history

    full, full_history = train()
    state = killed_after_step(lambda checkpoint: train(checkpoint), 3, tmp_path / "partial_state.pt")
    assert state["step"] == 3 and state["within_epoch"] is not None and state["epoch"] == len(state["history"])
    resumed, history = train({"resume_from": state, "save_every": 3})
    assert same_log(history, full_history)
    for (name, a), b in zip(full.state_dict().items(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_own_ssl_killed_mid_epoch_resumes_to_the_same_weights(tmp_path, capsys):
    """The attacker's own SSL (the victim's method for a number of steps, with the
    watermark task's extra randomness) for 10 steps of 4-step epochs, killed after step 6."""
    recipe = {**RECIPE, "batch_size": 24, "watermark": {"weight": 1.0, "batch_fraction": 0.5, "hidden": [16]}}

    def train(checkpoint=None):
        configure_torch(1)
        encoder, heads, history = train_victim(
            "simclr", images(), BACKBONE, recipe, seed_everything(3), steps=10, **(checkpoint or {})
        )
        return encoder, heads, history

    full, full_heads, full_history = train()
    state = killed_after_step(lambda checkpoint: train(checkpoint), 6, tmp_path / "partial_state.pt")
    assert state["within_epoch"] is not None  # 4 steps an epoch: step 6 is mid-epoch
    capsys.readouterr()
    resumed, heads, history = train({"resume_from": state})
    assert "resuming after step 6 of 10 (in epoch 2)" in capsys.readouterr().out
    assert same_log(history, full_history)
    for (name, a), b in zip(full.state_dict().items(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    for name, head in heads.items():
        pairs = zip(full_heads[name].state_dict().values(), head.state_dict().values(), strict=True)
        assert all(torch.equal(a, b) for a, b in pairs), name


def test_partial_state_of_another_config_is_ignored(tmp_path, caplog):
    """``resumable``: the job's state file is reused only with the fingerprint that made
    it; otherwise (or unreadable) the job starts over, saying why."""
    import logging

    from sslsteal.training import resumable

    log = logging.getLogger("test_resumable")
    partial = tmp_path / "partial_state.pt"
    checkpoint = resumable(partial, "config-a", log, save_every=5)
    assert checkpoint["resume_from"] is None and checkpoint["save_every"] == 5
    checkpoint["save_state"]({"epoch": 0, "step": 5, "within_epoch": None, "history": []})
    assert resumable(partial, "config-a", log)["resume_from"]["step"] == 5
    with caplog.at_level(logging.INFO):
        assert resumable(partial, "config-b", log)["resume_from"] is None
        partial.write_bytes(b"truncated")
        assert resumable(partial, "config-a", log)["resume_from"] is None
    assert "made by another config" in caplog.text and "ignoring unreadable" in caplog.text
