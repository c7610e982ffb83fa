import numpy as np
import pandas as pd
import pytest
import torch
from scipy.stats import t as t_distribution

from sslsteal.claims import (
    CLAIMS,
    claims_table,
    compare_verdicts,
    flip_counts,
    overall_reading,
    summarise_claims,
    victim_margins,
    write_claims,
)
from sslsteal.probe import encode_correct as encode  # what the probe jobs write

N_TEST = 2000
SEEDS = (0, 1, 2)
# Query set kinds are per victim (sslsteal.config.query_set_kinds).
KINDS = {"v": {"cifar10_test": "in_distribution", "svhn_train": "out_of_distribution"}}
TRAIN_SIZES = {"v": 50_000}
# Two fixed image orders: cells built from the same order are nested (the better one gets
# right every image the worse one does), so their paired difference is nearly exact;
# cells from different orders differ image by image, so their difference is noisy.
ORDER_A = np.random.default_rng(0).permutation(N_TEST)
ORDER_B = np.random.default_rng(1).permutation(N_TEST)


def correct_at(accuracy: float, order: np.ndarray = ORDER_A) -> np.ndarray:
    """Exactly round(accuracy * N_TEST) images right: the first ones in ``order``."""
    correct = np.zeros(N_TEST, bool)
    correct[order[: round(accuracy * N_TEST)]] = True
    return correct


def records(encoder, accuracies, order=ORDER_A, seeds=SEEDS, **fields) -> list[dict]:
    """One probe record per seed; ``accuracies`` one per seed, or one for all."""
    if np.isscalar(accuracies):
        accuracies = [accuracies] * len(seeds)
    return [
        {"encoder": encoder, "seed": seed, "accuracy": accuracy, "n_test": N_TEST,
         "correct": encode(correct_at(accuracy, order)), **fields}
        for seed, accuracy in zip(seeds, accuracies)
    ]


def stolen(approach, loss, query_set, budget, accuracies, order=ORDER_A, seeds=SEEDS, victim="v", **fields):
    return records("stolen", accuracies, order, seeds, victim=victim, approach=approach, loss=loss,
                   query_set=query_set, budget=budget, **fields)


def baselines(victim="v", accuracy=0.80, raw=0.72, random_init=0.30, seeds=SEEDS) -> list[dict]:
    """The victim and its two attacker-independent floors (raw pixels name no victim)."""
    return (records("victim", accuracy, victim=victim, seeds=seeds)
            + records("random_init", random_init, victim=victim, seeds=seeds)
            + records("raw_pixels", raw, seeds=seeds))


def synthetic_probes(own_ssl_seeds=SEEDS):
    # Victim 0.80 over raw pixels 0.72 (the better floor): margin 0.25 x 0.08 = 0.02.
    rows = baselines()
    rows += stolen("direct", "mse", "cifar10_test", 1000, 0.60)
    rows += stolen("direct", "mse", "cifar10_test", 9000, 0.79)
    rows += stolen("direct", "infonce", "cifar10_test", 1000, 0.55)
    rows += stolen("direct", "infonce", "cifar10_test", 9000, (0.78, 0.79, 0.80), order=ORDER_B)
    rows += stolen("direct", "mse", "svhn_train", 9000, 0.70)
    rows += stolen("head_recreation", "mse", "cifar10_test", 9000, 0.75)
    rows += records("own_ssl", 0.50, victim="v", approach="own_ssl", query_set="cifar10_test", budget=9000,
                    seeds=own_ssl_seeds)
    # Probed through a defended API: not part of any attack claim (and would clash with the cell above).
    rows += [{**r, "defense": "poisoning_sigma0.1"} for r in stolen("direct", "mse", "cifar10_test", 9000, 0.2)]
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def table():
    return claims_table(synthetic_probes(), KINDS, TRAIN_SIZES, margin_fraction=0.25)


def only_row(table, claim, contains):
    rows = table[(table["claim"] == claim) & table["comparison"].str.contains(contains, regex=False)]
    assert len(rows) == 1, rows
    return rows.iloc[0]


