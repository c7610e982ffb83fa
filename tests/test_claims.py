import numpy as np
import pandas as pd
import pytest

from sslsteal.claims import CLAIMS, claims_table, summarise_claims, write_claims
from sslsteal.probe import encode_correct as encode  # what the probe jobs write

N_TEST = 2000
KINDS = {"cifar10_test": "in_distribution", "svhn_train": "out_of_distribution"}
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


def record(encoder, accuracy, seed=0, order=ORDER_A, **fields):
    correct = correct_at(accuracy, order)
    return {
        "encoder": encoder, "seed": seed, "accuracy": correct.mean(),
        "n_test": N_TEST, "correct": encode(correct), **fields,
    }


def stolen(approach, loss, query_set, budget, accuracy, seed=0, order=ORDER_A):
    return record("stolen", accuracy, seed, order, victim="v", approach=approach,
                  loss=loss, query_set=query_set, budget=budget)


def synthetic_probes(own_ssl_seed=0):
    # Victim accuracy differs by seed: only seed 0 (0.80) pairs with the stolen cells.
    victims = [record("victim", acc, seed, victim="v") for seed, acc in [(0, 0.80), (1, 0.60), (2, 0.60)]]
    baselines = [record("random_init", 0.3, s, victim="v") for s in (0, 1, 2)]
    baselines += [record("raw_pixels", 0.4, s) for s in (0, 1, 2)]
    cells = [
        stolen("direct", "mse", "cifar10_test", 1000, 0.60),
        stolen("direct", "mse", "cifar10_test", 9000, 0.79),
        stolen("direct", "infonce", "cifar10_test", 1000, 0.55),
        stolen("direct", "infonce", "cifar10_test", 9000, 0.788, order=ORDER_B),
        stolen("direct", "mse", "svhn_train", 9000, 0.70),
        stolen("head_recreation", "mse", "cifar10_test", 9000, 0.75),
    ]
    own = [record("own_ssl", 0.50, own_ssl_seed, victim="v", approach="own_ssl", query_set="cifar10_test", budget=9000)]
    # Probed through a defended API: not part of any claim (and would clash with the cell above).
    defended = [{**stolen("direct", "mse", "cifar10_test", 9000, 0.2), "defense": "poisoning_sigma0.1"}]
    return pd.DataFrame(victims + baselines + cells + own + defended)


@pytest.fixture(scope="module")
def table():
    return claims_table(synthetic_probes(), KINDS, TRAIN_SIZES, margin=0.02, n_boot=1000)


def only_row(table, claim, contains):
    rows = table[(table["claim"] == claim) & table["comparison"].str.contains(contains, regex=False)]
    assert len(rows) == 1, rows
    return rows.iloc[0]


# (claim, text in comparison, effect, verdict)
EXPECTED = [
    ("close_copy", "direct/mse/", 0.79 - 0.80, "holds"),  # within 2 points, nearly exact
    ("close_copy", "direct/infonce/", 0.788 - 0.80, "inconclusive"),  # noisy, margin inside
    ("more_queries", "direct/mse/cifar10_test", 0.79 - 0.60, "holds"),
    ("more_queries", "direct/infonce/cifar10_test", 0.788 - 0.55, "holds"),
    ("in_distribution_queries", "cifar10_test − svhn_train", 0.79 - 0.70, "holds"),
    ("contrastive_losses", "cifar10_test/1000", 0.55 - 0.60, "contradicted"),
    ("contrastive_losses", "cifar10_test/9000", 0.788 - 0.79, "inconclusive"),
    ("direct_vs_head", "direct − head_recreation", 0.79 - 0.75, "holds"),
    ("api_beats_own_ssl", "direct/mse/", 0.79 - 0.50, "holds"),
    ("api_beats_own_ssl", "direct/infonce/", 0.788 - 0.50, "holds"),
]


@pytest.mark.parametrize("claim, contains, effect, expected_verdict", EXPECTED)
def test_effects_and_verdicts(table, claim, contains, effect, expected_verdict):
    row = only_row(table, claim, contains)
    assert row["effect"] == pytest.approx(effect, abs=1e-9)
    assert row["ci_low"] <= row["effect"] <= row["ci_high"]
    assert row["verdict"] == expected_verdict
    assert row["statement"] == CLAIMS[claim]


def test_exactly_the_expected_comparisons(table):
    assert len(table) == len(EXPECTED)
    assert table["claim"].value_counts().to_dict() == {
        "close_copy": 2, "more_queries": 2, "in_distribution_queries": 1,
        "contrastive_losses": 2, "direct_vs_head": 1, "api_beats_own_ssl": 2,
    }


def test_margins(table):
    margins = table.groupby("claim")["margin"].unique()
    assert list(margins["close_copy"]) == [-0.02]
    assert list(margins["direct_vs_head"]) == [-0.02]
    assert list(margins["more_queries"]) == [0.0]


