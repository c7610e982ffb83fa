"""Defenses at the API: poisoning scale, the duplicate detector, its calibration and
scores, the watermark head's training and the verification's test against a null."""

import math

import numpy as np
import pytest
import torch

from sslsteal.defense_spec import defense_name, parse_defense
from sslsteal.defenses import (
    answer_flagged_with_noise,
    calibrated_threshold,
    defend,
    detect_duplicates,
    detection_scores,
    poison,
    similarity_to_earlier,
    spread,
    views_stream,
    with_threshold,
)
from sslsteal.victim import train_victim
from sslsteal.watermark import rotate, rotation_labels, victim_watermark_head


@pytest.mark.parametrize("sigma", [0.1, 1.0, 3.0])
def test_poisoning_adds_noise_at_the_requested_scale(sigma):
    """The added noise has mean 0 and standard deviation sigma x the answers' centred
    spread, whatever the answers' own scale: uniform [0, 7) answers have the centred
    spread 7 / sqrt(12) = 2.0207 (not their RMS, 7 / sqrt(3))."""
    answers = torch.rand(4000, 64, generator=torch.Generator().manual_seed(0)) * 7.0
    noisy = poison(answers, sigma, torch.Generator().manual_seed(1))
    noise = noisy - answers
    assert abs(float(noise.mean())) < 0.02 * sigma * 7 / 12**0.5
    # 256,000 draws: the sample spreads are within 0.3% of the exact ones.
    assert float(noise.std()) == pytest.approx(sigma * 7 / 12**0.5, rel=0.01)


def test_spread_ignores_the_answers_mean():
    """Uniform [0, 7) entries: centred standard deviation 7 / sqrt(12) (the RMS would be
    7 / sqrt(3), twice as large, from the mean alone); a constant offset changes nothing,
    and per-dimension means are removed (two dimensions at different levels)."""
    answers = torch.rand(20000, 8, generator=torch.Generator().manual_seed(0)) * 7.0
    assert spread(answers) == pytest.approx(7 / 12**0.5, rel=0.01)
    assert spread(answers + 100.0) == pytest.approx(spread(answers), rel=1e-6)
    shifted = answers + torch.arange(8.0) * 50
    assert spread(shifted) == pytest.approx(spread(answers), rel=1e-6)
    # Views (V x N x D): every leading axis counts as samples.
    assert spread(answers.reshape(2, 10000, 8)) == pytest.approx(spread(answers), rel=1e-9)


def test_poisoning_is_seeded_and_zero_sigma_is_the_identity():
    answers = torch.randn(100, 8)
    first, again = (poison(answers, 0.5, torch.Generator().manual_seed(3)) for _ in range(2))
    assert torch.equal(first, again)
    assert torch.equal(poison(answers, 0.0, torch.Generator().manual_seed(3)), answers)
    with pytest.raises(ValueError, match="sigma"):
        poison(answers, -1.0, torch.Generator())


def test_detector_flags_an_exact_duplicate_and_passes_unrelated_queries():
    """Orthogonal (unrelated) projections have similarity (1 + 0) / 2 = 0.5 < 0.8;
    a repeat of an earlier query has 1.0 and is flagged, the first copy is not."""
    unrelated = torch.eye(16)[:10] * torch.arange(1, 11)[:, None]  # scale must not matter
    stream = torch.cat([unrelated, unrelated[3:4]])
    flagged = detect_duplicates(stream, threshold=0.8)
    assert flagged.tolist() == [False] * 10 + [True]
    assert similarity_to_earlier(stream)[:10].max() == pytest.approx(0.5)


def test_detector_compares_only_with_earlier_queries():
    a, b = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    near_a = torch.tensor([[1.0, 0.1]])
    # near_a first, a second: a is flagged (an earlier near copy), near_a is not.
    assert detect_duplicates(torch.cat([near_a, b, a]), 0.8).tolist() == [False, False, True]


def brute_force_similarity_to_earlier(stream) -> np.ndarray:
    """Each query's highest (1 + cos) / 2 with an earlier one (0 for the first), pair by
    pair in float64 with scipy's cosine distance (cos = 1 - distance): an independent
    computation of what the detector should score."""
    from scipy.spatial.distance import cosine

    rows = np.asarray(stream, dtype=np.float64)
    best = np.zeros(len(rows))
    for i in range(1, len(rows)):
        best[i] = max((1 + (1 - cosine(rows[i], rows[j]))) / 2 for j in range(i))
    return best