# (claim, text in comparison, effect, verdict)
EXPECTED = [
    ("close_copy", "direct/mse/", 0.79 - 0.80, "holds"),  # within 2 points, nearly exact
    ("close_copy", "direct/infonce/", 0.79 - 0.80, "inconclusive"),  # seeds spread 2 points
    ("more_queries", "direct/mse/cifar10_test", 0.79 - 0.60, "holds"),
    ("more_queries", "direct/infonce/cifar10_test", 0.79 - 0.55, "holds"),
    ("in_distribution_queries", "cifar10_test − svhn_train", 0.79 - 0.70, "holds"),
    ("contrastive_losses", "cifar10_test/1000", 0.55 - 0.60, "contradicted"),
    ("contrastive_losses", "cifar10_test/9000", 0.79 - 0.79, "inconclusive"),
    ("direct_vs_head", "direct − head_recreation", 0.79 - 0.75, "holds"),
    ("api_beats_own_ssl", "direct/mse/", 0.79 - 0.50, "holds"),
    ("api_beats_own_ssl", "direct/infonce/", 0.79 - 0.50, "holds"),
]


@pytest.mark.parametrize("claim, contains, effect, expected_verdict", EXPECTED)
def test_effects_and_verdicts(table, claim, contains, effect, expected_verdict):
    row = only_row(table, claim, contains)
    assert row["effect"] == pytest.approx(effect, abs=1e-9)
    assert row["ci_low"] <= row["effect"] <= row["ci_high"]
    assert row["verdict"] == expected_verdict
    assert row["statement"] == CLAIMS[claim]
    assert row["n_seeds"] == 3 and row["note"] == ""
    # Seeds to resolve: only for undecided rows.
    assert pd.isna(row["seeds_to_resolve"]) == (expected_verdict != "inconclusive")


def test_exactly_the_expected_comparisons(table):
    assert len(table) == len(EXPECTED)
    assert table["claim"].value_counts().to_dict() == {
        "close_copy": 2, "more_queries": 2, "in_distribution_queries": 1,
        "contrastive_losses": 2, "direct_vs_head": 1, "api_beats_own_ssl": 2,
    }


def test_interval_is_the_paired_t_interval(table):
    """close_copy direct/mse: every seed 0.79 against 0.80 on nested images, so the
    per-(seed, image) contrast is -1 on 20 images and 0 elsewhere at every seed: no seed
    spread, no residual; image part var / N with df N - 1."""
    row = only_row(table, "close_copy", "direct/mse/")
    contrast = -correct_at(0.80).astype(float) + correct_at(0.79)
    half = t_distribution.ppf(0.975, N_TEST - 1) * contrast.std(ddof=1) / np.sqrt(N_TEST)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((-0.01 - half, -0.01 + half))
    assert row["df"] == pytest.approx(N_TEST - 1)


def test_margins_scale_with_the_victims_gain_over_its_floor(table):
    margins = table.groupby("claim")["margin"].unique()
    assert list(margins["close_copy"]) == pytest.approx([-0.02])  # 0.25 x (0.80 - 0.72)
    assert list(margins["direct_vs_head"]) == pytest.approx([-0.02])
    assert list(margins["more_queries"]) == [0.0]
    basis = only_row(table, "close_copy", "direct/mse/")["margin_basis"]
    assert basis == "0.25 × (victim − raw_pixels) = 0.25 × 8.0 = 2.00 points"


def test_margin_from_synthetic_floors():
    """Random init 0.70 beats raw pixels 0.66: the floor is random init, the gain 0.10,
    the margin 0.25 x 0.10 = 0.025 (0.4 x: 0.04). A victim without floor records, or
    one below its floor, has none, and its non-inferiority rows are not tested."""
    probes = pd.DataFrame(
        baselines("v", 0.80, raw=0.66, random_init=0.70)
        + records("victim", 0.70, victim="w") + records("random_init", 0.75, victim="w")
        + records("victim", 0.70, victim="x")
    )
    probes = probes[~((probes["encoder"] == "raw_pixels") & probes["victim"].isna())]  # w, x: no raw pixels
    margins = victim_margins(probes, 0.25)
    assert margins["v"][0] == pytest.approx(0.025) and "random_init" in margins["v"][1]
    assert victim_margins(probes, 0.4)["v"][0] == pytest.approx(0.04)
    assert margins["w"][0] is None and "below random_init" in margins["w"][1]
    assert margins["x"][0] is None and margins["x"][1].startswith("no floor")

    cells = pd.DataFrame(stolen("direct", "mse", "cifar10_test", 9000, 0.69, victim="w")
                         + stolen("head_access", "mse", "cifar10_test", 9000, 0.60, victim="w"))
    kinds = {"w": {"cifar10_test": "in_distribution"}}
    table = claims_table(pd.concat([probes, cells]), kinds, {})
    for claim in ("close_copy", "direct_vs_head"):
        row = table[table["claim"] == claim].iloc[0]
        assert row["verdict"] == "not tested (no floor)" and np.isnan(row["margin"])
        assert "below random_init" in row["note"] and pd.notna(row["effect"])
    with pytest.raises(ValueError, match="margin_fraction"):
        claims_table(probes, kinds, {}, margin_fraction=1.5)


