"""The attack-vs-defense table: its cells as targets (job counts of configs/tiny.yaml's
table and of the shipped configs) and its numbers against independent computations."""

import json
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy.stats import t as student_t

from sslsteal import config as cfg
from sslsteal import targets
from sslsteal.defense_tables import USER, attack_vs_defense_table, write_attack_vs_defense
from sslsteal.probe import encode_correct

from dry_run import planned

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "configs" / "tiny.yaml"
EMPTY = Path(tempfile.mkdtemp(prefix="sslsteal-avd-"))


def loaded(path: Path) -> dict:
    return cfg.load(yaml.safe_load(path.read_text()), workdir=EMPTY)


def test_cells_of_each_shipped_config():
    """Every (defense, party) once: (1 + attacks) x (1 + defenses other than none)."""
    for path, victims, attacks, defenses in (
        (ROOT / "config.yaml", 1, 1, 2),
        (ROOT / "configs" / "full.yaml", 1, 3, 5),
        (TINY, 1, 3, 4),
    ):
        cells = targets.attack_vs_defense_cells(loaded(path))
        assert len(cells) == victims * defenses * (1 + attacks), path
        assert len({(c["victim"], c["defense"], c.get("approach"), c.get("loss"), c["party"]) for c in cells}) == len(cells)
    full = targets.attack_vs_defense_cells(loaded(ROOT / "configs" / "full.yaml"))
    # The watermarked victim: every copy has both ownership records.
    assert all(c["watermark"] and c["dataset_inference"] for c in full if c["party"] == "attack")
    users = {c["defense"]: c["probe"] for c in full if c["party"] == "user"}
    # A legitimate user is one account: four sybils give it one account's answers.
    assert users["b4b_sybils4"] == users["b4b_sybils1"].replace("b4b_sybils4", "b4b_sybils1")
    assert "/defended/b4b_sybils1/victim/" in users["b4b_sybils4"]


def test_the_tiny_table_plans_one_job_per_cell(tmp_path):
    """configs/tiny.yaml's table: 3 attacks against none, poisoning_sigma3,
    detection_fpr0.05 and b4b_sybils2 on simclr_wm_synthetic, from an empty directory:
    3 undefended and 3 x 3 defended extractions and probes, the user's probe undefended
    and under each defense (B4B: one account), the answers and the Cont-Steal views
    dumped once and defended once per defense, the detector calibrated once, each copy's
    watermark and dataset-inference record, and the table."""
    jobs = planned(tmp_path, TINY, "paper_figures/attack_vs_defense.md")
    attacks, defended = 3, 3
    assert jobs["extract"] == attacks and jobs["extract_defended"] == attacks * defended
    assert jobs["probe_stolen"] == attacks and jobs["probe_defended_stolen"] == attacks * defended
    assert jobs["probe_victim"] == 1 and jobs["probe_defended_victim"] == defended
    # The victim's answers and simclr_synthetic's (whose own-SSL encoders, in the
    # ownership nulls, read their query images from its dump); the views once.
    assert jobs["dump_victim"] == 2 and jobs["dump_victim_views"] == 1
    assert jobs["defend_answers"] == 2 * defended and jobs["calibrate_detection"] == 1
    assert jobs["verify_watermark_stolen"] == attacks and jobs["verify_watermark_defended_stolen"] == attacks * defended
    assert jobs["verify_dataset_inference_stolen"] == attacks
    assert jobs["verify_dataset_inference_defended"] == attacks * defended
    assert jobs["attack_vs_defense_table"] == 1
    # One cell is one target: a copy stolen by Cont-Steal from B4B's answers to two sybils.
    one = planned(tmp_path, TINY, "results/probes/synthetic/defended/b4b_sybils2/stolen/simclr_wm_synthetic/contsteal/infonce/synthetic_test/400/seed0.json")
    assert {k: v for k, v in one.items() if k not in ("prepare_dataset", "train_victim")} == {
        "dump_victim_views": 1, "defend_answers": 1, "extract_defended": 1, "probe_defended_stolen": 1,
    }