@pytest.mark.parametrize("chunk", [1, 64, 2048])
def test_detection_over_chunks_matches_a_pairwise_computation(chunk):
    stream = torch.randn(300, 5, generator=torch.Generator().manual_seed(0))
    expected = brute_force_similarity_to_earlier(stream.numpy())
    np.testing.assert_allclose(similarity_to_earlier(stream, chunk=chunk).numpy(), expected, atol=1e-6)


def test_detection_scores_by_hand():
    flagged = torch.tensor([True, True, False, False, True])
    truth = torch.tensor([True, False, True, False, True])
    scores = detection_scores(flagged, truth)
    assert scores["detection_precision"] == pytest.approx(2 / 3)
    assert scores["detection_recall"] == pytest.approx(2 / 3)
    assert scores["detection_f1"] == pytest.approx(2 / 3)
    none = detection_scores(torch.zeros(4, dtype=torch.bool), torch.zeros(4, dtype=torch.bool))
    assert none["detection_precision"] is None and none["detection_recall"] is None and none["detection_f1"] is None


def test_views_of_one_image_are_caught_and_flagged_answers_carry_noise():
    """A head-recreation stream (two views per image, sent image by image): the second
    view of each image is the truth's duplicate; identical views are all caught."""
    images = torch.eye(32)[:12] + 0.01
    answers = torch.stack([images, images])  # V x N x D: two identical views
    defended, _, record = defend(answers, {"kind": "detection", "threshold": 0.8}, torch.Generator().manual_seed(0))
    assert record["flagged"].shape == (2, 12)
    assert record["flagged"][1].all() and not record["flagged"][0].any()
    assert torch.equal(record["duplicate"], record["flagged"])
    assert torch.equal(defended[0], answers[0]) and not torch.allclose(defended[1], answers[1])
    assert views_stream(answers).shape == (24, 32)


def test_flagged_answers_are_noise_of_the_answers_scale():
    answers = torch.randn(2000, 16) * 3 + 5
    flagged = torch.zeros(2000, dtype=torch.bool)
    flagged[::2] = True
    out = answer_flagged_with_noise(answers, flagged, torch.Generator().manual_seed(0))
    assert torch.equal(out[1::2], answers[1::2])
    replaced = out[::2]
    assert float((replaced - answers[::2]).abs().mean()) > 1.0  # not the answers
    assert float(replaced.mean()) == pytest.approx(5, abs=0.2) and float(replaced.std()) == pytest.approx(3, abs=0.2)


def test_defense_names_round_trip_and_bad_names_are_refused():
    assert parse_defense("poisoning_sigma0.3") == {"kind": "poisoning", "sigma": 0.3}
    assert defense_name("poisoning", 0.3) == "poisoning_sigma0.3"
    assert defense_name("detection", 0.8, "threshold") == "detection_threshold0.8"
    assert parse_defense(defense_name("detection", 0.8, "threshold")) == {"kind": "detection", "threshold": 0.8}
    assert parse_defense(defense_name("detection", 0.05, "fpr")) == {"kind": "detection", "fpr": 0.05}
    assert defense_name("detection", 0.05, "fpr") == "detection_fpr0.05"
    for bad in ("poisoning", "detection_threshold1.5", "blur0.3", "poisoning_sigma-1", "detection_fpr0", "detection_fpr1.2", "detection_fprx", "noise0.3", "detectfpr0.05"):
        with pytest.raises(ValueError, match="defense"):
            parse_defense(bad)


def test_calibrated_threshold_flags_at_most_the_target_share():
    """On 1,000 distinct scores the threshold for 5% flags exactly 50 (strictly above);
    with ties it never flags more than the target."""
    scores = torch.randperm(1000, generator=torch.Generator().manual_seed(0)).numpy() / 1000
    threshold = calibrated_threshold(scores, 0.05)
    assert (scores > threshold).sum() == 50
    tied = [0.5] * 90 + [0.9] * 10
    assert (torch.tensor(tied) > calibrated_threshold(tied, 0.05)).float().mean() <= 0.05
    with pytest.raises(ValueError, match="false-positive"):
        calibrated_threshold(scores, 1.5)


def test_detection_at_a_target_rate_takes_its_threshold_from_the_calibration():
    calibration = {"thresholds": {"0.05": 0.93}}
    assert with_threshold({"kind": "detection", "fpr": 0.05}, calibration) == {"kind": "detection", "fpr": 0.05, "threshold": 0.93}
    assert with_threshold({"kind": "detection", "threshold": 0.8}, None)["threshold"] == 0.8
    assert with_threshold({"kind": "noise", "sigma": 1.0}, None) == {"kind": "noise", "sigma": 1.0}
    with pytest.raises(ValueError, match="calibration"):
        with_threshold({"kind": "detection", "fpr": 0.05}, None)
    with pytest.raises(ValueError, match="0.1"):
        with_threshold({"kind": "detection", "fpr": 0.1}, calibration)