def test_close_copy_shows_query_fraction(table):
    row = only_row(table, "close_copy", "direct/mse/")
    assert "direct/mse/cifar10_test/9000" in row["comparison"]
    assert "18%" in row["comparison"]


def test_comparison_without_common_seed_is_skipped():
    table = claims_table(synthetic_probes(own_ssl_seeds=(5,)), KINDS, TRAIN_SIZES)
    assert "api_beats_own_ssl" not in set(table["claim"])
    assert "close_copy" in set(table["claim"])


def test_fewer_than_three_seeds_are_not_tested_but_shown():
    """A one-seed own-SSL cell pairs with seed 0 only; a stolen cell with two seeds pairs
    on two: effect and interval shown, no verdict however clear the interval."""
    probes = synthetic_probes(own_ssl_seeds=(0,))
    probes = pd.concat([probes, pd.DataFrame(stolen("direct", "mse", "svhn_train", 1000, 0.40, seeds=(0, 1)))])
    table = claims_table(probes, KINDS, TRAIN_SIZES)
    row = only_row(table, "api_beats_own_ssl", "direct/mse/")
    assert row["verdict"] == "not tested (1 seed)" and row["n_seeds"] == 1
    assert row["effect"] == pytest.approx(0.29) and row["ci_low"] > 0.2  # clear, yet refused
    assert pd.isna(row["seeds_to_resolve"])  # no seed spread to project from
    two = only_row(table, "more_queries", "direct/mse/svhn_train")
    assert two["verdict"] == "not tested (2 seeds)" and two["effect"] == pytest.approx(0.30)
    summary = summarise_claims(table).set_index("claim")
    assert summary.loc["api_beats_own_ssl", ["n_holds", "n_not_tested", "overall"]].tolist() == [0, 2, "not tested"]


def test_multi_seed_cells_pair_on_common_seeds():
    probes = pd.DataFrame(
        baselines(seeds=(0, 1, 2, 3))
        + stolen("direct", "mse", "cifar10_test", 9000, (0.70, 0.74, 0.72), seeds=(1, 2, 3))
    )
    row = only_row(claims_table(probes, KINDS, TRAIN_SIZES), "close_copy", "direct/mse/")
    assert row["n_seeds"] == 3
    assert row["effect"] == pytest.approx(0.72 - 0.8)
    assert row["verdict"] == "contradicted"


def test_seeds_filter_gives_disjoint_tables():
    """Seeds 0-5 in one folder: seeds 0-2 and 3-5 each make a full table of their own."""
    seeds = tuple(range(6))
    probes = pd.DataFrame(
        baselines(seeds=seeds)
        + stolen("direct", "mse", "cifar10_test", 9000, (0.79, 0.79, 0.79, 0.70, 0.70, 0.70), seeds=seeds)
    )
    first = only_row(claims_table(probes, KINDS, TRAIN_SIZES, seeds=[0, 1, 2]), "close_copy", "mse")
    second = only_row(claims_table(probes, KINDS, TRAIN_SIZES, seeds=[3, 4, 5]), "close_copy", "mse")
    both = only_row(claims_table(probes, KINDS, TRAIN_SIZES), "close_copy", "mse")
    assert (first["n_seeds"], second["n_seeds"], both["n_seeds"]) == (3, 3, 6)
    assert (first["effect"], second["effect"]) == pytest.approx((-0.01, -0.10))
    assert (first["verdict"], second["verdict"]) == ("holds", "contradicted")


