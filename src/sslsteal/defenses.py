"""Defenses at the API (docs/paper.md, "Defenses the paper examines").

A defense transforms the answers the API returns; the victim is untouched, so every
attack and budget can run against every defense from the same cached answers.

- Prediction poisoning: additive Gaussian noise on each returned vector,
  a' = a + sigma * s * n, n ~ N(0, I), where s is the answers' centred standard
  deviation (the root of the mean, over dimensions, of each dimension's variance), so
  one sigma sweep fits every victim: sigma = 1 is noise as large as the answers' spread.
  Not their RMS: post-ReLU answers have a large mean that carries no information about
  an image, and scaling by it would make every sigma look smaller than it is.
- Augmented-duplicate detection: the API keeps, per user, the victim's projections
  g_v(f_v(x)) of the user's earlier queries and scores each query by its highest
  (1 + cos) / 2 with one of them (cosine mapped to [0, 1]); a query scoring above the
  threshold is answered with noise carrying none of its content. The paper uses 0.8,
  comparing queries within one batch; against a user's whole history that flags nearly
  every query, so the threshold is calibrated instead: the (1 - target false-positive
  rate) quantile of the scores of a stream of legitimate queries
  (:func:`calibrated_threshold`, rule ``calibrate_detection``), as
  long as the longest stream it will judge (a query's score grows with the history).

- B4B, "Bucks for Buckets" (Dubinski, Pawlak, Boenisch, Trzcinski, Dziedzic, NeurIPS
  2023): the API hashes each query's victim projection into one of 2^bits buckets
  (random hyperplanes through the origin, SimHash) and tracks, per account, the share
  of buckets its queries have filled so far (its coverage c of the representation
  space). Each answer gets Gaussian noise of sigma(c) = scale * (growth^c - 1) times
  the answers' centred standard deviation (our choice of B4B's increasing cost
  function: 0 for an account that has covered nothing, ``scale * (growth - 1)`` for one
  that covered everything), then the account's own transformation (a permutation of the
  dimensions and a positive per-dimension scale, seeded per account), so answers of two
  accounts live in incompatible coordinates. A legitimate user's linear probe is blind
  to the transformation (it standardises each feature); an attacker that splits its
  queries over k accounts (sybils, round-robin) lowers each account's coverage but must
  train on answers in k different coordinate systems.

The watermark, a reactive defense (it changes no answer: it proves a theft afterwards),
is in ``watermark``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .defense_spec import parse_defense
from .registry import DEFENSE_KINDS

# What a record of a user facing the duplicate detector holds (see detection_scores).
DETECTION = ("queries_sent", "flagged", "duplicates", "detection_precision", "detection_recall", "detection_f1")


def spread(answers: torch.Tensor) -> float:
    """The answers' centred standard deviation: ``sqrt(mean_j Var(a_j))`` over the
    answers' dimensions j (every leading axis counts as samples)."""
    flat = answers.reshape(-1, answers.shape[-1]).double()
    return float((flat - flat.mean(dim=0)).pow(2).mean().sqrt())


def poison(answers: torch.Tensor, sigma: float, generator: torch.Generator) -> torch.Tensor:
    """Prediction poisoning: ``answers + sigma * spread(answers) * N(0, I)``."""
    if sigma < 0:
        raise ValueError(f"noise scale sigma must be >= 0, got {sigma}")
    noise = torch.randn(answers.shape, generator=generator, dtype=torch.float32)
    return answers.float() + sigma * spread(answers) * noise


def similarity_to_earlier(stream: torch.Tensor, chunk: int = 2048) -> torch.Tensor:
    """For each query of a user's stream (M x k, in the order sent), the highest
    ``(1 + cos) / 2`` with any earlier query of that stream; 0 for the first query."""
    z = F.normalize(stream.float(), dim=1)
    best = torch.zeros(len(z))
    for start in range(0, len(z), chunk):
        stop = min(start + chunk, len(z))
        sims = z[start:stop] @ z[:stop].T  # (rows, all queries up to the last row)
        later_or_self = torch.arange(stop)[None, :] >= torch.arange(start, stop)[:, None]
        sims = sims.masked_fill(later_or_self, -1.0)  # -1 maps to similarity 0
        best[start:stop] = (1.0 + sims.max(dim=1).values) / 2.0
    return best


