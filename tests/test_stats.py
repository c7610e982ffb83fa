import numpy as np
import pandas as pd
import pytest
from scipy.special import expit
from scipy.stats import t as t_distribution

from sslsteal.probe import encode_correct as encode  # the records' producer
from sslsteal.stats import (
    Interval,
    accuracy_interval,
    bonferroni,
    contrast_interval,
    correct_matrix,
    decode_correct,
    difference_interval,
    gain_is_defined,
    gain_recovered_interval,
    group_difference_interval,
    interval_arrays,
    jackknife_variance,
    leave_one_out_p_values,
    null_p_value,
    null_threshold,
    ratio_interval,
    seed_image_interval,
    seeds_to_resolve,
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


def hand_interval(contrast, level=0.95):
    """The interval computed the long way, loop by loop (independent of the vectorised
    code): per-seed means a_s, per-image means b_i, the grand mean m; s^2 (ddof 1) of the
    a_s, v (ddof 1) of the b_i, the seed-by-image residual mean square
    sum (x - a_s - b_i + m)^2 / ((S - 1)(N - 1)); seed part s^2 / S, image part
    v / N - residual / (S N) (at least 0); half-width sqrt(t_{S-1}^2 seed + t_{N-1}^2 image)."""
    x = [[float(value) for value in row] for row in contrast]
    n_seeds, n_images = len(x), len(x[0])
    a = [sum(row) / n_images for row in x]
    b = [sum(x[s][i] for s in range(n_seeds)) / n_seeds for i in range(n_images)]
    m = sum(a) / n_seeds
    s2 = sum((value - m) ** 2 for value in a) / (n_seeds - 1)
    v = sum((value - m) ** 2 for value in b) / (n_images - 1)
    residual = sum(
        (x[s][i] - a[s] - b[i] + m) ** 2 for s in range(n_seeds) for i in range(n_images)
    ) / ((n_seeds - 1) * (n_images - 1))
    seed = s2 / n_seeds
    image = max(v / n_images - residual / (n_seeds * n_images), 0.0)
    q = 0.5 + level / 2
    half = np.sqrt(t_distribution.ppf(q, n_seeds - 1) ** 2 * seed + t_distribution.ppf(q, n_images - 1) ** 2 * image)
    return m, half, seed, image


def test_estimate_is_the_plain_mean():
    correct = bernoulli(0.73, (3, 1000), seed=1)
    interval = accuracy_interval(correct)
    assert interval.estimate == pytest.approx(correct.mean())
    assert interval.low < interval.estimate < interval.high
    assert (interval.n_seeds, interval.n_images) == (3, 1000)
    assert not interval.images_only


def test_hand_computed_three_seeds_by_four_images():
    """X = [[1,1,0,1], [1,0,0,1], [1,1,1,1]]: per-seed accuracies 0.75, 0.5, 1.0 (mean
    0.75, s^2 = 0.0625); per-image 1, 2/3, 1/3, 1 (v = 0.3055556 / 3 = 0.1018519);
    residuals x - a_s - b_i + m squared sum to 0.2222222 + 0.3055556 + 0.3055556 =
    0.8333333, over (S - 1)(N - 1) = 6 df: 0.1388889. Seed part 0.0625 / 3 = 0.0208333;
    image part 0.1018519 / 4 - 0.1388889 / 12 = 0.0138889; t_{0.975,2} = 4.302653,
    t_{0.975,3} = 3.182446: half-width sqrt(4.302653^2 x 0.0208333 + 3.182446^2 x
    0.0138889) = 0.725500."""
    x = np.array([[1, 1, 0, 1], [1, 0, 0, 1], [1, 1, 1, 1]], dtype=bool)
    m, half, seed, image = hand_interval(x)
    assert (m, seed, image) == pytest.approx((0.75, 0.0208333, 0.0138889), abs=1e-6)
    assert half == pytest.approx(0.725500, abs=1e-6)
    interval = accuracy_interval(x)
    assert (interval.estimate, interval.low, interval.high) == pytest.approx((m, m - half, m + half), abs=1e-12)
    assert interval.sd_seeds == pytest.approx(0.25) and interval.se_images**2 == pytest.approx(image)
    assert interval.se == pytest.approx(np.sqrt(seed + image))
    # The effective df: t_{df} x se is the half-width.
    assert t_distribution.ppf(0.975, interval.df) * interval.se == pytest.approx(half, rel=1e-8)
    assert 2 < interval.df < 3


def test_hand_computed_paired_difference_and_contrast():
    rng = np.random.default_rng(3)
    a, b, c, d = (rng.random((3, 4)) < p for p in (0.8, 0.5, 0.7, 0.6))
    m, half, _, _ = hand_interval(a.astype(float) - b)
    interval = difference_interval(a, b)
    assert (interval.estimate, interval.low, interval.high) == pytest.approx((m, m - half, m + half), abs=1e-12)
    # A drop difference (a - b) - (c - d) is the same on the per-(seed, image) contrast.
    m, half, _, _ = hand_interval(a.astype(float) - b - c + d)
    drop = contrast_interval([a, b, c, d], [1, -1, -1, 1])
    assert (drop.estimate, drop.low, drop.high) == pytest.approx((m, m - half, m + half), abs=1e-12)
    # Mean of two cells minus a third.
    m, half, _, _ = hand_interval((a.astype(float) + b) / 2 - c)
    group = group_difference_interval([a, b], [c])
    assert (group.estimate, group.low, group.high) == pytest.approx((m, m - half, m + half), abs=1e-12)


def test_single_seed_interval_is_over_images_only():
    a = bernoulli(0.7, (1, 3000), seed=8)
    interval = accuracy_interval(a)
    # With S = 1: the usual t-interval over test images, sqrt(p (1 - p) / (N - 1)) standard error.
    se = a.std(ddof=1) / np.sqrt(a.size)
    assert interval.images_only and np.isnan(interval.sd_seeds) and interval.df == 2999
    assert (interval.low, interval.high) == pytest.approx(
        (a.mean() - t_distribution.ppf(0.975, 2999) * se, a.mean() + t_distribution.ppf(0.975, 2999) * se)
    )


def test_pairing_narrows_the_difference_interval():
    # b equals a except 50 images that a gets right and b gets wrong: exact difference 1%.
    a = bernoulli(0.7, (1, 5000), seed=4)
    b = a.copy()
    flipped = np.flatnonzero(a[0])[:50]
    b[0, flipped] = False
    interval = difference_interval(a, b)
    assert interval.estimate == pytest.approx(0.01)
    # Paired: the only noise is in how many of the 50 flips a test set holds (sd ~ 0.0014).
    assert interval.high - interval.low < 0.008
    assert interval.low > 0.004
    # Unpaired, the two accuracies' independent noise would give a width of ~ 0.036.
    unpaired_sd = np.sqrt(a.var() / a.size + b.var() / b.size)
    assert 2 * 1.96 * unpaired_sd > 4 * (interval.high - interval.low)


def test_difference_of_identical_arrays_is_exactly_zero():
    a = bernoulli(0.55, (3, 777), seed=5)
    interval = difference_interval(a, a.copy())
    assert (interval.estimate, interval.low, interval.high, interval.se) == (0.0, 0.0, 0.0, 0.0)
    assert verdict(interval, 0.0) == "inconclusive"  # touches the margin on both sides


def test_zero_variance_cells():
    """All right, or a constant difference at every (seed, image): no spread, a
    zero-width interval at the value, finite numbers throughout."""
    ones, zeros = np.ones((3, 50), bool), np.zeros((3, 50), bool)
    for interval, value in ((accuracy_interval(ones), 1.0), (difference_interval(ones, zeros), 1.0),
                            (accuracy_interval(zeros[:1]), 0.0)):
        assert (interval.estimate, interval.low, interval.high) == (value, value, value)
        assert np.isfinite(interval.df)


def test_seed_spread_widens_the_interval():
    rng = np.random.default_rng(7)
    # Three runs whose accuracies differ a lot (0.6, 0.75, 0.9).
    three = np.stack([rng.random(2000) < p for p in (0.6, 0.75, 0.9)])
    one = three[1:2]
    width_three = accuracy_interval(three).high - accuracy_interval(three).low
    width_one = accuracy_interval(one).high - accuracy_interval(one).low
    assert width_three > 10 * width_one


def test_rejects_unpaired_shapes():
    with pytest.raises(ValueError):
        difference_interval(np.ones((2, 10), bool), np.ones((1, 10), bool))
    with pytest.raises(ValueError):
        contrast_interval([np.ones((2, 10), bool)], [1.0, -1.0])


# --- coverage by simulation ------------------------------------------------------------------

# Gauss-Hermite nodes for the population accuracy E[expit(mu + sd Z)], Z standard normal.
_NODES, _WEIGHTS = np.polynomial.hermite_e.hermegauss(120)


def population_accuracy(mu: float, sd: float) -> float:
    return float((_WEIGHTS * expit(mu + sd * _NODES)).sum() / _WEIGHTS.sum())


def simulated_coverage(n_seeds: int, paired: bool, n_sets: int = 2000, n_images: int = 2000, seed: int = 0) -> float:
    """Share of ``n_sets`` simulated datasets whose 95% interval covers the population
    value (infinitely many seeds and test images). Each dataset draws fresh test images
    (difficulty d_i ~ N(0, 1.5^2) on the logit scale) and fresh seeds (a shift
    u_s ~ N(0, tau^2) per run: about 1.2 accuracy points between seeds), then
    Bernoulli outcomes with P(correct) = expit(mu + d_i + u_s). For a difference, the
    second encoder shares the images' difficulty (plus its own per-image part, sd 0.8)
    and, through the probe's label draw, part of the seed shift."""
    rng = np.random.default_rng(seed)
    tau, sd_image, sd_own, mu_a, mu_b = 0.1, 1.5, 0.8, 1.4, 1.2
    if paired:
        truth = population_accuracy(mu_a, np.hypot(sd_image, np.sqrt(2) * tau)) - population_accuracy(
            mu_b, np.sqrt(sd_image**2 + sd_own**2 + 2 * tau**2)
        )
    else:
        truth = population_accuracy(mu_a, np.hypot(sd_image, tau))
    covered = 0
    for start in range(0, n_sets, 250):
        k = min(250, n_sets - start)
        difficulty = rng.normal(0, sd_image, (k, 1, n_images)).astype(np.float32)
        if paired:
            shared = rng.normal(0, tau, (k, n_seeds, 1))
            u_a = (shared + rng.normal(0, tau, (k, n_seeds, 1))).astype(np.float32)
            u_b = (shared + rng.normal(0, tau, (k, n_seeds, 1))).astype(np.float32)
            own = rng.normal(0, sd_own, (k, 1, n_images)).astype(np.float32)
            a = rng.random((k, n_seeds, n_images), dtype=np.float32) < expit(mu_a + difficulty + u_a)
            b = rng.random((k, n_seeds, n_images), dtype=np.float32) < expit(mu_b + difficulty + own + u_b)
            contrast = a.astype(np.int8) - b.astype(np.int8)
        else:
            u = rng.normal(0, tau, (k, n_seeds, 1)).astype(np.float32)
            contrast = rng.random((k, n_seeds, n_images), dtype=np.float32) < expit(mu_a + difficulty + u)
        out = interval_arrays(contrast, with_df=False)
        covered += int(((out["low"] <= truth) & (truth <= out["high"])).sum())
    return covered / n_sets


@pytest.mark.parametrize("n_seeds", [3, 5])
@pytest.mark.parametrize("paired", [False, True], ids=["cell", "difference"])
def test_coverage_by_simulation(n_seeds, paired):
    """2,000 simulated datasets with a real seed effect: the 95% interval covers the
    population value 93-97% of the time (measured: 0.964 and 0.952 for a cell and a
    difference with 3 seeds, 0.961 and 0.955 with 5). Over a grid of seed effects
    (tau 0 to 0.4) with 4,000 datasets each, this interval covered 0.947-0.973; the
    plain s^2/S + v/N interval with Welch-Satterthwaite df covered 0.923-0.990 (too
    narrow with 3 seeds and a large seed effect, too wide with a small one)."""
    assert 0.93 <= simulated_coverage(n_seeds, paired) <= 0.97


def test_single_seed_interval_misses_the_seed_spread():
    """Why one seed gets no verdict: its images-only interval leaves the run-to-run
    spread out and covers the population value far less than 95% of the time (0.736)."""
    assert simulated_coverage(1, False, n_sets=1000) < 0.8


def test_vectorised_intervals_equal_one_at_a_time():
    contrast = np.random.default_rng(2).random((4, 3, 60)) < 0.6
    out = interval_arrays(contrast)
    for k in range(4):
        one = accuracy_interval(contrast[k])
        assert (out["low"][k], out["high"][k], out["df"][k]) == pytest.approx((one.low, one.high, one.df))


# --- verdicts ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "low, high, margin, expected",
    [
        (0.01, 0.03, 0.0, "holds"),
        (-0.03, -0.01, 0.0, "contradicted"),
        (-0.01, 0.01, 0.0, "inconclusive"),
        (-0.015, 0.01, -0.02, "holds"),  # non-inferiority: within 2 points
        (-0.05, -0.03, -0.02, "contradicted"),
        (-0.03, 0.0, -0.02, "inconclusive"),
        (-0.02, 0.01, -0.02, "inconclusive"),  # the interval touches the margin: low == margin
        (-0.04, -0.02, -0.02, "inconclusive"),  # high == margin
        (float("nan"), float("nan"), 0.0, "inconclusive"),  # no finite interval
    ],
)
def test_verdict_rules(low, high, margin, expected):
    assert verdict(Interval(0.5 * (low + high), low, high, 3, 100), margin) == expected


