import numpy as np
import pandas as pd
import pytest
from scipy.stats import t as t_distribution

from sslsteal.probe import encode_correct as encode  # the records' producer
from sslsteal.stats import (
    Interval,
    accuracy_interval,
    bootstrap,
    correct_matrix,
    decode_correct,
    difference_interval,
    floor_is_significant,
    bonferroni,
    gain_recovered_interval,
    leave_one_out_p_values,
    null_p_value,
    null_threshold,
    ratio_interval,
    verdict,
)


def bernoulli(p: float, shape, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).random(shape) < p


def test_encoding_of_a_known_vector():
    """Nine images, right on 1, 3, 4 and 9: bits 1011 0000 | 1 (padded with zeros) are
    the bytes 0xB0 0x80, whose base64 is "sIA=" (101100 001000 0000.. -> s, I, A, =)."""
    correct = np.array([1, 0, 1, 1, 0, 0, 0, 0, 1], dtype=bool)
    assert encode(correct) == "sIA="
    np.testing.assert_array_equal(decode_correct("sIA=", 9), correct)
    with pytest.raises(ValueError, match="fewer than n=17"):
        decode_correct("sIA=", 17)


@pytest.mark.parametrize("n", [1, 7, 8, 13, 5000])
def test_decode_inverts_encode(n):
    correct = bernoulli(0.6, n, seed=n)
    np.testing.assert_array_equal(decode_correct(encode(correct), n), correct)


def test_correct_matrix_orders_rows_by_seed_and_names_missing_seed():
    vectors = {seed: bernoulli(0.5, 20, seed) for seed in (2, 0, 1)}
    rows = pd.DataFrame([{"seed": s, "n_test": 20, "correct": encode(v)} for s, v in vectors.items()])
    np.testing.assert_array_equal(correct_matrix(rows), np.stack([vectors[0], vectors[1], vectors[2]]))
    np.testing.assert_array_equal(correct_matrix(rows, [1, 2]), np.stack([vectors[1], vectors[2]]))
    with pytest.raises(KeyError, match="5"):
        correct_matrix(rows, [0, 5])


def test_estimate_is_the_plain_mean():
    correct = bernoulli(0.73, (3, 1000), seed=1)
    interval = accuracy_interval(correct, n_boot=200)
    assert interval.estimate == pytest.approx(correct.mean())
    assert interval.low < interval.estimate < interval.high
    assert (interval.n_seeds, interval.n_images) == (3, 1000)


def test_ratio_estimate():
    a, b = bernoulli(0.6, (1, 2000), 2), bernoulli(0.8, (1, 2000), 3)
    assert ratio_interval(a, b, n_boot=200).estimate == pytest.approx(a.mean() / b.mean())


def test_pairing_narrows_the_difference_interval():
    # b equals a except 50 images that a gets right and b gets wrong: exact difference 1%.
    a = bernoulli(0.7, (1, 5000), seed=4)
    b = a.copy()
    flipped = np.flatnonzero(a[0])[:50]
    b[0, flipped] = False
    interval = difference_interval(a, b)
    assert interval.estimate == pytest.approx(0.01)
    # Paired: the only noise is in how many of the 50 flips are drawn (sd ~ 0.0014).
    assert interval.high - interval.low < 0.008
    assert interval.low > 0.004
    # Unpaired, the two accuracies' independent noise would give a width of ~ 0.036.
    unpaired_sd = np.sqrt(a.var() / a.size + b.var() / b.size)
    assert 2 * 1.96 * unpaired_sd > 4 * (interval.high - interval.low)


def test_difference_of_identical_arrays_is_exactly_zero():
    a = bernoulli(0.55, (3, 777), seed=5)
    interval = difference_interval(a, a.copy())
    assert (interval.estimate, interval.low, interval.high) == (0.0, 0.0, 0.0)


def test_coverage_of_the_accuracy_interval():
    rng = np.random.default_rng(6)
    covered = 0
    for trial in range(200):
        data = rng.random((1, 2000)) < 0.8
        interval = accuracy_interval(data, n_boot=500, seed=trial)
        covered += interval.low <= 0.8 <= interval.high
    assert 176 <= covered <= 198  # 88% .. 99% of 200


def test_seed_spread_widens_the_interval():
    rng = np.random.default_rng(7)
    # Three runs whose accuracies differ a lot (0.6, 0.75, 0.9).
    three = np.stack([rng.random(2000) < p for p in (0.6, 0.75, 0.9)])
    one = three[1:2]
    width_three = accuracy_interval(three).high - accuracy_interval(three).low
    width_one = accuracy_interval(one).high - accuracy_interval(one).low
    assert width_three > 3 * width_one


def test_seed_level_not_resampled_with_one_seed():
    a = bernoulli(0.7, (1, 3000), seed=8)
    # With S = 1 the interval matches a plain image bootstrap: width ~ 2 * 1.96 * sd.
    sd = np.sqrt(a.mean() * (1 - a.mean()) / a.size)
    interval = accuracy_interval(a)
    assert interval.high - interval.low == pytest.approx(2 * 1.96 * sd, rel=0.15)