def test_calibrated_detection_flags_more_of_a_views_stream_than_of_a_legitimate_one():
    """The detector's direction, with its threshold calibrated as the workflow does (the
    5% false-positive quantile of a legitimate stream as long as the longest one judged):
    a head-recreation stream (two noisy views of each image, sent image by image) has far
    more of its calls flagged than a legitimate user's stream of distinct images, with
    disjoint 95% Wilson intervals. The tiny run cannot show this (its synthetic images
    are near-duplicates of a few prototypes: tests/test_workflow.py says what it measured).
    A detector flagging at random, or flagging everything, flags both alike."""
    from sslsteal.defense_tables import wilson_interval

    generator = torch.Generator().manual_seed(0)
    calibration = torch.randn(800, 16, generator=generator)
    threshold = calibrated_threshold(similarity_to_earlier(calibration).numpy(), 0.05)
    images = torch.randn(400, 16, generator=generator)
    views = torch.stack([images + 0.1 * torch.randn(400, 16, generator=generator) for _ in range(2)])
    user = torch.randn(400, 16, generator=generator)
    spec = {"kind": "detection", "threshold": threshold}
    _, _, attacker = defend(views, spec, torch.Generator().manual_seed(1))
    _, _, legitimate = defend(user, spec, torch.Generator().manual_seed(2))
    rates = {}
    for name, flagged in (("attacker", attacker["flagged"]), ("user", legitimate["flagged"])):
        rate = float(flagged.float().mean())
        rates[name] = (rate, *wilson_interval(rate, flagged.numel()))
    assert rates["attacker"][1] > rates["user"][2], rates
    assert rates["user"][0] <= 0.05 + 1e-9  # at most the calibrated rate (a shorter stream)


def test_detection_records_each_querys_score():
    """The record holds each query's similarity to the user's earlier ones, in the
    order a head-recreation attacker sends them (image by image, both views of image n
    before image n + 1); the flags are exactly the scores above the threshold (V x N)."""
    answers = torch.randn(2, 50, 8, generator=torch.Generator().manual_seed(0))
    _, _, record = defend(answers, {"kind": "detection", "threshold": 0.9}, torch.Generator().manual_seed(0))
    sent = [(view, image) for image in range(50) for view in range(2)]
    scores = brute_force_similarity_to_earlier(np.stack([answers[view, image].numpy() for view, image in sent]))
    expected = np.zeros((2, 50))
    for (view, image), score in zip(sent, scores):
        expected[view, image] = score
    np.testing.assert_allclose(record["score"].numpy(), expected, atol=1e-6)
    assert torch.equal(record["flagged"], record["score"] > 0.9)


def test_rotation_labels_and_rotate():
    angles = torch.tensor([0.0, 90.0, 179.9, 180.0, 270.0, 359.0, 360.0])
    assert rotation_labels(angles).tolist() == [0, 0, 0, 1, 1, 1, 0]
    image = torch.zeros(1, 1, 9, 9)
    image[0, 0, 1, 4] = 1.0  # a dot above the centre
    half_turn = rotate(image, torch.tensor([180.0]))
    assert half_turn[0, 0].argmax() == 7 * 9 + 4  # now below the centre
    assert torch.allclose(rotate(image, torch.tensor([0.0])), image, atol=1e-6)


def test_watermark_head_is_optimised_with_the_victim():
    """The authors' bug: the head never reached the optimiser. Here its parameters
    change during training and it ends in the checkpoint's heads."""
    generator = torch.Generator().manual_seed(0)
    images = (torch.rand(64, 1, 12, 12, generator=generator) * 255).to(torch.uint8)
    recipe = {
        "epochs": 2, "batch_size": 32, "lr": 0.01, "temperature": 0.2, "projection_dim": 8,
        "augmentation": {"crop_scale": [0.5, 1.0]},
        "watermark": {"weight": 1.0, "batch_fraction": 0.5, "hidden": [16, 8]},
    }
    backbone = {"name": "small_cnn", "widths": [4, 8]}
    # Weights are drawn from torch's global generator: the same seed gives the same
    # initial head, so zero epochs shows where training started.
    torch.manual_seed(0)
    _, untrained, _ = train_victim("simclr", images, backbone, {**recipe, "epochs": 0}, torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    encoder, heads, history = train_victim("simclr", images, backbone, recipe, torch.Generator().manual_seed(0))
    assert "watermark" in heads and len(history) == 2
    assert all(math.isfinite(row["loss"]) for row in history)
    head = heads["watermark"]
    changed = [not torch.equal(a, b) for a, b in zip(untrained["watermark"].parameters(), head.parameters())]
    assert len(changed) == 6 and all(changed)
    # Gradients reached every parameter of the head.
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in head.parameters())
    meta = {
        "heads": {k: h.state_dict() for k, h in heads.items()},
        "representation_dim": encoder.representation_dim,
        "config": {"recipe": recipe},
    }
    rebuilt = victim_watermark_head(meta)
    assert all(torch.equal(a, b) for a, b in zip(rebuilt.parameters(), head.parameters()))