def detect_duplicates(stream: torch.Tensor, threshold: float) -> torch.Tensor:
    """Flags (bool, M) of the queries whose projection is more similar than
    ``threshold`` to an earlier query's, after mapping cosine to [0, 1]."""
    return similarity_to_earlier(stream) > threshold


def calibrated_threshold(scores, target_fpr: float) -> float:
    """The smallest score threshold that flags at most ``target_fpr`` of the legitimate
    ``scores`` (a query is flagged when its score is strictly above the threshold)."""
    import numpy as np

    scores = np.asarray(scores, dtype=np.float64)
    if not 0 < target_fpr < 1:
        raise ValueError(f"target false-positive rate must be in (0, 1), got {target_fpr}")
    if scores.size == 0:
        raise ValueError("no calibration scores")
    # At most k = floor(rate * n) scores may lie strictly above: the (n - k)-th smallest.
    allowed = int(np.floor(target_fpr * scores.size + 1e-9))
    return float(np.sort(scores)[scores.size - allowed - 1])


def detector_view(stream: torch.Tensor, projector: nn.Module | None) -> torch.Tensor:
    """What the detector compares: the victim's projections of a stream of answers
    (M x D), or the answers themselves when the victim has no head."""
    with torch.no_grad():
        if projector is None:
            return stream.float()
        return torch.cat([projector(stream[i : i + 4096].float()) for i in range(0, len(stream), 4096)])


def resolve_defense(name: str, calibration_paths=(), b4b_settings: dict | None = None) -> dict:
    """The settings of the defense ``name`` with a detector's threshold resolved: from
    the calibration record (the one path in ``calibration_paths``) for
    ``detection_fpr<rate>``; B4B's with the config block ``defenses.b4b``
    (``b4b_settings``: bits, scale, growth, seed, transform)."""
    from .io import read_json

    paths = list(calibration_paths)
    spec = with_threshold(parse_defense(name), read_json(paths[0]) if paths else None)
    if spec["kind"] == "b4b":
        if not b4b_settings:
            raise ValueError(f"defense {name!r} needs the B4B settings (config block defenses.b4b)")
        spec = {**B4B_DEFAULTS, **{k: v for k, v in b4b_settings.items() if k in B4B_DEFAULTS}, **spec}
    return spec


# defenses.b4b's settings when the block leaves them out (the schema holds the same;
# tests/test_defenses.py checks it).
B4B_DEFAULTS = {"bits": 12, "scale": 0.1, "growth": 1000.0, "seed": 0, "transform": True}


def with_threshold(spec: dict, calibration: dict | None) -> dict:
    """A detection spec with its threshold: fixed (``detection_threshold0.8``) or, for a target
    false-positive rate (``detection_fpr0.05``), the one the calibration record holds."""
    if spec["kind"] != "detection" or "threshold" in spec:
        return spec
    if calibration is None:
        raise ValueError(f"detection at a target false-positive rate {spec['fpr']} needs the victim's calibration record")
    thresholds = {float(k): v for k, v in calibration["thresholds"].items()}
    if spec["fpr"] not in thresholds:
        raise ValueError(f"the calibration record has thresholds for rates {sorted(thresholds)}, not {spec['fpr']}")
    return {**spec, "threshold": thresholds[spec["fpr"]]}


