"""Fidelity metrics: cosine and linear CKA against cases with known answers."""

import math

import pytest
import torch

from sslsteal.fidelity import fidelity, linear_cka, mean_cosine


def test_identical_representations_are_perfectly_faithful():
    x = torch.randn(200, 16, generator=torch.Generator().manual_seed(0))
    assert mean_cosine(x, x) == pytest.approx(1.0)
    assert linear_cka(x, x) == pytest.approx(1.0)


def test_cka_invariant_to_rotation_and_scale_cosine_is_not():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(300, 8, generator=g)
    rotation, _ = torch.linalg.qr(torch.randn(8, 8, generator=g))
    y = 3.0 * x @ rotation
    assert linear_cka(x, y) == pytest.approx(1.0)
    assert mean_cosine(x, y) < 0.9


def test_cka_low_for_independent_representations_and_handles_widths():
    g = torch.Generator().manual_seed(2)
    x, y = torch.randn(2000, 4, generator=g), torch.randn(2000, 6, generator=g)
    assert linear_cka(x, y) < 0.02
    result = fidelity(x, y)
    assert result["cosine"] is None and not math.isnan(result["cka"])


def test_cosine_hand_computed_on_centred_features():
    # Centred by their own means ([2, 1] and [1, 2]), both become [[-1, -1], [1, 1]].
    s = torch.tensor([[1.0, 0.0], [3.0, 2.0]])
    v = torch.tensor([[0.0, 1.0], [2.0, 3.0]])
    assert mean_cosine(s, v) == pytest.approx(1.0)
    # s centred: [[-1, -1], [1, 1]]; v centred: [[0, -1], [0, 1]]: cos = 1/sqrt(2) twice.
    v = torch.tensor([[5.0, 0.0], [5.0, 2.0]])
    assert mean_cosine(s, v) == pytest.approx(2 ** -0.5)


def test_unrelated_non_negative_features_have_centred_cosine_near_zero():
    """Uncentred, two unrelated post-ReLU-like representations with a shared positive
    mean look alike (cosine about 0.97 here); centred they do not."""
    g = torch.Generator().manual_seed(3)
    x, y = torch.rand(2000, 16, generator=g) + 3, torch.rand(2000, 16, generator=g) + 3
    assert torch.nn.functional.cosine_similarity(x, y, dim=1).mean() > 0.9
    assert abs(mean_cosine(x, y)) < 0.05


def test_cka_hand_computed_and_invariant_to_an_offset():
    x = torch.tensor([[1.0], [2.0], [3.0]])
    y = torch.tensor([[1.0], [0.0], [2.0]])
    # Centred: x [-1, 0, 1], y [0, -1, 1]; (y^T x)^2 = 1, ||x^T x|| ||y^T y|| = 2 * 2.
    assert linear_cka(x, y) == pytest.approx(0.25)
    g = torch.Generator().manual_seed(4)
    a, b = torch.randn(100, 5, generator=g), torch.randn(100, 3, generator=g)
    assert linear_cka(a + 7.0, b - 3.0) == pytest.approx(linear_cka(a, b))


def test_no_cosine_when_asked_for_none():
    x = torch.randn(50, 4, generator=torch.Generator().manual_seed(5))
    result = fidelity(x, x, cosine=False)
    assert result["cosine"] is None and result["cka"] == pytest.approx(1.0)


def test_cka_interval_is_the_jackknife_of_cka_computed_directly():
    from sslsteal.fidelity import cka_interval

    generator = torch.Generator().manual_seed(0)
    x = torch.randn(200, 6, generator=generator)
    y = x @ torch.randn(6, 4, generator=generator) + 0.8 * torch.randn(200, 4, generator=generator)
    low, high = cka_interval(x, y, groups=10)
    # Independent computation: CKA of the images left after removing each block.
    blocks = torch.arange(200) * 10 // 200
    replicates = torch.tensor([linear_cka(x[blocks != g], y[blocks != g]) for g in range(10)], dtype=torch.float64)
    se = math.sqrt(9 / 10 * float(((replicates - replicates.mean()) ** 2).sum()))
    estimate = linear_cka(x, y)
    assert (low, high) == pytest.approx((estimate - 1.96 * se, estimate + 1.96 * se), abs=1e-7)
    assert 0 < low < estimate < high < 1
    # Identical representations: CKA 1 in every replicate, a zero-width interval.
    assert cka_interval(x, x, groups=10) == pytest.approx((1.0, 1.0))
    assert fidelity(x, x)["cka_low"] == pytest.approx(1.0)
