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


def test_cosine_hand_computed():
    s = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    v = torch.tensor([[0.0, 1.0], [2.0, 2.0]])
    assert mean_cosine(s, v) == pytest.approx(0.5)  # (0 + 1) / 2
