"""The linear probe: converged L-BFGS logistic regression, L2 chosen on a validation
split of the training images, checked against scikit-learn on the same features."""

import numpy as np
import pytest
import torch

from sslsteal.backbones import SmallCNN, build_encoder, representations
from sslsteal.probe import (
    decode_correct,
    encode_correct,
    fit_logistic,
    linear_probe,
    per_class_subset,
    subset,
    validation_split,
)


def separable(n, seed, noise=1.0):
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 4, (n,), generator=g)
    centres = torch.eye(4, 16) * 4
    return centres[labels] + noise * torch.randn(n, 16, generator=g), labels


def test_separable_features_reach_high_accuracy_and_record_the_protocol():
    train_x, train_y = separable(800, 0)
    test_x, test_y = separable(400, 1)
    result = linear_probe(train_x, train_y, test_x, test_y, l2_grid=[1e-4, 1e-2], seed=0)
    assert result["accuracy"] > 0.95 and result["train_accuracy"] > 0.95
    assert result["l2"] in (1e-4, 1e-2) and set(result["validation_accuracy"]) == {"0.0001", "0.01"}
    assert result["converged"] and result["n_validation"] == 160 and result["n_test"] == 400
    correct = decode_correct(result["correct"], 400)
    assert correct.mean() == pytest.approx(result["accuracy"])


def test_random_labels_stay_near_chance():
    g = torch.Generator().manual_seed(0)
    train_x, test_x = torch.randn(800, 16, generator=g), torch.randn(2000, 16, generator=g)
    train_y, test_y = torch.randint(0, 4, (800,), generator=g), torch.randint(0, 4, (2000,), generator=g)
    result = linear_probe(train_x, train_y, test_x, test_y, seed=0)
    assert abs(result["accuracy"] - 0.25) < 0.05


def test_logistic_regression_matches_scikit_learn():
    """The same penalised objective as scikit-learn's lbfgs (C = 1 / (lambda n)): the
    same predictions and nearly the same weights, an independent computation."""
    from sklearn.linear_model import LogisticRegression

    x, y = separable(600, 2, noise=2.5)
    l2 = 1e-2
    weight, bias, info = fit_logistic(x, y, 4, l2)
    reference = LogisticRegression(C=1 / (l2 * len(x)), tol=1e-10, max_iter=10000).fit(x.numpy(), y.numpy())
    assert info["converged"]
    np.testing.assert_allclose(weight.numpy(), reference.coef_, atol=2e-3)
    ours = (x.double() @ weight.T + bias).argmax(1).numpy()
    assert (ours == reference.predict(x.numpy())).mean() > 0.995


def test_penalty_chosen_on_validation_not_test():
    """Labels of the test set cannot move the chosen penalty: shuffling them changes the
    accuracy, not the choice."""
    train_x, train_y = separable(400, 3, noise=3.0)
    test_x, test_y = separable(400, 4, noise=3.0)
    shuffled = test_y[torch.randperm(400, generator=torch.Generator().manual_seed(0))]
    first = linear_probe(train_x, train_y, test_x, test_y, seed=1)
    second = linear_probe(train_x, train_y, test_x, shuffled, seed=1)
    assert first["l2"] == second["l2"] and first["validation_accuracy"] == second["validation_accuracy"]
    assert first["accuracy"] > second["accuracy"] + 0.3


def test_validation_split_is_stratified_seeded_and_disjoint():
    labels = torch.tensor([0] * 50 + [1] * 30 + [2] * 20)
    fit, held = validation_split(labels, 0.2, seed=5)
    assert len(np.intersect1d(fit, held)) == 0 and len(fit) + len(held) == 100
    assert np.bincount(labels[held].numpy()).tolist() == [10, 6, 4]
    assert (validation_split(labels, 0.2, seed=5)[1] == held).all()


def test_per_class_subset_is_balanced_and_seeded():
    labels = np.repeat(np.arange(5), 40)
    chosen = per_class_subset(labels, 10, seed=2)
    assert np.bincount(labels[chosen]).tolist() == [10] * 5
    assert (per_class_subset(labels, 10, seed=2) == chosen).all()
    assert not (per_class_subset(labels, 10, seed=3) == chosen).all()
    with pytest.raises(ValueError, match="fewer than 50 per class"):
        per_class_subset(labels, 50, seed=0)


def test_correct_round_trip():
    correct = np.random.default_rng(0).random(5001) < 0.7
    assert (decode_correct(encode_correct(correct), 5001) == correct).all()
    # A known vector (tests/test_stats.py: 0xB0 0x80 -> "sIA="), so that a change made
    # to both sides at once shows.
    known = np.array([1, 0, 1, 1, 0, 0, 0, 0, 1], dtype=bool)
    assert encode_correct(known) == "sIA=" and (decode_correct("sIA=", 9) == known).all()


def test_representations_use_eval_mode():
    encoder = build_encoder({"name": "small_cnn", "widths": [4, 8]}, 1, 12)
    encoder.train()
    images = torch.randint(0, 255, (10, 1, 12, 12), dtype=torch.uint8)
    first = representations(encoder, images)
    # In eval mode BatchNorm uses running statistics: one image alone gives the same answer.
    single = representations(encoder, images[:1])
    torch.testing.assert_close(first[:1], single)
    assert not encoder.training


def test_representation_dim_read_from_model():
    encoder = build_encoder({"name": "small_cnn", "widths": [4, 8, 24]}, 3, 20)
    assert encoder.representation_dim == 24
    assert isinstance(encoder.net, SmallCNN)


def test_subset_is_seeded():
    assert (subset(100, 10, 3) == subset(100, 10, 3)).all()
    assert len(subset(100, None, 3)) == 100
