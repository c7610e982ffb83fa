"""The linear probe: high accuracy on linearly separable features, chance on random labels."""

import torch

from sslsteal.backbones import SmallCNN, build_encoder
from sslsteal.probe import linear_probe, representations, subset

RECIPE = dict(epochs=20, batch_size=64, lr=0.01, weight_decay=0.0)


def separable(n, seed):
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 4, (n,), generator=g)
    centres = torch.eye(4, 16) * 4
    return centres[labels] + torch.randn(n, 16, generator=g), labels


def test_separable_features_reach_high_accuracy():
    train_x, train_y = separable(800, 0)
    test_x, test_y = separable(400, 1)
    result = linear_probe(train_x, train_y, test_x, test_y, generator=torch.Generator().manual_seed(0), **RECIPE)
    assert result["accuracy"] > 0.95


def test_random_labels_stay_near_chance():
    g = torch.Generator().manual_seed(0)
    train_x, test_x = torch.randn(800, 16, generator=g), torch.randn(2000, 16, generator=g)
    train_y, test_y = torch.randint(0, 4, (800,), generator=g), torch.randint(0, 4, (2000,), generator=g)
    result = linear_probe(train_x, train_y, test_x, test_y, generator=torch.Generator().manual_seed(0), **RECIPE)
    assert abs(result["accuracy"] - 0.25) < 0.05


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
