"""95% t-intervals for linear-probe accuracies over seeds and test images.

A *cell* is ``S`` seeds x ``N`` test images: each seed is its own training run (the
extraction or the attacker's own SSL, and the probe's label draw), and every seed of
every cell is scored on the same ``N`` test images in the same order. ``correct_matrix``
gives the (S, N) correct/incorrect array of a cell.

Two sources of noise move a cell's accuracy: the training randomness (another seed gives
another run) and the sampling of the test images (another test set, other images).
With x_si the outcome of seed s on image i, a_s the accuracy of seed s, b_i the accuracy
on image i averaged over the seeds and m the mean of all:

- seed part   s^2 / S, s^2 the sample variance (ddof 1) of the a_s, with S - 1 df;
- image part  v / N - r / (S N), v the sample variance of the b_i and
  r = sum (x_si - a_s - b_i + m)^2 / ((S - 1)(N - 1)) the seed-by-image residual mean
  square, with N - 1 df (clipped at 0). The residual term is already inside s^2 / S;
  without it the Bernoulli noise would be counted twice.

se = sqrt(seed + image) (an unbiased variance of m under seed + image + noise), and the
interval is m +- sqrt(t_{S-1}^2 seed + t_{N-1}^2 image), each part widened by its own t
quantile (Banerjee's combination of separately estimated variances). ``Interval.df`` is
the effective df: t_{df} se is that half-width. Why not one t with Welch-Satterthwaite
df: with 3 seeds its df is estimated from the same s^2 it scales, and in simulations
(``tests/test_stats.py``: 2,000-4,000 datasets per setting, seed effects from none to
large) its coverage ran 0.923-0.990 against 0.947-0.973 for this interval.

Differences, and any linear contrast of cells (mean of some cells minus the mean of
others, drops (a - b) - (c - d)), get the same interval computed on the per-(seed, image)
contrast: the cells are *paired* by seed and by image, so a seed that is good for both
sides, or an image that is hard for both, cancels out of the difference.

With one seed the seed part cannot be estimated: the interval is over test images only
(t_{N-1} sqrt(v / N)) and says nothing about training randomness. ``Interval.n_seeds``
(``images_only``) says so; the claims table refuses a verdict on fewer than 3 seeds
(``sslsteal.claims``).
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

LEVEL = 0.95


def decode_correct(text: str, n: int) -> np.ndarray:
    """Inverse of ``sslsteal.probe.encode_correct``: base64 -> packed bits -> ``n`` bools."""
    bits = np.unpackbits(np.frombuffer(base64.b64decode(text), dtype=np.uint8))
    if len(bits) < n:
        raise ValueError(f"encoded correct vector holds {len(bits)} bits, fewer than n={n}")
    return bits[:n].astype(bool)


def correct_matrix(rows: pd.DataFrame, seeds: list[int] | None = None) -> np.ndarray:
    """Stack one cell's ``correct`` vectors into a (n_seeds, n_test) bool array.

    ``rows`` holds one probe record per seed (columns ``seed``, ``n_test``, ``correct``).
    Rows are ordered by ``seeds`` (default: the rows' seeds, sorted), so two cells built
    with the same ``seeds`` are paired row by row.
    """
    by_seed = {int(seed): group for seed, group in rows.groupby("seed")}
    duplicated = [seed for seed, group in by_seed.items() if len(group) > 1]
    if duplicated:
        raise ValueError(f"several probe records for seed(s) {duplicated} in one cell")
    seeds = sorted(by_seed) if seeds is None else [int(seed) for seed in seeds]
    missing = [seed for seed in seeds if seed not in by_seed]
    if missing:
        raise KeyError(f"no probe record for seed(s) {missing}; cell has {sorted(by_seed)}")
    sizes = {int(by_seed[seed]["n_test"].iloc[0]) for seed in seeds}
    if len(sizes) != 1:
        raise ValueError(f"probe records of one cell disagree on n_test: {sorted(sizes)}")
    n_test = sizes.pop()
    return np.stack([decode_correct(by_seed[seed]["correct"].iloc[0], n_test) for seed in seeds])


@dataclass(frozen=True)
class Interval:
    """A point estimate with its ``LEVEL`` interval.

    ``n_seeds``: the seeds it rests on (1: the interval is over test images only, see
    :attr:`images_only`); ``n_images``: the test images. ``se``: the standard error;
    ``df``: the effective degrees of freedom (t_{df} x se is the half-width);
    ``sd_seeds``: the standard deviation of the per-seed values (NaN with one seed);
    ``se_images``: the test-image part of ``se`` (sqrt of the image part, or of a
    jackknife variance) with its degrees of freedom ``df_images``. The last three let
    :func:`seeds_to_resolve` say how many seeds an undecided comparison would need."""

    estimate: float
    low: float
    high: float
    n_seeds: int
    n_images: int
    se: float = float("nan")
    df: float = float("nan")
    sd_seeds: float = float("nan")
    se_images: float = float("nan")
    df_images: float = float("nan")

    @property
    def images_only(self) -> bool:
        """True when one seed: the interval leaves training randomness out."""
        return self.n_seeds < 2


def _check_paired(arrays: Sequence[np.ndarray]) -> tuple[int, int]:
    """All arrays must be (S, N) with one common S and N: they are paired by seed and image."""
    if not len(arrays):
        raise ValueError("an interval needs at least one array")
    shapes = [np.shape(array) for array in arrays]
    if any(len(shape) != 2 for shape in shapes) or len(set(shapes)) != 1:
        raise ValueError(f"arrays must be (seeds, images) with a common shape, got {shapes}")
    n_seeds, n_images = shapes[0]
    if n_seeds == 0 or n_images == 0:
        raise ValueError(f"arrays are empty: {shapes}")
    return n_seeds, n_images


def _t_quantile(df, level: float = LEVEL):
    from scipy.stats import t

    return t.ppf(0.5 + level / 2.0, df)


def _parts(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The seed part and the test-image part of the covariance of the means of two
    (..., S, N) contrasts (of the variance when ``x is y``), vectorised over leading axes.

    Seed part: cov over seeds of the per-seed means / S (0 when S = 1). Image part: cov
    over images of the per-image means / N, less the seed-by-image residual mean square /
    (S N), which the seed part already holds (without that correction the residual noise
    would be counted twice: an interval too wide when seeds hardly differ)."""
    n_seeds, n_images = x.shape[-2:]
    dx, dy = x - x.mean(axis=(-2, -1), keepdims=True), y - y.mean(axis=(-2, -1), keepdims=True)
    seed_x, seed_y = dx.mean(axis=-1), dy.mean(axis=-1)
    image_x, image_y = dx.mean(axis=-2), dy.mean(axis=-2)
    seed_products = (seed_x * seed_y).sum(axis=-1)
    image_products = (image_x * image_y).sum(axis=-1)
    seed = seed_products / ((n_seeds - 1) * n_seeds) if n_seeds > 1 else np.zeros_like(seed_products)
    image = image_products / ((n_images - 1) * n_images) if n_images > 1 else np.zeros_like(image_products)
    if n_seeds > 1 and n_images > 1:
        residual = (dx * dy).sum(axis=(-2, -1)) - n_images * seed_products - n_seeds * image_products
        image = image - residual / ((n_seeds - 1) * (n_images - 1) * n_seeds * n_images)
    return seed, image


def _quantiles(n_seeds: int, image_df: float, level: float) -> tuple[float, float]:
    """The t quantiles of the seed part (S - 1 df; 0 when S = 1) and the image part."""
    seed = float(_t_quantile(n_seeds - 1, level)) if n_seeds > 1 else 0.0
    image = float(_t_quantile(image_df, level)) if image_df > 0 else 0.0
    return seed, image


def effective_df(ratio, low: float, high: float, level: float = LEVEL):
    """The df whose t quantile is ``ratio`` (half-width / se), by bisection on log df in
    [low, high]; ``high`` where the ratio is at or below its quantile."""
    ratio = np.asarray(ratio, dtype=np.float64)
    if high <= low:
        return np.full_like(ratio, high)
    lo, hi = np.full_like(ratio, np.log(low)), np.full_like(ratio, np.log(high))
    for _ in range(60):
        middle = 0.5 * (lo + hi)
        above = _t_quantile(np.exp(middle), level) > ratio  # df too small: quantile too large
        lo, hi = np.where(above, middle, lo), np.where(above, hi, middle)
    df = np.exp(0.5 * (lo + hi))
    df = np.where(ratio <= _t_quantile(high, level), high, df)
    return np.where(ratio >= _t_quantile(low, level), low, df)


def _combine(seed_part, image_part, n_seeds: int, image_df: float, level: float) -> dict[str, np.ndarray]:
    """se = sqrt(seed + image) and the half-width sqrt(q_S^2 seed + q_I^2 image), q_S and
    q_I the t quantiles at S - 1 and ``image_df`` df; the effective df is the one whose t
    quantile is half-width / se (between S - 1 and ``image_df``)."""
    seed_part = np.asarray(seed_part, dtype=np.float64)
    image_part = np.maximum(np.asarray(image_part, dtype=np.float64), 0.0)
    q_seed, q_image = _quantiles(n_seeds, image_df, level)
    se = np.sqrt(seed_part + image_part)
    half = np.sqrt(q_seed**2 * seed_part + q_image**2 * image_part)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(se > 0, half / np.where(se > 0, se, 1.0), q_image)
    if n_seeds > 1:
        df = effective_df(ratio, n_seeds - 1, image_df, level)
    else:
        df = np.full_like(se, float(image_df))
    return {"se": se, "half": half, "df": df}


def interval_arrays(contrast: np.ndarray, level: float = LEVEL, with_df: bool = True) -> dict[str, np.ndarray]:
    """The interval of the mean of ``contrast`` (..., S, N), vectorised over the leading
    axes (one interval per (S, N) slice): estimate, low, high, se, df (the effective df:
    t_{df} se is the half-width; skipped when ``with_df`` is false), sd_seeds (the
    standard deviation of the per-seed means; NaN when S = 1), se_images (the image part
    of se) and df_images (N - 1)."""
    contrast = np.asarray(contrast, dtype=np.float64)
    n_seeds, n_images = contrast.shape[-2:]
    estimate = contrast.mean(axis=(-2, -1))
    seed_part, image_part = _parts(contrast, contrast)
    image_part = np.maximum(image_part, 0.0)
    q_seed, q_image = _quantiles(n_seeds, n_images - 1, level)
    se = np.sqrt(seed_part + image_part)
    half = np.sqrt(q_seed**2 * seed_part + q_image**2 * image_part)
    out = {
        "estimate": estimate, "low": estimate - half, "high": estimate + half, "se": se,
        "sd_seeds": np.sqrt(seed_part * n_seeds) if n_seeds > 1 else np.full_like(estimate, np.nan),
        "se_images": np.sqrt(image_part), "df_images": np.full_like(estimate, n_images - 1.0),
    }
    if with_df:
        out["df"] = _combine(seed_part, image_part, n_seeds, n_images - 1, level)["df"]
    return out


def _interval(contrast: np.ndarray, level: float) -> Interval:
    n_seeds, n_images = contrast.shape
    values = {name: float(value) for name, value in interval_arrays(contrast, level).items()}
    return Interval(n_seeds=n_seeds, n_images=n_images, **values)


def contrast_matrix(arrays: Sequence[np.ndarray], weights: Sequence[float]) -> np.ndarray:
    """The per-(seed, image) linear contrast sum_k weights[k] * arrays[k], as float64."""
    _check_paired(arrays)
    if len(weights) != len(arrays):
        raise ValueError(f"{len(arrays)} arrays but {len(weights)} weights")
    out = np.zeros(np.shape(arrays[0]), dtype=np.float64)
    for array, weight in zip(arrays, weights):
        out += weight * np.asarray(array, dtype=np.float64)
    return out


def contrast_interval(arrays: Sequence[np.ndarray], weights: Sequence[float], level: float = LEVEL) -> Interval:
    """The paired interval of sum_k weights[k] * accuracy(arrays[k]); every array is
    (S, N), paired by seed and test image."""
    return _interval(contrast_matrix(arrays, weights), level)


def accuracy_interval(correct: np.ndarray, level: float = LEVEL) -> Interval:
    """Accuracy (mean of ``correct``, (S, N)) with its interval over seeds and images."""
    return contrast_interval([correct], [1.0], level)


def difference_interval(a: np.ndarray, b: np.ndarray, level: float = LEVEL) -> Interval:
    """Paired accuracy difference acc(a) - acc(b)."""
    return contrast_interval([a, b], [1.0, -1.0], level)


def group_difference_interval(
    positive: Sequence[np.ndarray], negative: Sequence[np.ndarray], level: float = LEVEL
) -> Interval:
    """Mean accuracy of the ``positive`` cells minus mean accuracy of the ``negative`` ones,
    all paired by seed and test image."""
    weights = [1.0 / len(positive)] * len(positive) + [-1.0 / len(negative)] * len(negative)
    return contrast_interval([*positive, *negative], weights, level)


def _psd(matrix: np.ndarray) -> np.ndarray:
    """The nearest positive semi-definite matrix (negative eigenvalues set to 0)."""
    values, vectors = np.linalg.eigh(matrix)
    return (vectors * np.maximum(values, 0.0)) @ vectors.T


def ratio_interval(numerator: np.ndarray, denominator: np.ndarray, level: float = LEVEL) -> Interval:
    """Fieller's interval for mean(numerator) / mean(denominator), both (S, N) contrasts
    paired by seed and image.

    With a, b the two means, the interval is every g for which a - g b (the pivot) is
    inside its own interval: (a - g b)^2 <= q_S^2 V_S(g) + q_I^2 V_I(g), V_S and V_I the
    seed and image parts of the pivot's variance (quadratics in g, from the 2 x 2
    covariance matrices of (a, b), as for a single contrast) and q_S, q_I their t
    quantiles. It is bounded only when the denominator is significantly away from 0
    (b^2 > q_S^2 V_S,bb + q_I^2 V_I,bb); otherwise low and high are NaN. ``se``: the delta
    method's; ``df``: the pivot's effective df at the estimate."""
    numerator, denominator = np.asarray(numerator, np.float64), np.asarray(denominator, np.float64)
    n_seeds, n_images = _check_paired([numerator, denominator])
    a, b = float(numerator.mean()), float(denominator.mean())
    nan = float("nan")
    if b == 0:
        return Interval(nan, nan, nan, n_seeds, n_images)
    ratio = a / b
    stacked = np.stack([numerator, denominator])
    seed, image = _parts(stacked[:, None], stacked[None, :])  # 2 x 2 covariance matrices
    seed, image = _psd(seed), _psd(image)
    q_seed, q_image = _quantiles(n_seeds, n_images - 1, level)
    q = q_seed**2 * seed + q_image**2 * image
    weights = np.array([1.0, -ratio])
    pivot = _combine(weights @ seed @ weights, weights @ image @ weights, n_seeds, n_images - 1, level)
    se, df = float(pivot["se"]) / abs(b), float(pivot["df"])
    quad_a, quad_b, quad_c = b * b - q[1, 1], a * b - q[0, 1], a * a - q[0, 0]
    if quad_a <= 0:
        return Interval(ratio, nan, nan, n_seeds, n_images, se=se, df=df)
    root = math.sqrt(max(quad_b * quad_b - quad_a * quad_c, 0.0))
    low, high = float((quad_b - root) / quad_a), float((quad_b + root) / quad_a)
    return Interval(ratio, low, high, n_seeds, n_images, se=se, df=df)


# The gain recovered is reported only where the victim's lower 95% bound over its floor
# is at least this (3 points): below it, the ratio's denominator is too uncertain.
GAIN_MIN_GAP = 0.03


def gain_recovered_interval(stolen: np.ndarray, victim: np.ndarray, floor: np.ndarray, level: float = LEVEL) -> Interval:
    """Share of the victim's gain over a floor that the stolen copy recovers,
    (acc(stolen) - acc(floor)) / (acc(victim) - acc(floor)), with Fieller's interval
    (:func:`ratio_interval`) on the per-(seed, image) contrasts stolen - floor and
    victim - floor; all three (S, N) on the same seeds and images. Callers report it
    only where :func:`gain_is_defined`."""
    stolen, victim, floor = (np.asarray(x, dtype=np.float64) for x in (stolen, victim, floor))
    return ratio_interval(stolen - floor, victim - floor, level)


def gain_is_defined(victim_over_floor: Interval, min_gap: float = GAIN_MIN_GAP) -> bool:
    """True if the paired 95% interval of acc(victim) - acc(floor)
    (``difference_interval(victim, floor)``, which the tables also show) has its lower
    bound at least ``min_gap``: the gain-recovered ratio's denominator is then well away
    from 0."""
    return bool(victim_over_floor.low >= min_gap)


def verdict(interval: Interval, margin: float = 0.0, min_seeds: int | None = None) -> str:
    """Verdict on the claim "effect > margin": "holds" if the interval lies strictly above
    the margin, "contradicted" if strictly below, else "inconclusive" (also when the
    interval is not finite). With ``min_seeds``, an interval on fewer seeds gets
    "not tested (k seeds)" whatever its bounds.

    A non-inferiority claim "A is within d of B" is effect = A - B with margin = -d.
    """
    if min_seeds is not None and interval.n_seeds < min_seeds:
        return f"not tested ({interval.n_seeds} seed{'' if interval.n_seeds == 1 else 's'})"
    if interval.low > margin:
        return "holds"
    if interval.high < margin:
        return "contradicted"
    return "inconclusive"


def half_width(sd_seeds: float, n_seeds, se_images: float, df_images: float, level: float = LEVEL):
    """The interval's half-width with ``n_seeds`` seeds (array or number) of spread
    ``sd_seeds`` and an image part ``se_images`` (``df_images`` df):
    sqrt(t_{S-1}^2 sd_seeds^2 / S + t_{df_images}^2 se_images^2)."""
    n_seeds = np.asarray(n_seeds, dtype=np.float64)
    q_seed, q_image = _t_quantile(n_seeds - 1, level), _t_quantile(df_images, level)
    return np.sqrt(q_seed**2 * sd_seeds**2 / n_seeds + q_image**2 * se_images**2)


def seeds_to_resolve(interval: Interval, distance: float, level: float = LEVEL, max_seeds: int = 100, min_seeds: int = 3):
    """The smallest number of seeds S' (from ``min_seeds`` to ``max_seeds``) at which an
    effect ``distance`` away from the margin would be resolved, given the measured seed
    spread and image part: :func:`half_width` at S' < |distance|. None when no S' up to
    ``max_seeds`` does (the test-image part alone may be too wide, or the distance 0) or
    when the seed spread is unknown (one seed)."""
    distance = abs(float(distance))
    if not (np.isfinite(interval.sd_seeds) and np.isfinite(interval.se_images) and distance > 0):
        return None
    seeds = np.arange(min_seeds, max_seeds + 1)
    resolved = np.flatnonzero(half_width(interval.sd_seeds, seeds, interval.se_images, interval.df_images, level) < distance)
    return int(seeds[resolved[0]]) if len(resolved) else None


def jackknife_variance(replicates) -> np.ndarray:
    """Delete-a-group jackknife variance (G - 1) / G * sum_g (r_g - mean r)^2 of an
    estimate from its G leave-one-group-out ``replicates`` (last axis)."""
    replicates = np.asarray(replicates, dtype=np.float64)
    groups = replicates.shape[-1]
    centred = replicates - replicates.mean(axis=-1, keepdims=True)
    return (groups - 1) / groups * (centred**2).sum(axis=-1)


def seed_image_interval(per_seed, image_variance: float, image_df: float, n_images: int, level: float = LEVEL) -> Interval:
    """The interval of mean(``per_seed``) whose image part comes from elsewhere (a
    jackknife over blocks of test images, say): seed part var(per_seed) / S with S - 1
    df, image part ``image_variance`` with ``image_df`` df, combined as for accuracies."""
    per_seed = np.asarray(per_seed, dtype=np.float64)
    n_seeds = len(per_seed)
    seed_part = per_seed.var(ddof=1) / n_seeds if n_seeds > 1 else 0.0
    combined = _combine(seed_part, image_variance, n_seeds, image_df, level)
    estimate, half = float(per_seed.mean()), float(combined["half"])
    return Interval(
        estimate, estimate - half, estimate + half, n_seeds, n_images, se=float(combined["se"]), df=float(combined["df"]),
        sd_seeds=float(per_seed.std(ddof=1)) if n_seeds > 1 else float("nan"),
        se_images=math.sqrt(max(image_variance, 0.0)), df_images=float(image_df),
    )


# --- a score against a null of independent draws ---------------------------------------


def null_p_value(value: float, null) -> float:
    """One-sided p-value of ``value`` as a new draw from the null that the samples
    ``null`` come from, assumed normal with unknown mean and spread: with n samples of
    mean m and standard deviation s, (value - m) / (s * sqrt(1 + 1/n)) follows Student's
    t with n - 1 degrees of freedom (the prediction interval's statistic)."""
    from scipy.stats import t

    null = np.asarray(null, dtype=np.float64)
    n = len(null)
    if n < 3:
        raise ValueError(f"a null of {n} samples cannot estimate its spread (need at least 3)")
    scale = null.std(ddof=1) * np.sqrt(1.0 + 1.0 / n)
    if scale <= 1e-12 * max(1.0, abs(null.mean())):
        # A null without spread (e.g. a watermark head that always names one class):
        # only a value above it is evidence.
        return 0.0 if value > null.mean() + 1e-12 else 1.0
    return float(t.sf((value - null.mean()) / scale, df=n - 1))


def null_threshold(null, alpha: float) -> float:
    """The smallest value :func:`null_p_value` puts below ``alpha``: the upper one-sided
    (1 - alpha) prediction bound of the null."""
    from scipy.stats import t

    null = np.asarray(null, dtype=np.float64)
    n = len(null)
    return float(null.mean() + t.isf(alpha, df=n - 1) * null.std(ddof=1) * np.sqrt(1.0 + 1.0 / n))


def leave_one_out_p_values(null) -> np.ndarray:
    """Each null sample's :func:`null_p_value` against the others: how the test treats an
    innocent it has not seen (the procedure's false-positive rate, measured)."""
    null = np.asarray(null, dtype=np.float64)
    return np.array([null_p_value(null[i], np.delete(null, i)) for i in range(len(null))])


def bonferroni(p_values, m: int | None = None) -> np.ndarray:
    """Bonferroni-adjusted p-values, min(1, m * p), for ``m`` tests (default: as many as
    p-values): flagging adjusted p < alpha keeps the family-wise false-positive rate
    at most alpha."""
    p_values = np.asarray(p_values, dtype=np.float64)
    m = len(p_values) if m is None else m
    return np.minimum(1.0, p_values * m)