def test_query_set_kinds_are_per_victim():
    """cifar10_test is in-distribution for victim v (trained on CIFAR10) and
    out-of-distribution for w (trained on SVHN); svhn_train the other way round."""
    kinds = {
        "v": {"cifar10_test": "in_distribution", "svhn_train": "out_of_distribution"},
        "w": {"cifar10_test": "out_of_distribution", "svhn_train": "in_distribution"},
    }
    rows = baselines("v") + records("victim", 0.80, victim="w") + records("random_init", 0.3, victim="w")
    for victim, (cifar, svhn) in {"v": (0.78, 0.70), "w": (0.65, 0.79)}.items():
        rows += stolen("direct", "mse", "cifar10_test", 9000, cifar, victim=victim)
        rows += stolen("direct", "mse", "svhn_train", 9000, svhn, victim=victim)
    table = claims_table(pd.DataFrame(rows), kinds, {})
    inside = table[table["claim"] == "in_distribution_queries"].set_index("victim")
    assert "cifar10_test − svhn_train (out_of_distribution)" in inside.loc["v", "comparison"]
    assert inside.loc["v", "effect"] == pytest.approx(0.08)
    assert "svhn_train − cifar10_test (out_of_distribution)" in inside.loc["w", "comparison"]
    assert inside.loc["w", "effect"] == pytest.approx(0.14)
    close = table[table["claim"] == "close_copy"].set_index("victim")
    assert "cifar10_test" in close.loc["v", "comparison"] and "svhn_train" in close.loc["w", "comparison"]
    with pytest.raises(TypeError, match="victim -> "):
        claims_table(pd.DataFrame(rows), {"cifar10_test": "in_distribution"}, {})


@pytest.mark.parametrize(
    "counts, expected",
    [
        ((0, 6, 2), "mostly contradicted"),  # 6 of 8 tested contradicted, none holds
        ((1, 1, 0), "mixed"),
        ((1, 5, 0), "mixed"),
        ((3, 0, 0), "holds"),
        ((0, 4, 0), "contradicted"),
        ((2, 0, 1), "mostly holds"),  # exactly two thirds
        ((1, 0, 1), "inconclusive"),
        ((0, 1, 2), "inconclusive"),
        ((0, 0, 3), "inconclusive"),
        ((0, 0, 0), "not tested"),
    ],
)
def test_overall_reading(counts, expected):
    assert overall_reading(*counts) == expected


def test_summary_counts_and_readings():
    table = pd.DataFrame({
        "claim": ["close_copy"] * 3 + ["more_queries"] * 2 + ["api_beats_own_ssl"] * 8 + ["direct_vs_head"],
        "verdict": ["holds", "holds", "not tested (1 seed)", "holds", "contradicted"]
        + ["contradicted"] * 6 + ["inconclusive"] * 2 + ["not tested (2 seeds)"],
    })
    summary = summarise_claims(table).set_index("claim")
    assert summary.loc["close_copy", "overall"] == "holds"
    assert summary.loc["close_copy", ["n_holds", "n_not_tested"]].tolist() == [2, 1]
    assert summary.loc["more_queries", "overall"] == "mixed"
    assert summary.loc["api_beats_own_ssl", "overall"] == "mostly contradicted"
    assert summary.loc["api_beats_own_ssl", ["n_holds", "n_contradicted", "n_inconclusive"]].tolist() == [0, 6, 2]
    assert summary.loc["direct_vs_head", "overall"] == "not tested"
    assert summary.loc["contrastive_losses", "n_comparisons"] == 0
    assert summary.loc["close_copy", "statement"] == CLAIMS["close_copy"]
    assert list(summary.index) == list(CLAIMS)


def test_write_claims(table, tmp_path):
    summary = summarise_claims(table)
    csv_path, markdown_path = tmp_path / "out" / "claims.csv", tmp_path / "out" / "claims.md"
    write_claims(table, summary, csv_path, markdown_path)
    written = pd.read_csv(csv_path)
    assert list(written.columns) == list(table.columns)
    assert {"margin_basis", "seeds_to_resolve", "note", "df"} <= set(written.columns)
    assert written["effect"].to_numpy() == pytest.approx(table["effect"].to_numpy(), abs=1e-4)
    text = markdown_path.read_text()
    assert text.startswith("# ")
    assert "t-intervals over seeds and test images" in text and "bootstrap" not in text
    assert "-1.0 [" in text  # close_copy mse effect in points
    assert text.count("| close_copy |") == 1 + 2  # summary row + two comparisons
    assert "n_not_tested" in text and "0.25 × (victim − raw_pixels)" in text
    assert sorted(p.name for p in csv_path.parent.iterdir()) == ["claims.csv", "claims.md"]


def test_own_ssl_without_victim_applies_to_every_victim():
    probes = pd.DataFrame(
        baselines()
        + stolen("direct", "mse", "cifar10_test", 9000, 0.7)
        + records("own_ssl", 0.6, query_set="cifar10_test", budget=9000)
    )
    row = only_row(claims_table(probes, KINDS, TRAIN_SIZES), "api_beats_own_ssl", "direct/mse/")
    assert row["effect"] == pytest.approx(0.1)