# ------------------------------------------------------------------ B4B
def test_b4b_names_round_trip_and_bad_counts_are_refused():
    assert parse_defense("b4b_sybils4") == {"kind": "b4b", "sybils": 4}
    assert defense_name("b4b", 1) == "b4b_sybils1"
    for bad in ("b4b_sybils0", "b4b_sybils1.5", "b4b_sybils"):
        with pytest.raises(ValueError, match="b4b_sybils"):
            parse_defense(bad)


def test_lsh_buckets_are_the_sign_bits_read_as_an_integer():
    from sslsteal.defenses import lsh_buckets

    vectors = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0], [1.0, 1.0]])
    hyperplanes = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, -1.0]])
    # Bits (x>0, y>0, x-y>0), least significant first, written out by hand.
    assert lsh_buckets(vectors, hyperplanes).tolist() == [1 + 4, 2, 0, 1 + 2]
    # Against numpy on random data: sum_i [h_i . v > 0] 2^i.
    rng = np.random.default_rng(0)
    v, h = rng.normal(size=(50, 6)), rng.normal(size=(5, 6))
    expected = ((v @ h.T > 0) * (2 ** np.arange(5))).sum(1)
    assert lsh_buckets(torch.from_numpy(v), torch.from_numpy(h)).numpy().tolist() == expected.tolist()


def test_running_coverage_counts_distinct_buckets_so_far():
    from sslsteal.defenses import running_coverage

    coverage = running_coverage(torch.tensor([3, 3, 1, 2, 1, 0]), 4)
    assert coverage.tolist() == [0.25, 0.25, 0.5, 0.75, 0.75, 1.0]


def test_b4b_noise_level_closed_form():
    from sslsteal.defenses import b4b_sigma

    sigma = b4b_sigma(torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64), scale=0.1, growth=100.0)
    assert sigma.tolist() == pytest.approx([0.0, 0.1 * (10.0 - 1), 0.1 * 99.0])


def _b4b_settings(**overrides):
    return {"bits": 3, "scale": 0.0, "growth": 10.0, "seed": 0, "transform": True, **overrides}


def test_b4b_transformation_is_a_per_account_permutation_and_scaling():
    from sslsteal.defenses import account_transform, b4b

    stream = torch.rand(12, 5)
    hashed = torch.randn(12, 4)
    # Scale 0: no noise, only the transformations.
    defended, _, record = b4b(stream, hashed, _b4b_settings(), 2, torch.Generator().manual_seed(0))
    assert record["account"].tolist() == [0, 1] * 6
    for account in (0, 1):
        permutation, scales = account_transform(5, 0, account)
        assert sorted(permutation.tolist()) == list(range(5)) and bool((scales >= 0.5).all() and (scales <= 2).all())
        rows = record["account"] == account
        assert torch.allclose(defended[rows], (stream[rows] * scales)[:, permutation])
    assert not torch.equal(account_transform(5, 0, 0)[0], account_transform(5, 0, 1)[0]) or not torch.equal(
        account_transform(5, 0, 0)[1], account_transform(5, 0, 1)[1]
    )
    # Non-negative answers stay non-negative (Wasserstein can still read them).
    assert bool((defended >= 0).all())


def test_b4b_noise_follows_each_accounts_own_coverage():
    from sslsteal.defenses import b4b, lsh_buckets, running_coverage, spread

    generator = torch.Generator().manual_seed(1)
    stream, hashed = torch.randn(4000, 8), torch.randn(4000, 6)
    settings = _b4b_settings(bits=6, scale=0.5, growth=4.0, transform=False)
    defended, _, record = b4b(stream, hashed, settings, 2, generator)
    hyperplanes = torch.randn(6, 6, generator=torch.Generator().manual_seed(0))
    buckets = lsh_buckets(hashed, hyperplanes)
    for account in (0, 1):
        rows = torch.arange(4000) % 2 == account
        expected = running_coverage(buckets[rows], 64)
        assert torch.allclose(record["coverage"][rows].double(), expected, atol=1e-6)
    expected_sigma = 0.5 * (4.0 ** record["coverage"].double() - 1)
    assert torch.allclose(record["sigma"].double(), expected_sigma, atol=1e-6)
    # The noise actually added: its spread over the late calls (coverage ~ 1) is sigma * spread.
    late = torch.arange(4000) >= 2000
    noise = (defended - stream)[late] / (record["sigma"][late, None] * spread(stream))
    assert float(noise.std()) == pytest.approx(1.0, abs=0.03)
    # One account covers at least as much as each of two sybils sending the same queries.
    _, _, one = b4b(stream, hashed, settings, 1, torch.Generator().manual_seed(1))
    assert float(one["coverage"].max()) >= float(record["coverage"].max())


