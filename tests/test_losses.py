"""Each stealing loss against a hand-computed small example, and gradient flow."""

import math

import pytest
import torch

from sslsteal.losses import STEALING_LOSSES, info_nce, mse, soft_nn, stealing_loss, wasserstein


def test_mse_hand_computed():
    s = torch.tensor([[1.0, 2.0], [0.0, 0.0]])
    v = torch.tensor([[0.0, 2.0], [1.0, 1.0]])
    # squared errors 1, 0, 1, 1 -> mean 3/4
    assert mse(s, v).item() == pytest.approx(0.75)


def test_info_nce_hand_computed():
    # B = 2. Rows u = [s1, s2, v1, v2], already unit norm.
    s = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    v = torch.tensor([[1.0, 0.0], [0.0, -1.0]])
    tau = 0.5
    # cosine matrix of [s1, s2, v1, v2]
    cos = [[1, 0, 1, 0], [0, 1, 0, -1], [1, 0, 1, 0], [0, -1, 0, 1]]
    partner = [2, 3, 0, 1]
    total = 0.0
    for k in range(4):
        denominator = sum(math.exp(cos[k][j] / tau) for j in range(4) if j != k)
        total += -math.log(math.exp(cos[k][partner[k]] / tau) / denominator)
    assert info_nce(s, v, temperature=tau).item() == pytest.approx(total / 4, rel=1e-5)


def test_info_nce_normalises_rows():
    s = torch.tensor([[3.0, 0.0], [0.0, 2.0]])
    v = torch.tensor([[1.0, 0.0], [0.0, 5.0]])
    assert info_nce(s, v, 0.1).item() == pytest.approx(info_nce(s / 3 * 1, v, 0.1).item(), rel=1e-5)


def test_soft_nn_hand_computed():
    s = torch.tensor([[0.0, 0.0], [2.0, 0.0]])
    v = torch.tensor([[1.0, 0.0], [2.0, 1.0]])
    T = 2.0
    rows = [(0.0, 0.0), (2.0, 0.0), (1.0, 0.0), (2.0, 1.0)]
    partner = [2, 3, 0, 1]

    def d(a, b):
        return (a[0] - b[0]) ** 2 + (a[1] - b[1]) ** 2

    total = 0.0
    for k in range(4):
        numerator = math.exp(-d(rows[k], rows[partner[k]]) / T)
        denominator = sum(math.exp(-d(rows[k], rows[j]) / T) for j in range(4) if j != k)
        total += -math.log(1e-9 + numerator / denominator)
    assert soft_nn(s, v, temperature=T).item() == pytest.approx(total / 4, rel=1e-5)


def test_wasserstein_hand_computed():
    s = torch.tensor([[1.0, 0.0, 0.0]])  # all mass at index 0: CDF 1, 1, 1
    v = torch.tensor([[0.0, 0.0, 2.0]])  # all mass at index 2: CDF 0, 0, 1
    assert wasserstein(s, v).item() == pytest.approx(2.0)
    a = torch.tensor([[1.0, 1.0], [2.0, 0.0]])  # CDFs (0.5, 1) and (1, 1)
    b = torch.tensor([[0.0, 4.0], [1.0, 1.0]])  # CDFs (0, 1) and (0.5, 1)
    assert wasserstein(a, b).item() == pytest.approx((0.5 + 0.5) / 2)


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
