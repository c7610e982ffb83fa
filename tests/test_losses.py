"""Each stealing loss against a hand-computed small example, and gradient flow."""

import math

import pytest
import torch

import torch.nn.functional as F

from sslsteal.losses import STEALING_LOSSES, barlow_twins, cosine, info_nce, mse, simsiam, soft_nn, stealing_loss, wasserstein


def test_mse_hand_computed():
    s = torch.tensor([[1.0, 2.0], [0.0, 0.0]])
    v = torch.tensor([[0.0, 2.0], [1.0, 1.0]])
    # squared errors 1, 0, 1, 1 -> mean 3/4
    assert mse(s, v).item() == pytest.approx(0.75)


def test_info_nce_hand_computed():
    # B = 2, rows u = [s1, s2, v1, v2], already unit norm; tau = 0.5 turns a cosine c
    # into the logit 2c. Cosines: s1.v1 = 1 and s2.v2 = -1 (the positive pairs); every
    # other pair is orthogonal (0). Row s1: positive v1 (logit 2) against s2 (0), v2 (0):
    # -log(e^2 / (e^2 + 2)) = log(1 + 2 e^-2); v1 likewise. Row s2: positive v2
    # (logit -2) against s1 (0), v1 (0): -log(e^-2 / (e^-2 + 2)) = log(1 + 2 e^2); v2
    # likewise. Mean over the 4 rows:
    expected = (math.log(1 + 2 * math.exp(-2)) + math.log(1 + 2 * math.exp(2))) / 2  # 1.4991
    s = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    v = torch.tensor([[1.0, 0.0], [0.0, -1.0]])
    assert info_nce(s, v, temperature=0.5).item() == pytest.approx(expected, rel=1e-5)


def test_info_nce_normalises_rows():
    # Each row scaled by its own positive factor: the same cosines, the same loss.
    s = torch.tensor([[3.0, 0.0], [0.0, 2.0]])
    v = torch.tensor([[1.0, 0.0], [0.0, 5.0]])
    unit_s, unit_v = torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    assert info_nce(s, v, 0.1).item() == pytest.approx(info_nce(unit_s, unit_v, 0.1).item(), rel=1e-5)
    # Unit rows, aligned positives, orthogonal negatives: -log(e^10 / (e^10 + 2)).
    assert info_nce(unit_s, unit_v, 0.1).item() == pytest.approx(math.log(1 + 2 * math.exp(-10)), abs=1e-6)  # float32


def test_soft_nn_hand_computed():
    # Rows a = s1 = (0, 0), b = s2 = (2, 0), c = v1 = (1, 0), d = v2 = (2, 1); T = 2.
    # Squared distances: ab 4, ac 1, ad 5, bc 1, bd 1, cd 2; each row's positive is at
    # distance 1, so its term is 1 / (1 + sum over the two negatives of e^(-(d - 1)/T)):
    #   a (positive c; negatives b 4, d 5): 1 / (1 + e^-1.5 + e^-2)
    #   b (positive d; negatives a 4, c 1): 1 / (1 + e^-1.5 + 1)
    #   c (positive a; negatives b 1, d 2): 1 / (1 + 1 + e^-0.5)
    #   d (positive b; negatives a 5, c 2): 1 / (1 + e^-2 + e^-0.5)
    # L = mean of -log(term) (the 1e-9 inside the log is far below the tolerance).
    e = math.exp
    expected = (
        math.log(1 + e(-1.5) + e(-2)) + math.log(2 + e(-1.5)) + math.log(2 + e(-0.5)) + math.log(1 + e(-2) + e(-0.5))
    ) / 4  # 0.6546
    s = torch.tensor([[0.0, 0.0], [2.0, 0.0]])
    v = torch.tensor([[1.0, 0.0], [2.0, 1.0]])
    assert soft_nn(s, v, temperature=2.0).item() == pytest.approx(expected, rel=1e-5)


def test_wasserstein_hand_computed():
    s = torch.tensor([[1.0, 0.0, 0.0]])  # all mass at index 0: CDF 1, 1, 1
    v = torch.tensor([[0.0, 0.0, 2.0]])  # all mass at index 2: CDF 0, 0, 1
    assert wasserstein(s, v).item() == pytest.approx(2.0)
    a = torch.tensor([[1.0, 1.0], [2.0, 0.0]])  # CDFs (0.5, 1) and (1, 1)
    b = torch.tensor([[0.0, 4.0], [1.0, 1.0]])  # CDFs (0, 1) and (0.5, 1)
    assert wasserstein(a, b).item() == pytest.approx((0.5 + 0.5) / 2)