def noise_like(answers: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Gaussian noise with the answers' per-dimension mean and standard deviation: the
    shape and scale of an answer, none of its content (what a flagged query gets)."""
    flat = answers.reshape(-1, answers.shape[-1]).float()
    mean, std = flat.mean(dim=0), flat.std(dim=0)
    return mean + std * torch.randn(answers.shape, generator=generator)


def answer_flagged_with_noise(answers: torch.Tensor, flagged: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """``answers`` (..., D) with the rows where ``flagged`` (...) is true replaced by noise."""
    noise = noise_like(answers, generator)
    return torch.where(flagged[..., None], noise, answers.float())


def detection_scores(flagged: torch.Tensor, duplicate: torch.Tensor) -> dict:
    """Precision, recall and F1 of the flags against the ground truth (which queries are
    augmented duplicates of an earlier one). A score with an empty denominator is None
    (e.g. recall when the user sent no duplicates)."""
    flagged, duplicate = flagged.bool().flatten(), duplicate.bool().flatten()
    true_positive = int((flagged & duplicate).sum())
    n_flagged, n_duplicate = int(flagged.sum()), int(duplicate.sum())
    precision = true_positive / n_flagged if n_flagged else None
    recall = true_positive / n_duplicate if n_duplicate else None
    if n_flagged + n_duplicate == 0:
        f1 = None
    else:
        f1 = 2 * true_positive / (n_flagged + n_duplicate)
    return {
        "queries_sent": int(flagged.numel()),
        "flagged": n_flagged,
        "duplicates": n_duplicate,
        "detection_precision": precision,
        "detection_recall": recall,
        "detection_f1": f1,
    }


def lsh_buckets(vectors: torch.Tensor, hyperplanes: torch.Tensor) -> torch.Tensor:
    """SimHash: the bucket of each row of ``vectors`` (M x k) is the bit pattern of the
    signs of its projections on the ``hyperplanes`` (bits x k), read as an integer."""
    bits = (vectors.double() @ hyperplanes.double().T) > 0
    weights = 2 ** torch.arange(hyperplanes.shape[0], dtype=torch.int64)
    return (bits.long() * weights).sum(dim=1)


def running_coverage(buckets: torch.Tensor, n_buckets: int) -> torch.Tensor:
    """For each query of one account's stream, the share of the ``n_buckets`` filled by
    that query and the account's earlier ones."""
    seen: set[int] = set()
    coverage = torch.empty(len(buckets), dtype=torch.float64)
    for t, bucket in enumerate(buckets.tolist()):
        seen.add(bucket)
        coverage[t] = len(seen) / n_buckets
    return coverage


def b4b_sigma(coverage: torch.Tensor, scale: float, growth: float) -> torch.Tensor:
    """B4B's noise level for a coverage c in [0, 1]: ``scale * (growth^c - 1)``."""
    return scale * (torch.as_tensor(growth, dtype=torch.float64) ** coverage - 1.0)


def account_transform(dim: int, seed: int, account: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The account's transformation of a D-d answer: (permutation, positive scales);
    answer -> (answer * scales)[permutation]. Seeded by the defender's seed and the
    account, so the same account always gets the same coordinates. Scales are
    log-uniform in [1/2, 2]: positive, so non-negative answers stay non-negative."""
    generator = torch.Generator().manual_seed(seed * 100_003 + account + 1)
    permutation = torch.randperm(dim, generator=generator)
    scales = torch.exp((torch.rand(dim, generator=generator, dtype=torch.float64) * 2 - 1) * float(torch.log(torch.tensor(2.0))))
    return permutation, scales.float()


def b4b(
    stream: torch.Tensor,
    hashed: torch.Tensor,
    settings: dict,
    sybils: int,
    generator: torch.Generator,
    extra: tuple[torch.Tensor, ...] = (),
    images: torch.Tensor | None = None,
) -> tuple[torch.Tensor, tuple[torch.Tensor, ...], dict]:
    """B4B on one party's stream of answers (M x D, in the order sent).

    ``hashed``: what the API hashes for each query (M x k, the victim's projections);
    ``settings``: ``bits``, ``scale``, ``growth``, ``seed`` and ``transform``
    (defenses.b4b); ``sybils``: the number of accounts the queries are split over,
    round-robin by image (``images``: each query's image number, default its position,
    so every view of an image goes through one account). ``extra``: other answers the
    API returns for the same queries (projections, M x K), given the same noise level
    and their own account transformation. Returns the defended stream, the defended
    extras and a record per query: ``account``, ``coverage``, ``sigma``.
    """
    if sybils < 1:
        raise ValueError(f"sybils must be >= 1, got {sybils}")
    n_buckets = 2 ** settings["bits"]
    hyperplanes = torch.randn(settings["bits"], hashed.shape[1], generator=torch.Generator().manual_seed(settings["seed"]))
    buckets = lsh_buckets(hashed, hyperplanes)
    images = torch.arange(len(stream)) if images is None else images
    account = images % sybils
    coverage = torch.empty(len(stream), dtype=torch.float64)
    for a in range(sybils):
        mine = account == a
        coverage[mine] = running_coverage(buckets[mine], n_buckets)
    sigma = b4b_sigma(coverage, settings["scale"], settings["growth"]).float()
    outputs = []
    for answers in (stream, *extra):
        noisy = answers.float() + sigma[:, None] * spread(answers) * torch.randn(answers.shape, generator=generator)
        if settings.get("transform", True):
            for a in range(sybils):
                mine = account == a
                permutation, scales = account_transform(answers.shape[1], settings["seed"], a)
                noisy[mine] = (noisy[mine] * scales)[:, permutation]
        outputs.append(noisy)
    return outputs[0], tuple(outputs[1:]), {"account": account, "coverage": coverage.float(), "sigma": sigma}


# What a record of a party facing B4B holds (see b4b_summary).
B4B_SUMMARY = ("b4b_accounts", "b4b_coverage", "b4b_mean_sigma", "b4b_final_sigma")


def b4b_summary(record: dict) -> dict:
    """A party's B4B calls in four numbers: its accounts, the largest coverage one of
    them reached, the mean noise level over its calls and the largest (an account's
    coverage only grows, so its last call's)."""
    account, coverage, sigma = (record[k].flatten() for k in ("account", "coverage", "sigma"))
    return {
        "b4b_accounts": int(account.max()) + 1,
        "b4b_coverage": round(float(coverage.max()), 6),
        "b4b_mean_sigma": round(float(sigma.double().mean()), 6),
        "b4b_final_sigma": round(float(sigma.max()), 6),
    }


def views_stream(answers: torch.Tensor) -> torch.Tensor:
    """The order a head-recreation attacker sends its views (V x N x D answers): image
    by image, each image's views one after the other: (N * V) x D."""
    return answers.transpose(0, 1).reshape(-1, answers.shape[-1])


def from_views_stream(stream: torch.Tensor, n_views: int) -> torch.Tensor:
    """Inverse of :func:`views_stream` for per-query values: (N * V, ...) -> (V, N, ...)."""
    return stream.reshape(-1, n_views, *stream.shape[1:]).transpose(0, 1)


def defend(
    answers: torch.Tensor,
    spec: dict,
    generator: torch.Generator,
    projection: torch.Tensor | None = None,
    projector: nn.Module | None = None,
    duplicate: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None, dict]:
    """Apply a defense to one user's answers, in the order they were sent.

    ``answers``: N x D (one answer per query) or V x N x D (augmented views: the stream
    is image by image). ``projection``: the N x K projections the API would also return
    (head access), defended the same way. ``projector``: the victim's head, which the
    detector applies to each answer (its representation otherwise). ``duplicate``: the
    ground truth for the detection scores (default: the views of an image after its
    first are duplicates; single answers are not). Returns the defended answers,
    defended projections, and a record (for detection: per query, its flag, the truth
    and its score; for B4B: per query, its account, the account's coverage and the
    noise level). A detection spec needs its threshold (:func:`with_threshold`), a B4B
    spec its settings (:func:`resolve_defense`).
    """
    views = answers.ndim == 3
    if spec["kind"] == "b4b":
        if projector is None and projection is None:
            raise ValueError("B4B hashes the victim's projections: the victim has no projection head")
        stream = views_stream(answers) if views else answers
        images = torch.arange(answers.shape[-2]).repeat_interleave(answers.shape[0]) if views else None
        hashed = detector_view(stream, projector)
        extra = () if projection is None else (projection,)
        defended, extra, record = b4b(stream, hashed, spec, spec["sybils"], generator, extra, images)
        if views:
            defended = from_views_stream(defended, answers.shape[0])
            record = {k: from_views_stream(v, answers.shape[0]) for k, v in record.items()}
        return defended, (extra[0] if extra else None), record
    if spec["kind"] == "poisoning":
        defended = poison(answers, spec["sigma"], generator)
        defended_projection = None if projection is None else poison(projection, spec["sigma"], generator)
        return defended, defended_projection, {}
    if spec["kind"] != "detection":
        raise ValueError(f"unknown defense kind {spec['kind']!r}; known: {', '.join(DEFENSE_KINDS)}")
    stream = views_stream(answers) if views else answers
    score = similarity_to_earlier(detector_view(stream, projector))
    flagged = score > spec["threshold"]
    if views:
        flagged = from_views_stream(flagged, answers.shape[0])  # back to V x N
        score = from_views_stream(score, answers.shape[0])
    if duplicate is None:
        duplicate = torch.zeros(flagged.shape, dtype=torch.bool)
        if views:
            duplicate[1:] = True  # every view of an image after its first
    defended = answer_flagged_with_noise(answers, flagged, generator)
    defended_projection = None
    if projection is not None:
        defended_projection = answer_flagged_with_noise(projection, flagged, generator)
    record = {"flagged": flagged, "duplicate": duplicate, "score": score}
    return defended, defended_projection, record