def test_bootstrap_is_deterministic_given_seed():
    a, b = bernoulli(0.7, (3, 500), 9), bernoulli(0.6, (3, 500), 10)
    assert difference_interval(a, b, seed=3) == difference_interval(a, b, seed=3)
    assert difference_interval(a, b, seed=3) != difference_interval(a, b, seed=4)


def test_bootstrap_rejects_unpaired_shapes():
    with pytest.raises(ValueError):
        bootstrap({"a": np.ones((2, 10), bool), "b": np.ones((1, 10), bool)}, lambda acc: acc["a"])


@pytest.mark.parametrize(
    "low, high, margin, expected",
    [
        (0.01, 0.03, 0.0, "holds"),
        (-0.03, -0.01, 0.0, "contradicted"),
        (-0.01, 0.01, 0.0, "inconclusive"),
        (-0.015, 0.01, -0.02, "holds"),  # non-inferiority: within 2 points
        (-0.05, -0.03, -0.02, "contradicted"),
        (-0.03, 0.0, -0.02, "inconclusive"),
    ],
)
def test_verdict_rules(low, high, margin, expected):
    assert verdict(Interval(0.5 * (low + high), low, high, 1, 100), margin) == expected


def test_gain_recovered_on_a_hand_computed_case():
    n = 1000
    stolen = np.zeros((1, n), bool)
    victim = np.zeros((1, n), bool)
    floor = np.zeros((1, n), bool)
    victim[0, :800] = True  # 0.80
    stolen[0, :700] = True  # 0.70
    floor[0, :400] = True  # 0.40
    interval = gain_recovered_interval(stolen, victim, floor, n_boot=500)
    assert interval.estimate == pytest.approx((0.7 - 0.4) / (0.8 - 0.4))
    assert interval.low < 0.75 < interval.high


def test_floor_is_significant():
    victim = bernoulli(0.8, (1, 3000), 13)
    floor_far = victim.copy()
    floor_far[0, np.flatnonzero(victim[0])[:600]] = False  # 20 points below the victim
    assert floor_is_significant(victim, floor_far)
    floor_same = victim.copy()
    assert not floor_is_significant(victim, floor_same)
    floor_above = victim.copy()
    floor_above[0, np.flatnonzero(~victim[0])[:100]] = True
    assert not floor_is_significant(victim, floor_above)


def test_null_p_value_by_hand():
    """Null 0.50, 0.52, 0.54, 0.56, 0.58: mean 0.54, s = 0.0316228, n = 5; a value of
    0.60 gives t = 0.06 / (0.0316228 * sqrt(1.2)) = 1.732051, df 4: one-sided p =
    0.0791 (scipy.stats.t.sf(1.732051, 4), checked against the t table: t_{0.95,4} =
    2.132 > 1.73 > t_{0.90,4} = 1.533)."""
    null = [0.50, 0.52, 0.54, 0.56, 0.58]
    assert null_p_value(0.60, null) == pytest.approx(0.07911, abs=1e-4)
    assert null_p_value(0.54, null) == pytest.approx(0.5)
    # The threshold is where the p-value crosses alpha.
    threshold = null_threshold(null, 0.01)
    assert null_p_value(threshold, null) == pytest.approx(0.01, rel=1e-6)
    assert null_p_value(threshold + 1e-6, null) < 0.01 < null_p_value(threshold - 1e-6, null)
    with pytest.raises(ValueError, match="spread"):
        null_p_value(0.6, [0.5, 0.52])


def test_null_test_keeps_its_false_positive_rate_on_normal_draws():
    """Draws from the null's own distribution, each tested against 6 others: about
    alpha of them fall below alpha (the t prediction test is exact for normal data)."""
    rng = np.random.default_rng(0)
    p = [null_p_value(x, null) for x, null in zip(rng.normal(0.53, 0.01, 4000), rng.normal(0.53, 0.01, (4000, 6)))]
    assert np.mean(np.array(p) < 0.05) == pytest.approx(0.05, abs=0.01)


def test_leave_one_out_and_bonferroni():
    null = np.array([0.50, 0.52, 0.54, 0.56, 0.70])
    loo = leave_one_out_p_values(null)
    # 0.70 against the other four (mean 0.53, s = sqrt(0.002 / 3) = 0.025820):
    # t = 0.17 / (0.025820 * sqrt(1 + 1/4)) = 5.88897 with 3 degrees of freedom.
    assert loo[-1] == pytest.approx(t_distribution.sf(5.88897, 3), rel=1e-4)  # 0.004886
    assert loo[-1] == pytest.approx(0.004886, abs=1e-6)
    assert loo[-1] < loo[0]
    assert np.allclose(bonferroni([0.01, 0.2, 0.5], m=4), [0.04, 0.8, 1.0])
    assert np.allclose(bonferroni([0.01, 0.02]), [0.02, 0.04])


def test_null_without_spread():
    """Identical null values (a degenerate head): equal is not evidence, above is."""
    null = [0.455] * 9
    assert null_p_value(0.455, null) == 1.0 and null_p_value(0.46, null) == 0.0
    assert np.all(leave_one_out_p_values(null) == 1.0)