@pytest.mark.parametrize("order, expected", [(ORDER_A, "12"), (ORDER_B, ">100")], ids=["nested", "other-order"])
def test_seeds_to_resolve_against_a_hand_computation(order, expected):
    """An inconclusive close_copy row (seeds at 0.775, 0.79, 0.805 against the victim's
    0.80): seeds_to_resolve is the first S' where sqrt(t_{S'-1}^2 s^2 / S' +
    t_{N-1}^2 image part) < |effect - margin|, from the row's own contrast. On the
    victim's image order the image part is small and 12 seeds would do; on another order
    the test images alone leave the interval wider than the distance: ">100"."""
    accuracies = (0.775, 0.79, 0.805)
    probes = pd.DataFrame(baselines() + stolen("direct", "mse", "cifar10_test", 9000, accuracies, order=order))
    row = only_row(claims_table(probes, KINDS, TRAIN_SIZES), "close_copy", "mse")
    assert row["verdict"] == "inconclusive"
    contrast = np.stack([correct_at(a, order) for a in accuracies]).astype(float) - correct_at(0.80)
    s2 = contrast.mean(axis=1).var(ddof=1)
    per_image, m = contrast.mean(axis=0), contrast.mean()
    residual = ((contrast - contrast.mean(axis=1, keepdims=True) - per_image + m) ** 2).sum() / (2 * (N_TEST - 1))
    image = max(per_image.var(ddof=1) / N_TEST - residual / (3 * N_TEST), 0.0)
    distance = abs(row["effect"] - row["margin"])  # |-0.01 + 0.02|
    by_hand = next(
        (str(n) for n in range(3, 101)
         if np.sqrt(t_distribution.ppf(0.975, n - 1) ** 2 * s2 / n + t_distribution.ppf(0.975, N_TEST - 1) ** 2 * image) < distance),
        ">100",
    )
    assert row["seeds_to_resolve"] == by_hand == expected


def test_defense_claims_compare_accuracy_drops_paired():
    """Poisoning: the attacker loses 0.79 - 0.50 = 0.29, the user 0.80 - 0.78 = 0.02:
    effect 0.27, holds. Detection: head recreation loses 0.75 - 0.40, direct 0.79 - 0.78:
    effect 0.34, holds; a setting that costs direct more than head recreation is
    contradicted. Nested image orders make each drop exact, so the intervals are tight."""
    base = synthetic_probes()
    base = base[base["defense"].isna()]
    defended = [
        *[{**r, "defense": "poisoning_sigma1"} for r in records("victim", 0.78, victim="v")],
        *[{**r, "defense": "poisoning_sigma1"} for r in stolen("direct", "mse", "cifar10_test", 9000, 0.50)],
        *[{**r, "defense": "detection_fpr0.05"} for r in stolen("head_recreation", "mse", "cifar10_test", 9000, 0.40)],
        *[{**r, "defense": "detection_fpr0.05"} for r in stolen("direct", "mse", "cifar10_test", 9000, 0.78)],
        *[{**r, "defense": "detection_threshold0.8"} for r in stolen("head_recreation", "mse", "cifar10_test", 9000, 0.74)],
        *[{**r, "defense": "detection_threshold0.8"} for r in stolen("direct", "mse", "cifar10_test", 9000, 0.30)],
    ]
    table = claims_table(pd.concat([base, pd.DataFrame(defended)]), KINDS, TRAIN_SIZES)
    poisoning = only_row(table, "poisoning_hurts_attacker_more", "poisoning_sigma1")
    assert poisoning["effect"] == pytest.approx(0.29 - 0.02, abs=1e-9) and poisoning["verdict"] == "holds"
    detection = only_row(table, "detection_hurts_head_recreation_more", "detection_fpr0.05")
    assert detection["effect"] == pytest.approx(0.35 - 0.01, abs=1e-9) and detection["verdict"] == "holds"
    fixed = only_row(table, "detection_hurts_head_recreation_more", "detection_threshold0.8:")
    assert fixed["effect"] == pytest.approx(0.01 - 0.49, abs=1e-9) and fixed["verdict"] == "contradicted"
    # The defended records stay out of the paper's attack claims.
    assert len(table[table["claim"] == "more_queries"]) == 2