def test_close_copy_uses_common_seed_and_shows_query_fraction(table):
    # The victim's mean over seeds 0..2 is 0.667; pairing on seed 0 alone gives 0.80.
    row = only_row(table, "close_copy", "direct/mse/")
    assert row["n_seeds"] == 1
    assert "direct/mse/cifar10_test/9000" in row["comparison"]
    assert "18%" in row["comparison"]


def test_comparison_without_common_seed_is_skipped():
    table = claims_table(synthetic_probes(own_ssl_seed=5), KINDS, TRAIN_SIZES, n_boot=200)
    assert "api_beats_own_ssl" not in set(table["claim"])
    assert "close_copy" in set(table["claim"])


def test_multi_seed_cells_pair_on_common_seeds():
    probes = pd.DataFrame([
        record("victim", 0.8, s, victim="v") for s in (0, 1, 2)
    ] + [stolen("direct", "mse", "cifar10_test", 9000, acc, seed=s) for s, acc in [(0, 0.7), (1, 0.74)]])
    table = claims_table(probes, KINDS, TRAIN_SIZES, n_boot=200)
    row = only_row(table, "close_copy", "direct/mse/")
    assert row["n_seeds"] == 2
    assert row["effect"] == pytest.approx((0.7 + 0.74) / 2 - 0.8)
    assert row["verdict"] == "contradicted"


def test_summary_overall_verdicts():
    table = pd.DataFrame({
        "claim": ["close_copy", "close_copy", "more_queries", "more_queries",
                  "contrastive_losses", "contrastive_losses", "direct_vs_head"],
        "verdict": ["holds", "holds", "holds", "contradicted",
                    "contradicted", "inconclusive", "contradicted"],
    })
    summary = summarise_claims(table).set_index("claim")
    assert summary.loc["close_copy", "overall"] == "holds"
    assert summary.loc["more_queries", "overall"] == "mixed"
    assert summary.loc["contrastive_losses", "overall"] == "inconclusive"
    assert summary.loc["direct_vs_head", "overall"] == "contradicted"
    assert summary.loc["api_beats_own_ssl", "n_comparisons"] == 0
    assert summary.loc["more_queries", ["n_holds", "n_contradicted", "n_inconclusive"]].tolist() == [1, 1, 0]
    assert summary.loc["close_copy", "statement"] == CLAIMS["close_copy"]


def test_write_claims(table, tmp_path):
    summary = summarise_claims(table)
    csv_path, markdown_path = tmp_path / "out" / "claims.csv", tmp_path / "out" / "claims.md"
    write_claims(table, summary, csv_path, markdown_path)
    written = pd.read_csv(csv_path)
    assert list(written.columns) == list(table.columns)
    assert written["effect"].to_numpy() == pytest.approx(table["effect"].to_numpy(), abs=1e-4)
    text = markdown_path.read_text()
    assert text.startswith("# ")
    assert "bootstrap" in text and "margin" in text
    assert "-1.0 [" in text  # close_copy mse effect in points
    assert text.count("| close_copy |") == 1 + 2  # summary row + two comparisons
    assert sorted(p.name for p in csv_path.parent.iterdir()) == ["claims.csv", "claims.md"]


def test_own_ssl_without_victim_applies_to_every_victim():
    probes = pd.DataFrame([
        record("victim", 0.8, 0, victim="v"),
        stolen("direct", "mse", "cifar10_test", 9000, 0.7),
        record("own_ssl", 0.6, 0, query_set="cifar10_test", budget=9000),
    ])
    row = only_row(claims_table(probes, KINDS, TRAIN_SIZES, n_boot=200), "api_beats_own_ssl", "direct/mse/")
    assert row["effect"] == pytest.approx(0.1)


def test_defense_claims_compare_accuracy_drops_paired():
    """Poisoning: the attacker loses 0.79 - 0.50 = 0.29, the user 0.80 - 0.78 = 0.02:
    effect 0.27, holds. Detection: head recreation loses 0.75 - 0.40, direct 0.79 - 0.78:
    effect 0.34, holds; a setting that costs direct more than head recreation is
    contradicted. Nested image orders make each drop exact, so the intervals are tight."""
    base = synthetic_probes()
    base = base[base["defense"].isna()] if "defense" in base else base
    defended = [
        {**record("victim", 0.78, victim="v"), "defense": "poisoning_sigma1"},
        {**stolen("direct", "mse", "cifar10_test", 9000, 0.50), "defense": "poisoning_sigma1"},
        {**stolen("head_recreation", "mse", "cifar10_test", 9000, 0.40), "defense": "detection_fpr0.05"},
        {**stolen("direct", "mse", "cifar10_test", 9000, 0.78), "defense": "detection_fpr0.05"},
        {**stolen("head_recreation", "mse", "cifar10_test", 9000, 0.74), "defense": "detection_threshold0.8"},
        {**stolen("direct", "mse", "cifar10_test", 9000, 0.30), "defense": "detection_threshold0.8"},
    ]
    table = claims_table(pd.concat([base, pd.DataFrame(defended)]), KINDS, TRAIN_SIZES, n_boot=500)
    poisoning = only_row(table, "poisoning_hurts_attacker_more", "poisoning_sigma1")
    assert poisoning["effect"] == pytest.approx(0.29 - 0.02, abs=1e-9) and poisoning["verdict"] == "holds"
    detection = only_row(table, "detection_hurts_head_recreation_more", "detection_fpr0.05")
    assert detection["effect"] == pytest.approx(0.35 - 0.01, abs=1e-9) and detection["verdict"] == "holds"
    fixed = only_row(table, "detection_hurts_head_recreation_more", "detection_threshold0.8:")
    assert fixed["effect"] == pytest.approx(0.01 - 0.49, abs=1e-9) and fixed["verdict"] == "contradicted"
    # The defended records stay out of the paper's attack claims.
    assert len(table[table["claim"] == "more_queries"]) == 2


