"""Paired bootstrap intervals for linear-probe accuracies.

Every probe of one downstream task is scored on the same test images in the same order,
and probes with the same ``seed`` are trained on the same probe labels. So two encoders'
results are paired by (seed, test image): an image that is hard for one encoder is
usually hard for the other, and that shared difficulty cancels out of a difference.
Resampling both sides with the *same* indices keeps the pairing; resampling them
independently would add the per-image noise of both and give intervals several times
wider than the evidence warrants.

The intervals are two-level percentile bootstrap intervals. Each replicate draws
``S`` seed indices with replacement (only when ``S > 1``) and ``N`` test-image indices
with replacement, the same draws for every array; an array's accuracy in the replicate
is its mean over the drawn seeds and images. The statistic (a difference, ratio, ...)
is computed per replicate and the interval is the central ``level`` percentile range.

- With 1 seed this is the usual paired bootstrap over test images: it covers test-set
  sampling noise but not the run-to-run spread of training.
- With 3 seeds the seed level is coarse (only 10 distinct seed multisets), so the
  seed part of the interval is a rough guide rather than a calibrated one.

The point estimate is always the statistic on the full data (mean over all seeds and
images), not the bootstrap mean.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
import pandas as pd

Statistic = Callable[[dict[str, np.ndarray]], np.ndarray]

# Replicates per chunk: bounds the (chunk, N) image-count matrix to ~10 MB at N = 5,000.
_CHUNK = 256


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
    """A point estimate with its bootstrap percentile interval."""

    estimate: float
    low: float
    high: float
    n_seeds: int
    n_images: int


def _check_paired(arrays: dict[str, np.ndarray]) -> tuple[int, int]:
    """All arrays must be (S, N) with one common S and N, since they are resampled together."""
    if not arrays:
        raise ValueError("bootstrap needs at least one array")
    shapes = {name: np.shape(array) for name, array in arrays.items()}
    if any(len(shape) != 2 for shape in shapes.values()) or len(set(shapes.values())) != 1:
        raise ValueError(f"arrays must be (seeds, images) with a common shape, got {shapes}")
    n_seeds, n_images = next(iter(shapes.values()))
    if n_seeds == 0 or n_images == 0:
        raise ValueError(f"arrays are empty: {shapes}")
    return n_seeds, n_images


def _draw_counts(rng: np.random.Generator, n_draws: int, size: int, n_categories: int) -> np.ndarray:
    """(size, n_categories) counts of ``n_categories`` indices drawn ``n_draws`` times with
    replacement per row: a uniform multinomial, via one bincount over offset indices."""
    indices = rng.integers(0, n_categories, size=(size, n_draws))
    offsets = np.arange(size)[:, None] * n_categories
    counts = np.bincount((indices + offsets).ravel(), minlength=size * n_categories)
    return counts.reshape(size, n_categories).astype(np.float64)


def _replicate_accuracies(
    stacked: np.ndarray, n_seeds: int, n_boot: int, rng: np.random.Generator
) -> Iterator[np.ndarray]:
    """Yield (chunk, K) accuracies of the K arrays stacked as (K * S, N), chunk by chunk.

    accuracy_k = sum_s c_s * sum_i w_i X_k[s, i] / (S * N), with image counts w and seed
    counts c shared by every array (the pairing). In float64 the sums of 0/1 values are
    exact integers, so identical arrays give bit-identical replicate accuracies.
    """
    n_images = stacked.shape[1]
    n_arrays = stacked.shape[0] // n_seeds
    for start in range(0, n_boot, _CHUNK):
        size = min(_CHUNK, n_boot - start)
        image_counts = _draw_counts(rng, n_images, size, n_images)
        per_seed = (image_counts @ stacked.T).reshape(size, n_arrays, n_seeds)
        if n_seeds > 1:
            seed_counts = _draw_counts(rng, n_seeds, size, n_seeds)
        else:
            seed_counts = np.ones((size, 1))
        yield np.einsum("bks,bs->bk", per_seed, seed_counts) / (n_seeds * n_images)


def bootstrap(
    arrays: dict[str, np.ndarray],
    statistic: Statistic,
    *,
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> Interval:
    """Two-level paired percentile bootstrap of ``statistic`` over seeds and test images.

    ``arrays``: name -> (S, N) bool, correct/incorrect per (seed, test image), all paired.
    ``statistic``: dict name -> vector of accuracies (one per replicate) -> vector.
    Estimate: ``statistic`` on the full-data accuracies; interval: the (1 - level) / 2 and
    (1 + level) / 2 quantiles of the replicate statistics (NaN replicates ignored).
    Deterministic given ``seed``.
    """
    n_seeds, n_images = _check_paired(arrays)
    names = list(arrays)
    stacked = np.concatenate([np.asarray(arrays[name], dtype=np.float64) for name in names])
    rng = np.random.default_rng(seed)
    replicates = np.concatenate(list(_replicate_accuracies(stacked, n_seeds, n_boot, rng)))
    full = {name: np.array([np.asarray(arrays[name], dtype=np.float64).mean()]) for name in names}
    with np.errstate(divide="ignore", invalid="ignore"):
        values = np.asarray(statistic({name: replicates[:, k] for k, name in enumerate(names)}), dtype=float)
        estimate = float(np.asarray(statistic(full), dtype=float).ravel()[0])
    finite = values[np.isfinite(values)]
    if len(finite) == 0:
        return Interval(estimate, float("nan"), float("nan"), n_seeds, n_images)
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(finite, [tail, 1.0 - tail])
    return Interval(estimate, float(low), float(high), n_seeds, n_images)


def accuracy_interval(correct: np.ndarray, **options) -> Interval:
    """Accuracy (mean of ``correct``) with its bootstrap interval."""
    return bootstrap({"a": correct}, lambda acc: acc["a"], **options)


def difference_interval(a: np.ndarray, b: np.ndarray, **options) -> Interval:
    """Paired accuracy difference acc(a) - acc(b)."""
    return bootstrap({"a": a, "b": b}, lambda acc: acc["a"] - acc["b"], **options)


def ratio_interval(a: np.ndarray, b: np.ndarray, **options) -> Interval:
    """Paired accuracy ratio acc(a) / acc(b)."""
    return bootstrap({"a": a, "b": b}, lambda acc: acc["a"] / acc["b"], **options)


def gain_recovered_interval(stolen: np.ndarray, victim: np.ndarray, floor: np.ndarray, **options) -> Interval:
    """Share of the victim's gain over a floor that the stolen copy recovers:
    (acc(stolen) - acc(floor)) / (acc(victim) - acc(floor)), all three paired.

    ``floor`` is (S, N) like the others: the best of random init, raw pixels and the
    attacker's own SSL, chosen by the caller. The ratio is only meaningful when the
    victim clearly beats the floor; check ``floor_is_significant`` first and report
    "n/a" when it is False (the denominator's interval then reaches 0 and the ratio's
    interval is unbounded).
    """
    arrays = {"stolen": stolen, "victim": victim, "floor": floor}

    def gain(acc: dict[str, np.ndarray]) -> np.ndarray:
        return (acc["stolen"] - acc["floor"]) / (acc["victim"] - acc["floor"])

    return bootstrap(arrays, gain, **options)


def floor_is_significant(victim: np.ndarray, floor: np.ndarray, **options) -> bool:
    """True if the paired 95% interval of acc(victim) - acc(floor) lies above 0, i.e. the
    gain-recovered ratio has a denominator clearly away from 0. Callers report "n/a"
    for gain recovered when this is False."""
    return difference_interval(victim, floor, **{"level": 0.95, **options}).low > 0


def verdict(interval: Interval, margin: float = 0.0) -> str:
    """Verdict on the claim "effect > margin": "holds" if the interval lies above the
    margin, "contradicted" if it lies below, else "inconclusive".

    A non-inferiority claim "A is within d of B" is effect = A - B with margin = -d.
    """
    if interval.low > margin:
        return "holds"
    if interval.high < margin:
        return "contradicted"
    return "inconclusive"


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