def b4b_probes(user_coverage, attacker_coverage):
    base = synthetic_probes()
    base = base[base["defense"].isna()]
    one, four = "b4b_sybils1", "b4b_sybils4"
    defended = [
        *[{**r, "defense": one, "b4b_coverage": user_coverage} for r in records("victim", 0.60, victim="v")],
        *[{**r, "defense": one, "b4b_coverage": attacker_coverage}
          for r in stolen("direct", "mse", "cifar10_test", 9000, 0.70)],
        *[{**r, "defense": four, "b4b_coverage": attacker_coverage / 4}
          for r in stolen("direct", "mse", "cifar10_test", 9000, 0.75)],
        *[{**r, "defense": "b4b_sybils8"} for r in stolen("direct", "mse", "cifar10_test", 9000, 0.60)],
    ]
    return pd.concat([base, pd.DataFrame(defended)])


def test_b4b_claims_use_the_one_account_user_and_compare_sybils_with_one_account():
    """B4B: the user (one account, b4b_sybils1) loses 0.80 - 0.60 = 0.20, the attacker
    with one account 0.79 - 0.70 = 0.09: effect -0.11, contradicted (the attacker covers
    60% of the buckets, the user 10%: the premise holds). With four sybils the attacker
    loses 0.79 - 0.75 = 0.04 (effect against the same user -0.16), each account covering
    15%: more than the user, still the premise. One account minus four sybils =
    0.70 - 0.75 = -0.05, below the -0.02 margin: 'sybils do not evade B4B' is
    contradicted. A setting where the sybils lose accuracy (0.60) makes it hold."""
    table = claims_table(b4b_probes(0.10, 0.60), KINDS, TRAIN_SIZES)
    one = only_row(table, "b4b_hurts_attacker_more", "b4b_sybils1:")
    assert one["effect"] == pytest.approx(0.09 - 0.20, abs=1e-9) and one["verdict"] == "contradicted"
    assert one["note"] == "user covers 10.0% of buckets, attacker 60.0%"
    four = only_row(table, "b4b_hurts_attacker_more", "b4b_sybils4:")
    assert four["effect"] == pytest.approx(0.04 - 0.20, abs=1e-9) and four["verdict"] == "contradicted"
    evade = only_row(table, "sybils_do_not_evade_b4b", "b4b_sybils4:")
    assert evade["effect"] == pytest.approx(-0.05, abs=1e-9) and evade["verdict"] == "contradicted"
    assert evade["margin"] == pytest.approx(-0.02)
    hold = only_row(table, "sybils_do_not_evade_b4b", "b4b_sybils8:")
    assert hold["effect"] == pytest.approx(0.10, abs=1e-9) and hold["verdict"] == "holds"
    # b4b_sybils8 records carry no coverage: the premise is not checked, and the row says so.
    eight = only_row(table, "b4b_hurts_attacker_more", "b4b_sybils8:")
    assert eight["note"] == "B4B coverage not recorded: premise not checked"


def test_b4b_premise_not_met():
    """The user covers 50% of the buckets, the attacker with one account 30%: B4B prices
    the user higher, so its claim is not tested; with four sybils each account covers
    7.5%, also below the user."""
    table = claims_table(b4b_probes(0.50, 0.30), KINDS, TRAIN_SIZES)
    for name, attacker in (("b4b_sybils1:", "30.0"), ("b4b_sybils4:", "7.5")):
        row = only_row(table, "b4b_hurts_attacker_more", name)
        assert row["verdict"] == "not tested (premise not met)"
        assert row["note"] == f"premise not met (user covers 50.0% of buckets, attacker {attacker}%)"
        assert pd.notna(row["effect"]) and pd.isna(row["seeds_to_resolve"])
    # b4b_sybils8 records no coverage: tested (contradicted), the other two not.
    summary = summarise_claims(table).set_index("claim")
    assert summary.loc["b4b_hurts_attacker_more", ["n_not_tested", "n_contradicted", "overall"]].tolist() == [
        2, 1, "contradicted"]