def test_verdict_refused_below_min_seeds():
    clear = dict(estimate=0.5, low=0.4, high=0.6, n_images=100)
    assert verdict(Interval(n_seeds=1, **clear), 0.0, min_seeds=3) == "not tested (1 seed)"
    assert verdict(Interval(n_seeds=2, **clear), 0.0, min_seeds=3) == "not tested (2 seeds)"
    assert verdict(Interval(n_seeds=3, **clear), 0.0, min_seeds=3) == "holds"
    assert verdict(Interval(n_seeds=1, **clear), 0.0) == "holds"  # no rule asked for


def test_seeds_to_resolve_by_hand():
    """Seed spread 0.02, image part 0.003 (df 1999), distance 0.02: the first S' with
    sqrt(t_{S'-1}^2 0.02^2 / S' + t_{1999}^2 0.003^2) < 0.02, found by a plain loop."""
    interval = Interval(0.0, -0.1, 0.1, 3, 2000, sd_seeds=0.02, se_images=0.003, df_images=1999)

    def by_hand(distance):
        for n in range(3, 101):
            half = np.sqrt(t_distribution.ppf(0.975, n - 1) ** 2 * 0.02**2 / n + t_distribution.ppf(0.975, 1999) ** 2 * 0.003**2)
            if half < distance:
                return n
        return None

    assert seeds_to_resolve(interval, 0.02) == by_hand(0.02) == 7
    assert seeds_to_resolve(interval, -0.06) == by_hand(0.06) == 3
    assert seeds_to_resolve(interval, 0.005) is None  # the test images alone are too few
    assert seeds_to_resolve(interval, 0.0) is None
    assert seeds_to_resolve(Interval(0.0, -0.1, 0.1, 1, 2000, se_images=0.003, df_images=1999), 0.5) is None