def test_b4b_sends_every_view_of_an_image_through_one_account():
    from sslsteal.defenses import defend

    answers = torch.rand(2, 6, 4)  # 2 views of 6 images
    projection_head = torch.nn.Linear(4, 3)
    spec = {"kind": "b4b", "sybils": 3, **_b4b_settings()}
    defended, _, record = defend(answers, spec, torch.Generator().manual_seed(0), projector=projection_head)
    assert defended.shape == answers.shape
    assert record["account"].tolist() == [[0, 1, 2, 0, 1, 2]] * 2


def test_b4b_transformation_leaves_a_legitimate_users_probe_unchanged():
    from sslsteal.defenses import b4b
    from sslsteal.probe import linear_probe

    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(300) % 3
    features = torch.randn(300, 6, generator=generator) + labels[:, None].float() * torch.linspace(0, 1, 6)
    transformed, _, _ = b4b(features, torch.randn(300, 4), _b4b_settings(), 1, torch.Generator())
    plain = linear_probe(features[:200], labels[:200], features[200:], labels[200:], l2_grid=[1e-3], seed=0)
    moved = linear_probe(transformed[:200], labels[:200], transformed[200:], labels[200:], l2_grid=[1e-3], seed=0)
    assert moved["accuracy"] == plain["accuracy"]


def test_b4b_gives_a_spread_out_stream_more_noise_than_a_clustered_one():
    """B4B's premise: an account whose queries spread over the representation space (an
    attacker covering it) pays more noise than one whose queries stay in one region (a
    user with a narrow task). The same 400 answers go out twice, once with projections
    spread over the space and once with projections clustered around one direction, with
    the tiny config's settings (2^6 buckets, the schema's scale and growth, the account's
    transformation on). Measured after undoing the account's transformation: the spread
    stream's added noise is far larger than the clustered one's (the tiny run's workflow
    has no clustered stream to compare: its user and attacker both send test-like images).
    A defense that ignores coverage, or adds no noise, fails this."""
    from sslsteal.defenses import account_transform, b4b, resolve_defense, spread

    settings = resolve_defense("b4b_sybils1", b4b_settings={"bits": 6})
    assert settings["transform"] and settings["bits"] == 6
    generator = torch.Generator().manual_seed(0)
    answers = torch.randn(400, 16, generator=generator)
    spread_out = torch.randn(400, 8, generator=generator)
    clustered = torch.randn(1, 8, generator=generator) + 0.01 * torch.randn(400, 8, generator=generator)
    permutation, scales = account_transform(16, settings["seed"], 0)
    noise, sigma, coverage = {}, {}, {}
    for name, hashed in (("spread", spread_out), ("clustered", clustered)):
        defended, _, record = b4b(answers, hashed, settings, 1, torch.Generator().manual_seed(1))
        undone = torch.empty_like(defended)
        undone[:, permutation] = defended  # (x * scales)[:, permutation] -> x * scales
        noise[name] = float(((undone / scales) - answers).std() / spread(answers))
        sigma[name], coverage[name] = float(record["sigma"].mean()), float(record["coverage"].max())
    assert coverage["clustered"] <= 2 / 64 < 0.5 < coverage["spread"]
    assert sigma["spread"] > 10 * sigma["clustered"]
    # The noise actually added, in units of the answers' spread (0 for both: no defense).
    assert noise["spread"] > 10 * noise["clustered"] and noise["spread"] > 1.0


def test_b4b_defaults_are_the_schemas():
    import yaml

    from sslsteal.config import SCHEMA
    from sslsteal.defense_spec import B4B_SETTINGS
    from sslsteal.defenses import B4B_DEFAULTS

    schema = yaml.safe_load(SCHEMA.read_text())["properties"]["defenses"]["properties"]["b4b"]["properties"]
    assert set(B4B_DEFAULTS) == set(B4B_SETTINGS)
    assert {key: schema[key]["default"] for key in B4B_SETTINGS} == B4B_DEFAULTS