def test_dataset_inference_claims_read_the_gaps_and_their_intervals():
    """A copy whose gap interval lies above 0 is flagged (holds); the copy minus the
    independent twin: (0.5 - 0.1) with se sqrt(0.1^2 + 0.1^2) (each interval +-1.96 x
    0.1), holds; a copy with a gap of 0 [-0.2, 0.2] is inconclusive on both. One
    encoder each: the seed rule does not apply."""
    def gap(kind, difference, **fields):
        return {"victim": "v", "suspect_kind": kind, "testable": True, "n_train": 100, "difference": difference,
                "difference_low": difference - 0.196, "difference_high": difference + 0.196, **fields}

    records_ = [
        gap("stolen", 0.5, approach="direct", loss="mse", query_set="cifar10_test", budget=9000, seed=0),
        gap("defended_stolen", 0.0, approach="direct", loss="mse", query_set="cifar10_test", budget=9000,
            defense="b4b_sybils1", seed=0),
        gap("stolen", 0.7, approach="direct", loss="mse", query_set="cifar10_test", budget=9000, seed=4),
        gap("independent", 0.1, suspect="v"),
        gap("victim", 0.6, suspect="v"),
        {"victim": "v", "suspect_kind": "stolen", "testable": False, "difference": None},
    ]
    table = claims_table(synthetic_probes(), KINDS, TRAIN_SIZES, inference_records=records_, seeds=[0, 1, 2])
    flags = table[table["claim"] == "dataset_inference_flags_stolen"]
    assert list(flags["verdict"]) == ["holds", "inconclusive"] and set(flags["unit"]) == {"nats"}
    assert flags.iloc[0]["ci_low"] == pytest.approx(0.304) and set(flags["n_seeds"]) == {1}
    spares = table[table["claim"] == "dataset_inference_spares_independent"]
    assert spares.iloc[0]["effect"] == pytest.approx(0.4)
    assert spares.iloc[0]["ci_low"] == pytest.approx(0.4 - 1.96 * np.hypot(0.1, 0.1))
    assert list(spares["verdict"]) == ["holds", "inconclusive"]
    assert "b4b_sybils1: direct/mse" in spares.iloc[1]["comparison"]
    assert set(table.loc[~table["claim"].str.startswith("dataset_inference"), "unit"]) == {"accuracy"}


# --- fidelity ----------------------------------------------------------------------------------


def test_fidelity_returns_block_values_on_fixed_blocks():
    from sslsteal.fidelity import JACKKNIFE_BLOCKS, cka_interval, fidelity, linear_cka, mean_cosine

    generator = torch.Generator().manual_seed(0)
    x = torch.randn(400, 6, generator=generator)
    y = x @ torch.randn(6, 6, generator=generator) + 0.8 * torch.randn(400, 6, generator=generator)
    result = fidelity(x, y)
    blocks = torch.arange(400) * JACKKNIFE_BLOCKS // 400
    assert len(result["cka_blocks"]) == len(result["cosine_blocks"]) == JACKKNIFE_BLOCKS == 20
    for g in (0, 7, 19):
        keep = blocks != g
        assert result["cka_blocks"][g] == pytest.approx(linear_cka(x[keep], y[keep]), rel=1e-9)
        assert result["cosine_blocks"][g] == pytest.approx(mean_cosine(x[keep], y[keep]), rel=1e-9)
    assert (result["cka_low"], result["cka_high"]) == pytest.approx(cka_interval(x, y))
    assert fidelity(x, y, cosine=False)["cosine_blocks"] is None
    assert fidelity(x[:30], y[:30])["cka_blocks"] is None  # too few images for 20 blocks


def fidelity_records(encoder, values, blocks, seeds=SEEDS, **fields):
    """Probe records carrying fidelity ``values`` (metric -> per-seed values) and their
    block replicates (metric -> per-seed lists)."""
    out = records(encoder, 0.7, seeds=seeds, victim="v", **fields)
    for k, record in enumerate(out):
        for metric in values:
            record[metric] = values[metric][k]
            record[f"{metric}_blocks"] = blocks[metric][k]
    return out