def test_b4b_claims_use_the_one_account_user_and_compare_sybils_with_one_account():
    """B4B: the user (one account, b4b_sybils1) loses 0.80 - 0.60 = 0.20, the attacker
    with one account 0.79 - 0.70 = 0.09: effect -0.11, contradicted. With four sybils the
    attacker loses 0.79 - 0.75 = 0.04 (effect against the same user -0.16); one account
    minus four sybils = 0.70 - 0.75 = -0.05, below the -0.02 margin: the sybils gain more
    than the margin, so 'sybils do not evade B4B' is contradicted. A setting where the
    sybils lose accuracy (0.60) makes it hold."""
    base = synthetic_probes()
    base = base[base["defense"].isna()]
    defended = [
        {**record("victim", 0.60, victim="v"), "defense": "b4b_sybils1"},
        {**stolen("direct", "mse", "cifar10_test", 9000, 0.70), "defense": "b4b_sybils1"},
        {**stolen("direct", "mse", "cifar10_test", 9000, 0.75), "defense": "b4b_sybils4"},
        {**stolen("direct", "mse", "cifar10_test", 9000, 0.60), "defense": "b4b_sybils8"},
    ]
    table = claims_table(pd.concat([base, pd.DataFrame(defended)]), KINDS, TRAIN_SIZES, margin=0.02, n_boot=500)
    one = only_row(table, "b4b_hurts_attacker_more", "b4b_sybils1:")
    assert one["effect"] == pytest.approx(0.09 - 0.20, abs=1e-9) and one["verdict"] == "contradicted"
    four = only_row(table, "b4b_hurts_attacker_more", "b4b_sybils4:")
    assert four["effect"] == pytest.approx(0.04 - 0.20, abs=1e-9)
    evade = only_row(table, "sybils_do_not_evade_b4b", "b4b_sybils4:")
    assert evade["effect"] == pytest.approx(-0.05, abs=1e-9) and evade["verdict"] == "contradicted"
    hold = only_row(table, "sybils_do_not_evade_b4b", "b4b_sybils8:")
    assert hold["effect"] == pytest.approx(0.10, abs=1e-9) and hold["verdict"] == "holds"


def test_dataset_inference_claims_read_the_gaps_and_their_intervals():
    """A copy whose gap interval lies above 0 is flagged (holds); the copy minus the
    independent twin: (0.5 - 0.1) with se sqrt(0.1^2 + 0.1^2) (each interval +-1.96 x
    0.1), holds; a copy with a gap of 0 [-0.2, 0.2] is inconclusive on both."""
    def gap(kind, difference, **fields):
        return {"victim": "v", "suspect_kind": kind, "testable": True, "n_train": 100, "difference": difference,
                "difference_low": difference - 0.196, "difference_high": difference + 0.196, **fields}

    records = [
        gap("stolen", 0.5, approach="direct", loss="mse", query_set="cifar10_test", budget=9000),
        gap("defended_stolen", 0.0, approach="direct", loss="mse", query_set="cifar10_test", budget=9000, defense="b4b_sybils1"),
        gap("independent", 0.1, suspect="v"),
        gap("victim", 0.6, suspect="v"),
        {"victim": "v", "suspect_kind": "stolen", "testable": False, "difference": None},
    ]
    table = claims_table(synthetic_probes(), KINDS, TRAIN_SIZES, n_boot=200, inference_records=records)
    flags = table[table["claim"] == "dataset_inference_flags_stolen"]
    assert list(flags["verdict"]) == ["holds", "inconclusive"] and set(flags["unit"]) == {"nats"}
    assert flags.iloc[0]["ci_low"] == pytest.approx(0.304)
    spares = table[table["claim"] == "dataset_inference_spares_independent"]
    assert spares.iloc[0]["effect"] == pytest.approx(0.4)
    assert spares.iloc[0]["ci_low"] == pytest.approx(0.4 - 1.96 * np.hypot(0.1, 0.1))
    assert list(spares["verdict"]) == ["holds", "inconclusive"]
    assert "b4b_sybils1: direct/mse" in spares.iloc[1]["comparison"]
    assert set(table.loc[~table["claim"].str.startswith("dataset_inference"), "unit"]) == {"accuracy"}