N = 400
RNG = np.random.default_rng(0)


def probe_record(path: Path, correct: np.ndarray, **fields) -> str:
    record = {"seed": 0, "n_test": N, "accuracy": float(correct.mean()), "correct": encode_correct(correct), **fields}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record))
    return str(path)


def test_table_numbers_against_independent_computations(tmp_path):
    """Accuracy, paired drop and the watermark verdict recomputed by hand: the drop is
    the difference of the two accuracies (same images), its interval contains it; the
    watermark p-value is Student's t prediction test against the null; Bonferroni over
    the two copies; dataset inference copied from its record."""
    clear_user, clear_copy = RNG.random(N) < 0.82, RNG.random(N) < 0.79
    noisy_user = clear_user & (RNG.random(N) < 0.75)  # the user loses about a quarter
    noisy_copy = clear_copy & (RNG.random(N) < 0.98)
    null = [0.50, 0.52, 0.49, 0.51, 0.53]
    null_paths = []
    for k, accuracy in enumerate(null):
        path = tmp_path / f"null{k}.json"
        path.write_text(json.dumps({"accuracy": accuracy}))
        null_paths.append(str(path))
    cells = []
    for defense, user, copy_ in (("none", clear_user, clear_copy), ("b4b_sybils1", noisy_user, noisy_copy)):
        cells.append({"victim": "v", "defense": defense, "party": "user",
                      "probe": probe_record(tmp_path / defense / "user.json", user)})
        watermark = tmp_path / defense / "wm.json"
        watermark.write_text(json.dumps({"accuracy": 0.70 if defense == "none" else 0.56}))
        inference = tmp_path / defense / "di.json"
        inference.write_text(json.dumps({"p_value": 0.3, "flagged": False}))
        cells.append({"victim": "v", "defense": defense, "party": "attack", "approach": "direct", "loss": "mse",
                      "probe": probe_record(tmp_path / defense / "copy.json", copy_, api_calls=N, cka=0.9, cka_low=0.88, cka_high=0.92),
                      "watermark": str(watermark), "dataset_inference": str(inference)})
    table = attack_vs_defense_table(cells, {"v": null_paths}, watermark_fpr=0.05)
    by = table.set_index(["defense", "party"])
    assert by.loc[("none", USER), "accuracy"] == pytest.approx(clear_user.mean())
    drop = by.loc[("b4b_sybils1", USER)]
    assert drop["drop_points"] == pytest.approx((clear_user.mean() - noisy_user.mean()) * 100)
    assert drop["drop_low"] <= drop["drop_points"] <= drop["drop_high"]
    assert np.isnan(by.loc[("none", USER), "drop_points"])
    mean, sd, n = np.mean(null), np.std(null, ddof=1), len(null)
    for defense, score in (("none", 0.70), ("b4b_sybils1", 0.56)):
        row = by.loc[(defense, "direct mse")]
        p = student_t.sf((score - mean) / (sd * np.sqrt(1 + 1 / n)), df=n - 1)
        assert row["watermark_p"] == pytest.approx(p)
        assert bool(row["watermark_flagged"]) == (min(1.0, 2 * p) < 0.05)
        assert row["inference_p"] == 0.3 and not row["inference_flagged"]
    assert bool(by.loc[("none", "direct mse"), "watermark_flagged"])
    outputs = [tmp_path / name for name in ("t.csv", "t.md", "t.png")]
    write_attack_vs_defense(table, *outputs, style={"dpi": 50})
    markdown = outputs[1].read_text()
    assert "| legitimate user" in markdown and "b4b_sybils1" in markdown and "flagged (p" in markdown
    assert pd.read_csv(outputs[0]).shape[0] == 4 and outputs[2].stat().st_size > 0