def test_fidelity_claim_on_synthetic_records():
    """The copy's CKA 0.90, 0.91, 0.92 over seeds, the twin's 0.97: effect -0.06. Seed
    part var(0.90, 0.91, 0.92) / 3; image part the jackknife variance of the copy's block
    values averaged over seeds minus the twin's; t_2 and t_19: contradicted (the copy is
    *less* like the victim than the twin, as measured in the default run). Centred
    cosine 0.95 against 0.11: holds. A head copy has no cosine: only its CKA row."""
    rng = np.random.default_rng(4)
    wiggle = rng.normal(0, 0.002, (4, 20))
    copy_cka, copy_cos = [0.90, 0.91, 0.92], [0.94, 0.95, 0.96]
    copy = fidelity_records(
        "stolen", {"cka": copy_cka, "cosine": copy_cos},
        {"cka": [list(v + wiggle[k]) for k, v in enumerate(copy_cka)],
         "cosine": [list(v + wiggle[k]) for k, v in enumerate(copy_cos)]},
        approach="direct", loss="mse", query_set="cifar10_test", budget=9000,
    )
    twin_blocks = list(0.97 + wiggle[3])
    twin = fidelity_records("independent", {"cka": [0.97] * 3, "cosine": [0.11] * 3},
                            {"cka": [twin_blocks] * 3, "cosine": [list(0.11 + wiggle[3])] * 3})
    head = fidelity_records("stolen", {"cka": [0.8, 0.8, 0.8]}, {"cka": [twin_blocks] * 3},
                            approach="head_access", loss="mse", query_set="cifar10_test", budget=9000)
    for record in head:
        record["cosine"], record["cosine_blocks"] = None, None
    probes = pd.DataFrame(baselines() + copy + twin + head)
    table = claims_table(probes, KINDS, TRAIN_SIZES)
    rows = table[table["claim"] == "fidelity_tells_copy_from_independent"]
    assert len(rows) == 3 and set(rows["unit"]) == {"similarity"}
    cka = only_row(rows, "fidelity_tells_copy_from_independent", "CKA: direct/mse")
    difference = np.mean([np.array(copy[k]["cka_blocks"]) for k in range(3)], axis=0) - np.array(twin_blocks)
    jackknife = 19 / 20 * ((difference - difference.mean()) ** 2).sum()
    half = np.sqrt(t_distribution.ppf(0.975, 2) ** 2 * np.var(copy_cka, ddof=1) / 3
                   + t_distribution.ppf(0.975, 19) ** 2 * jackknife)
    assert cka["effect"] == pytest.approx(-0.06)
    assert (cka["ci_low"], cka["ci_high"]) == pytest.approx((-0.06 - half, -0.06 + half))
    assert cka["verdict"] == "contradicted" and cka["margin"] == 0.0 and cka["n_seeds"] == 3
    cosine = only_row(rows, "fidelity_tells_copy_from_independent", "centred cosine: direct/mse")
    assert cosine["effect"] == pytest.approx(0.84) and cosine["verdict"] == "holds"
    assert "cosine" not in only_row(rows, "fidelity_tells_copy_from_independent", "head_access")["comparison"]
    # Records without block values: effect shown, not tested.
    bare = probes.drop(columns=["cka_blocks", "cosine_blocks"])
    rows = claims_table(bare, KINDS, TRAIN_SIZES).query("claim == 'fidelity_tells_copy_from_independent'")
    assert set(rows["verdict"]) == {"not tested (no image blocks)"} and rows["effect"].notna().all()


# --- two runs compared -------------------------------------------------------------------------


def test_compare_verdicts_and_flip_counts():
    """Five shared comparisons: one holds in both, one holds then contradicted (a flip),
    one contradicted then holds (a flip), one inconclusive then holds (another change),
    one not tested in run b (not compared); one row only in run a (not joined)."""
    def claims(verdicts):
        return pd.DataFrame({
            "claim": ["close_copy", "more_queries", "more_queries", "api_beats_own_ssl", "direct_vs_head", "contrastive_losses"][: len(verdicts)],
            "victim": ["v", "v", "v", "v", "v", np.nan][: len(verdicts)],
            "comparison": ["a", "b", "c", "d", "e", "f"][: len(verdicts)],
            "effect": np.linspace(0, 0.1, len(verdicts)), "ci_low": 0.0, "ci_high": 0.2,
            "verdict": verdicts,
        })

    run_a = claims(["holds", "holds", "contradicted", "inconclusive", "holds", "holds"])
    run_b = claims(["holds", "contradicted", "holds", "holds", "not tested (2 seeds)"])
    joined = compare_verdicts(run_a, run_b)
    assert len(joined) == 5 and {"verdict_a", "verdict_b", "effect_a", "effect_b"} <= set(joined.columns)
    assert flip_counts(joined) == {"n_compared": 4, "n_kept": 1, "n_flips": 2, "n_other_changes": 1, "share_kept": 0.25}
    same = compare_verdicts(run_a, run_a)
    assert len(same) == 6  # a missing victim joins as ""
    assert flip_counts(same) == {"n_compared": 6, "n_kept": 6, "n_flips": 0, "n_other_changes": 0, "share_kept": 1.0}
    assert np.isnan(flip_counts(joined.iloc[:0])["share_kept"])