# --- ratios ------------------------------------------------------------------------------------


def test_fieller_interval_by_hand():
    """Gain recovered (stolen - floor) / (victim - floor) on 3 seeds x 400 images: a, b the
    means of the two contrasts; their 2 x 2 seed and image covariance matrices computed
    like :func:`hand_interval`'s parts; the interval solves
    (b^2 - Q_bb) g^2 - 2 (a b - Q_ab) g + (a^2 - Q_aa) = 0, Q = t_2^2 seed + t_399^2 image.
    At each bound the pivot a - g b sits exactly on its own interval's edge."""
    rng = np.random.default_rng(11)
    base = rng.random((3, 1, 400))  # each encoder's own image difficulty
    shift = np.array([[0.0], [0.04], [-0.03]])  # and seed effects
    victim, stolen, floor = (rng.random((3, 400)) < np.clip(p + 0.6 * base[j] + shift * k, 0, 1)
                             for j, (p, k) in enumerate(((0.35, 1), (0.25, 1.5), (0.05, 0.5))))
    num, den = stolen.astype(float) - floor, victim.astype(float) - floor
    n_seeds, n_images = num.shape
    a, b = num.mean(), den.mean()

    def parts(x, y):
        mx, my = x.mean(), y.mean()
        xs, ys, xi, yi = x.mean(1), y.mean(1), x.mean(0), y.mean(0)
        seed = ((xs - mx) * (ys - my)).sum() / (n_seeds - 1) / n_seeds
        residual = sum((x[s, i] - xs[s] - xi[i] + mx) * (y[s, i] - ys[s] - yi[i] + my)
                       for s in range(n_seeds) for i in range(n_images)) / ((n_seeds - 1) * (n_images - 1))
        image = ((xi - mx) * (yi - my)).sum() / (n_images - 1) / n_images - residual / (n_seeds * n_images)
        return seed, image

    # Both covariance matrices are positive definite here (the code would clip them otherwise).
    for k in (0, 1):
        matrix = np.array([[parts(num, num)[k], parts(num, den)[k]], [parts(num, den)[k], parts(den, den)[k]]])
        assert np.all(np.linalg.eigvalsh(matrix) > 0)
    q_seed, q_image = t_distribution.ppf(0.975, n_seeds - 1), t_distribution.ppf(0.975, n_images - 1)
    q = {key: q_seed**2 * parts(x, y)[0] + q_image**2 * parts(x, y)[1]
         for key, (x, y) in {"aa": (num, num), "ab": (num, den), "bb": (den, den)}.items()}
    roots = np.sort(np.roots([b * b - q["bb"], -2 * (a * b - q["ab"]), a * a - q["aa"]]).real)
    interval = gain_recovered_interval(stolen, victim, floor)
    assert interval.estimate == pytest.approx(a / b)
    assert (interval.low, interval.high) == pytest.approx(tuple(roots), rel=1e-9)
    assert interval.low < interval.estimate < interval.high
    for g in roots:
        pivot = accuracy_interval(num - g * den)
        assert abs(pivot.estimate) == pytest.approx(pivot.high - pivot.estimate, rel=1e-6)


