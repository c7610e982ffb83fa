"""The accuracy tables' intervals (sslsteal.tables): the t-interval per cell, the paired
difference from the victim, and gain recovered with Fieller's interval only where the
victim clears its floor by 3 points, on the cell's own seeds."""

import numpy as np
import pandas as pd
import pytest

from sslsteal.probe import encode_correct as encode
from sslsteal.stats import accuracy_interval, correct_matrix, difference_interval, gain_recovered_interval
from sslsteal.tables import stolen_accuracy_table, summarise_cells, victim_quality_table, write_table, write_victim_quality

N = 1000
RNG = np.random.default_rng(0)
ORDER = RNG.permutation(N)


def records(encoder, accuracies, seeds=(0, 1, 2), **fields) -> list[dict]:
    """One record per seed; each seed's right images are the first ones of a fixed order
    shifted by the seed (so seeds differ image by image, and cells are nearly nested)."""
    out = []
    for seed, accuracy in zip(seeds, accuracies if not np.isscalar(accuracies) else [accuracies] * len(seeds)):
        correct = np.zeros(N, bool)
        correct[np.roll(ORDER, 7 * seed)[: round(accuracy * N)]] = True
        out.append({"encoder": encoder, "seed": seed, "n_test": N, "accuracy": correct.mean(),
                    "correct": encode(correct), "victim": "v", **fields})
    return out


def stolen(accuracies, seeds=(0, 1, 2), approach="direct", loss="mse"):
    return records("stolen", accuracies, seeds, approach=approach, loss=loss, query_set="q", budget=500)


def own_ssl(accuracies, seeds=(0, 1, 2)):
    return records("own_ssl", accuracies, seeds, approach="own_ssl", query_set="q", budget=500)


def cells_of(*groups) -> pd.DataFrame:
    probes = pd.DataFrame([record for group in groups for record in group])
    raw = probes["encoder"] == "raw_pixels"
    probes.loc[raw, "victim"] = None  # raw pixels name no victim
    return summarise_cells(probes).set_index(["encoder", "approach", "loss"], drop=False)


def matrix(group) -> np.ndarray:
    return correct_matrix(pd.DataFrame(group))


def test_accuracy_and_paired_difference_are_the_t_intervals():
    victim, copy = records("victim", (0.80, 0.82, 0.78)), stolen((0.70, 0.73, 0.71))
    cells = cells_of(victim, copy, records("raw_pixels", 0.40))
    row = cells.loc[("stolen", "direct", "mse")]
    expected = accuracy_interval(matrix(copy))
    assert (row["accuracy"], row["ci_low"], row["ci_high"]) == pytest.approx((expected.estimate, expected.low, expected.high))
    gap = difference_interval(matrix(copy), matrix(victim))
    assert (row["vs_victim"], row["vs_victim_low"], row["vs_victim_high"]) == pytest.approx((gap.estimate, gap.low, gap.high))
    assert row["n_seeds"] == 3 and row["seeds"] == "0 1 2"


def test_gain_recovered_with_fieller_on_the_cells_seeds():
    """Victim 0.80, floors: random init 0.30, raw pixels 0.40, own SSL 0.50 (the best):
    gain (0.70 - 0.50) / (0.80 - 0.50) = 2/3, with Fieller's interval from the three
    cells on seeds 0-2."""
    victim, copy, own = records("victim", 0.80), stolen((0.69, 0.70, 0.71)), own_ssl(0.50)
    cells = cells_of(victim, copy, own, records("random_init", 0.30), records("raw_pixels", 0.40))
    row = cells.loc[("stolen", "direct", "mse")]
    assert row["floor"] == "own_ssl" and row["floor_seeds"] == "0 1 2"
    assert row["victim_over_floor"] == pytest.approx(0.30) and row["victim_over_floor_low"] > 0.03
    expected = gain_recovered_interval(matrix(copy), matrix(victim), matrix(own))
    assert row["gain_recovered"] == pytest.approx(0.2 / 0.3)
    assert (row["gain_low"], row["gain_high"]) == pytest.approx((expected.low, expected.high))
    assert row["gain_low"] < 2 / 3 < row["gain_high"]


def test_gain_is_na_when_the_victim_barely_clears_its_floor():
    """Own SSL at 0.78 against the victim's 0.80: the lower bound of the 2-point gap is
    under 3 points, so no ratio (its denominator could be anywhere near 0)."""
    cells = cells_of(records("victim", 0.80), stolen(0.79), own_ssl(0.78), records("raw_pixels", 0.40))
    row = cells.loc[("stolen", "direct", "mse")]
    assert row["floor"] == "own_ssl" and row["victim_over_floor_low"] < 0.03
    assert np.isnan(row["gain_recovered"]) and np.isnan(row["gain_low"])


def test_floor_must_cover_the_cells_seeds():
    """Own SSL probed at seeds 0 and 1 only cannot be the floor of a cell on seeds 0-2:
    the gain would rest on other seeds than the accuracy column. Raw pixels (all seeds) is."""
    cells = cells_of(records("victim", 0.80), stolen(0.70), own_ssl(0.60, seeds=(0, 1)), records("raw_pixels", 0.40))
    row = cells.loc[("stolen", "direct", "mse")]
    assert row["floor"] == "raw_pixels" and row["floor_seeds"] == "0 1 2"
    assert row["gain_recovered"] == pytest.approx(0.3 / 0.4)


def test_single_seed_cells_are_marked_images_only(tmp_path):
    cells = cells_of(records("victim", 0.80), stolen(0.70), stolen(0.65, seeds=(0,), loss="infonce"),
                     records("raw_pixels", 0.40), records("random_init", 0.30))
    table = stolen_accuracy_table(cells.reset_index(drop=True))
    assert sorted(table.loc[table["encoder"] == "stolen", "n_seeds"]) == [1, 3]
    write_table(table, tmp_path / "t.csv", tmp_path / "t.md", "victim v")
    text = (tmp_path / "t.md").read_text()
    assert "t-interval over seeds and test images" in text and "bootstrap" not in text
    marked = [line for line in text.splitlines() if "†" in line and line.startswith("|")]
    assert marked and all("infonce" in line for line in marked)


def test_victim_quality_marks_one_seed(tmp_path):
    probes = pd.DataFrame(records("victim", 0.80, seeds=(0,)) + records("random_init", 0.30, seeds=(0,)))
    probes["downstream"] = "d"
    table = victim_quality_table(probes)
    write_victim_quality(table, tmp_path / "q.csv", tmp_path / "q.md")
    text = (tmp_path / "q.md").read_text()
    assert "80.0 [" in text and "†" in text and "bootstrap" not in text
