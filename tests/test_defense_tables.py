"""The defense tables from records (torch-free): the detector's ROC and operating point,
and the watermark test against its null with the measured false-positive rate."""

import json

import h5py
import numpy as np
import pandas as pd
import pytest
from scipy.stats import t as t_distribution

from sslsteal.defense_tables import attack_label, detection_table, roc, watermark_table
from sslsteal.stats import null_p_value


def test_roc_auc_is_the_chance_that_an_attack_call_outscores_a_legitimate_one():
    legitimate = np.array([0.1, 0.2, 0.3, 0.4])
    # Pairs (attack > legitimate): 0.25 beats 2 of 4, 0.35 beats 3, 0.9 beats 4 -> 9 / 12.
    curve = roc(legitimate, np.array([0.25, 0.35, 0.9]), n_boot=200)
    assert curve["auc"] == pytest.approx(9 / 12)
    assert curve["auc_low"] <= curve["auc"] <= curve["auc_high"]
    separated = roc(legitimate, legitimate + 1.0, n_boot=50)
    assert separated["auc"] == 1.0 and separated["auc_low"] == 1.0


def test_detection_table_reads_each_attacks_scores_up_to_its_budget(tmp_path):
    """A head-recreation attacker's second views score high; the table's AUC comes from
    the first ``budget`` images' calls only, its flagged rate from the probe record."""
    rng = np.random.default_rng(0)
    scores = np.stack([rng.uniform(0, 0.5, 10), np.r_[np.full(4, 0.99), np.zeros(6)]])  # V x N, budget 4
    dump = tmp_path / "views.h5"
    with h5py.File(dump, "w") as f:
        f["score"] = scores
    attack = {"approach": "head_recreation", "loss": "infonce", "query_set": "q", "budget": 4, "dump": str(dump)}
    calibration = {"scores": list(rng.uniform(0, 0.5, 200)), "thresholds": {"0.05": 0.49}}
    probe = {"encoder": "stolen", "victim": "v", "approach": "head_recreation", "loss": "infonce", "query_set": "q",
             "budget": 4, "accuracy": 0.5, "ci_low": 0.45, "ci_high": 0.55}
    probes = pd.DataFrame([
        probe,
        {**probe, "defense": "detection_fpr0.05", "detection_threshold": 0.49, "api_calls": 8, "queries_sent": 8,
         "flagged": 4, "duplicates": 4, "detection_recall": 1.0, "accuracy": 0.3},
    ])
    table, curves = detection_table(probes, calibration, [attack])
    label = attack_label(attack)
    # Against as many legitimate calls (8): the calibration stream's first ones; the
    # AUC of those 8 against the attack's 8 calls within its budget, from scikit-learn.
    from sklearn.metrics import roc_auc_score

    legitimate, attack_calls = calibration["scores"][:8], scores[:, :4].ravel()
    expected = roc_auc_score([0] * 8 + [1] * 8, np.r_[legitimate, attack_calls])
    assert curves[label]["auc"] == pytest.approx(expected)
    defended = table[table["defense"] == "detection_fpr0.05"].iloc[0]
    assert defended["flagged_rate"] == 0.5 and defended["flagged_low"] < 0.5 < defended["flagged_high"]
    assert defended["threshold"] == 0.49 and defended["auc"] == pytest.approx(expected)


def write(path, **record):
    path.write_text(json.dumps(record))
    return path


def test_watermark_table_tests_suspects_against_the_null_and_measures_its_false_positives(tmp_path):
    """Null of 6 innocents near 53%; the victim (90%) and a copy (75%) are flagged, a copy
    at 54% is not; the Bonferroni factor is the 3 suspects; every innocent is tested
    against the other 5 and none is flagged."""
    null_accuracy = [0.525, 0.53, 0.535, 0.52, 0.54, 0.533]
    null = [write(tmp_path / f"r{i}.json", suspect_kind="random_init", suspect="v", watermarked="wm", seed=i,
                  images=5000, accuracy=a) for i, a in enumerate(null_accuracy)]
    suspects = [write(tmp_path / "victim.json", suspect_kind="victim", suspect="wm", watermarked="wm", images=5000, accuracy=0.90)]
    for name, accuracy in (("a", 0.75), ("b", 0.54)):
        suspects.append(write(tmp_path / f"{name}.json", suspect_kind="stolen", suspect="wm", watermarked="wm", images=5000,
                              accuracy=accuracy, approach="direct", loss=name, query_set="q", queries=1000))
    probe = write(tmp_path / "probe.json", victim="wm", accuracy=0.8, n_test=5000)
    table, summary = watermark_table(suspects, null, probe, None, 0.05)
    rows = table[~table["kind"].str.startswith("probe accuracy")].set_index("suspect")
    assert rows.loc["wm", "flagged"] and rows.loc["direct a, q", "flagged"] and not rows.loc["direct b, q", "flagged"]
    # 0.54 against the null (mean 0.5305, s = 0.0071764, n = 6): t = 0.0095 / (0.0071764
    # x sqrt(1 + 1/6)) = 1.22559 with 5 degrees of freedom, p = 0.13746; x 3 suspects.
    assert rows.loc["direct b, q", "p_adjusted"] == pytest.approx(3 * t_distribution.sf(1.22559, 5), rel=1e-4)
    assert rows.loc["direct b, q", "p_adjusted"] == pytest.approx(0.41239, abs=1e-4)
    assert summary["suspects"] == 3 and summary["null_encoders"] == 6 and summary["measured_fpr"] == 0
    assert summary["measured_fpr_high"] > 0.3  # 0 of 6 is weak evidence, and says so
    assert null_p_value(summary["flag_above"], null_accuracy) == pytest.approx(0.05 / 3)


def test_watermark_cost_is_paired_over_the_test_images(tmp_path):
    """Plain twin right on 850 of 1,000 test images, the watermarked victim on the same
    ones but 20: cost exactly 2.0 points, its interval around it."""
    from sslsteal.probe import encode_correct

    plain_correct = np.arange(1000) < 850
    marked_correct = plain_correct & (np.arange(1000) >= 20)
    plain = write(tmp_path / "plain.json", victim="plain", accuracy=0.85, n_test=1000, correct=encode_correct(plain_correct))
    marked = write(tmp_path / "marked.json", victim="wm", accuracy=0.83, n_test=1000, correct=encode_correct(marked_correct))
    null = [write(tmp_path / f"r{i}.json", suspect_kind="random_init", suspect="v", watermarked="wm", seed=i,
                  images=1000, accuracy=a) for i, a in enumerate([0.5, 0.51, 0.49, 0.52, 0.5])]
    suspect = write(tmp_path / "victim.json", suspect_kind="victim", suspect="wm", watermarked="wm", images=1000, accuracy=0.9)
    _, summary = watermark_table([suspect], null, marked, plain, 0.05)
    cost = summary["cost"]
    assert cost.estimate == pytest.approx(0.02) and cost.low <= 0.02 <= cost.high and cost.low > 0