def test_cosine_hand_computed():
    # Row 1: (1, 0) against (0, 1), orthogonal: cos 0. Row 2: (1, 1) against (2, 2),
    # the same direction: cos 1. L = -(0 + 1) / 2; norms do not matter.
    s = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    v = torch.tensor([[0.0, 1.0], [2.0, 2.0]])
    assert cosine(s, v).item() == pytest.approx(-0.5)
    assert cosine(s, -v).item() == pytest.approx(0.5)
    assert cosine(3 * s, 0.5 * v).item() == pytest.approx(-0.5)


def test_cosine_matches_torch():
    g = torch.Generator().manual_seed(0)
    s, v = torch.randn(7, 5, generator=g), torch.randn(7, 5, generator=g)
    assert cosine(s, v).item() == pytest.approx(-F.cosine_similarity(s, v, dim=1).mean().item(), rel=1e-6)
    assert stealing_loss("cosine")(s, v).item() == pytest.approx(cosine(s, v).item())


def test_wasserstein_rejects_negative():
    with pytest.raises(ValueError, match="non-negative"):
        wasserstein(torch.tensor([[-1.0, 2.0]]), torch.tensor([[1.0, 1.0]]))


@pytest.mark.parametrize("name", STEALING_LOSSES)
def test_identical_answers_minimise_loss(name):
    torch.manual_seed(0)
    v = torch.rand(8, 16)
    loss = stealing_loss(name, **({"temperature": 0.5} if name in ("infonce", "softnn") else {}))
    assert loss(v.clone(), v).item() < loss(torch.rand(8, 16), v).item()


@pytest.mark.parametrize("name", STEALING_LOSSES)
def test_gradients_reach_only_the_stolen_side(name):
    torch.manual_seed(0)
    stolen = torch.rand(6, 5, requires_grad=True)
    answer = torch.rand(6, 5, requires_grad=True)  # as if it still had a graph
    options = {"temperature": 0.5} if name in ("infonce", "softnn") else {}
    stealing_loss(name, **options)(stolen, answer).backward()
    assert stolen.grad is not None and stolen.grad.abs().sum() > 0
    assert answer.grad is None


def test_unknown_loss_is_named():
    with pytest.raises(ValueError, match="unknown loss 'l1'"):
        stealing_loss("l1")


def test_simsiam_hand_computed():
    p1 = torch.tensor([[1.0, 0.0]])
    p2 = torch.tensor([[0.0, 2.0]])
    z1 = torch.tensor([[1.0, 1.0]])
    z2 = torch.tensor([[3.0, 0.0]])
    # D(p1, z2) = -cos(0°) = -1; D(p2, z1) = -cos(45°) = -0.7071
    assert simsiam(p1, p2, z1, z2).item() == pytest.approx(0.5 * (-1.0) + 0.5 * (-math.sqrt(0.5)), rel=1e-5)


def test_simsiam_target_branch_gets_no_gradient():
    torch.manual_seed(0)
    p1, p2 = torch.randn(4, 3, requires_grad=True), torch.randn(4, 3, requires_grad=True)
    z1, z2 = torch.randn(4, 3, requires_grad=True), torch.randn(4, 3, requires_grad=True)
    simsiam(p1, p2, z1, z2).backward()
    assert p1.grad is not None and p2.grad is not None
    assert z1.grad is None and z2.grad is None


def test_barlow_twins_zero_for_decorrelated_identity():
    # Columns with mean 0, variance 1 and orthogonal: C = z^T z / B = I exactly.
    z = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]])
    assert barlow_twins(z, z.clone(), eps=0.0).item() == pytest.approx(0.0, abs=1e-7)
    assert barlow_twins(z, z.clone()).item() == pytest.approx(0.0, abs=1e-4)


def test_barlow_twins_hand_computed_and_positive():
    z1 = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]])
    z2 = torch.tensor([[1.0, 1.0], [1.0, 1.0], [-1.0, -1.0], [-1.0, -1.0]])
    # standardised already; C = z1^T z2 / 4 = [[1, 1], [0, 0]]
    # on-diagonal (1-1)^2 + (1-0)^2 = 1; off-diagonal 1^2 + 0^2 = 1, weighted by lambda
    assert barlow_twins(z1, z2, off_diagonal_weight=0.5, eps=0.0).item() == pytest.approx(1.5)
    assert barlow_twins(z1, z2).item() > 0