def test_ratio_interval_unbounded_when_denominator_reaches_zero():
    rng = np.random.default_rng(12)
    a, b = rng.random((3, 300)) < 0.6, rng.random((3, 300)) < 0.6
    interval = ratio_interval(a.astype(float), a.astype(float) - b)
    assert np.isnan(interval.low) and np.isnan(interval.high)


def test_gain_is_defined_needs_three_points_of_lower_bound():
    victim = bernoulli(0.8, (3, 3000), 13)
    far = victim.copy()
    for seed in range(3):
        far[seed, np.flatnonzero(victim[seed])[:600]] = False  # 20 points below the victim
    assert gain_is_defined(difference_interval(victim, far))
    near = victim.copy()
    for seed in range(3):
        near[seed, np.flatnonzero(victim[seed])[:90]] = False  # 3 points below: lower bound under 3
    assert difference_interval(victim, near).estimate == pytest.approx(0.03)
    assert not gain_is_defined(difference_interval(victim, near))
    assert not gain_is_defined(difference_interval(victim, victim.copy()))


def test_gain_recovered_on_a_hand_computed_case():
    n = 1000
    stolen, victim, floor = (np.zeros((3, n), bool) for _ in range(3))
    victim[:, :800] = True  # 0.80
    stolen[:, :700] = True  # 0.70
    floor[:, :400] = True  # 0.40
    interval = gain_recovered_interval(stolen, victim, floor)
    assert interval.estimate == pytest.approx((0.7 - 0.4) / (0.8 - 0.4))
    assert interval.low < 0.75 < interval.high


# --- a jackknife image part -------------------------------------------------------------------


def test_seed_image_interval_by_hand():
    """Per-seed values 0.1, 0.12, 0.14 (s = 0.02) and a jackknife image variance 1e-4 on
    20 blocks: half-width sqrt(t_2^2 0.02^2 / 3 + t_19^2 1e-4)."""
    replicates = np.linspace(-1, 1, 20) * 0.01
    variance = 19 / 20 * ((replicates - replicates.mean()) ** 2).sum()
    assert jackknife_variance(replicates) == pytest.approx(variance)
    interval = seed_image_interval([0.1, 0.12, 0.14], variance, 19, 5000)
    half = np.sqrt(t_distribution.ppf(0.975, 2) ** 2 * 0.02**2 / 3 + t_distribution.ppf(0.975, 19) ** 2 * variance)
    assert (interval.estimate, interval.low, interval.high) == pytest.approx((0.12, 0.12 - half, 0.12 + half))
    assert interval.sd_seeds == pytest.approx(0.02) and interval.df_images == 19


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
