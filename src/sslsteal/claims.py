"""The paper's qualitative claims, each tested by paired bootstrap comparisons.

``claims_table`` turns the probe records of one downstream task into one row per
comparison (e.g. one stolen cell against its victim), with the effect in accuracy
(as a fraction), its paired 95% bootstrap interval over seeds and test images
(``sslsteal.stats``) and a verdict against a margin:

- "holds": the interval lies above the margin;
- "contradicted": it lies below;
- "inconclusive": it contains the margin.

Claims of the form "A is at least as good as B" are non-inferiority tests: effect
A - B with margin -``margin`` (A may be up to ``margin`` worse). Claims of the form
"A beats B" use margin 0.

Each comparison uses the seeds common to both sides (sorted), so results are paired by
(seed, test image); a comparison with no common seed is skipped.
"""

from __future__ import annotations

import os
from typing import Iterable

import numpy as np
import pandas as pd

from .io import atomic_path
from .registry import CONTRASTIVE_LOSSES, HEAD_APPROACHES
from .stats import Interval, bootstrap, correct_matrix, verdict

CLAIMS = {
    "close_copy": "A stolen copy comes close to the victim with a fraction of its training set as queries.",
    "more_queries": "More queries give a better copy.",
    "in_distribution_queries": "In-distribution queries beat out-of-distribution and noise queries.",
    "contrastive_losses": "Contrastive losses (InfoNCE, SoftNN) beat MSE and Wasserstein.",
    "direct_vs_head": "Direct extraction matches or beats the head-based approaches.",
    "api_beats_own_ssl": "Stealing through the API beats the attacker's own SSL on its query images.",
    "poisoning_hurts_attacker_more": (
        "Prediction poisoning at this noise level costs the attacker more accuracy than the legitimate user."
    ),
    "detection_hurts_head_recreation_more": (
        "Duplicate detection costs head recreation more accuracy than direct extraction."
    ),
    "b4b_hurts_attacker_more": (
        "B4B's coverage-scaled noise costs the attacker more accuracy than the legitimate user (Dubinski et al. 2023)."
    ),
    "sybils_do_not_evade_b4b": (
        "Splitting the queries over several accounts (sybils) does not get around B4B: the copy is not "
        "better than with one account (Dubinski et al. 2023)."
    ),
    "dataset_inference_flags_stolen": (
        "Dataset inference flags a stolen copy: under the victim's density model its representations of the "
        "victim's training images score higher than of unseen images (Dziedzic et al. 2022)."
    ),
    "dataset_inference_spares_independent": (
        "Dataset inference tells a stolen copy from an independent encoder: the copy's train-unseen gap exceeds "
        "that of a victim recipe trained from another seed on the same data (Dziedzic et al. 2022)."
    ),
}
# Claims whose effect is a log-likelihood gap (nats), not an accuracy difference.
NATS_CLAIMS = ("dataset_inference_flags_stolen", "dataset_inference_spares_independent")
TABLE_COLUMNS = [
    "claim", "statement", "victim", "comparison", "effect",
    "ci_low", "ci_high", "margin", "n_seeds", "verdict", "unit",
]
IN_DISTRIBUTION = "in_distribution"
# Columns a probe record may lack (baselines have no approach, raw pixels no victim, ...).
OPTIONAL_COLUMNS = ("victim", "approach", "loss", "query_set", "budget")
STOLEN_KEY = ["victim", "approach", "loss", "query_set", "budget"]


# --- selecting cells ---------------------------------------------------------------------


def _undefended(probes: pd.DataFrame) -> pd.DataFrame:
    """The claims are about attacks on an undefended API; records probed through a
    defense (non-empty ``defense``) would otherwise collide with the undefended cells."""
    if "defense" not in probes:
        return probes
    return probes[probes["defense"].isna() | (probes["defense"] == "")]


def _defended(probes: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Records probed through a defense, by defense name."""
    if "defense" not in probes:
        return {}
    defended = probes[probes["defense"].notna() & (probes["defense"] != "")]
    return {name: rows for name, rows in defended.groupby("defense")}


def _with_optional_columns(probes: pd.DataFrame) -> pd.DataFrame:
    probes = probes.copy()
    for column in OPTIONAL_COLUMNS:
        if column not in probes:
            probes[column] = np.nan
    return probes


def _stolen_cells(probes: pd.DataFrame) -> dict[tuple, pd.DataFrame]:
    """Stolen probe records grouped by (victim, approach, loss, query_set, budget)."""
    stolen = probes[probes["encoder"] == "stolen"]
    return {key: rows for key, rows in stolen.groupby(STOLEN_KEY, dropna=False)}


def _victim_rows(probes: pd.DataFrame, victim: str) -> pd.DataFrame:
    return probes[(probes["encoder"] == "victim") & (probes["victim"] == victim)]


def _own_ssl_rows(probes: pd.DataFrame, victim: str, query_set: str, budget) -> pd.DataFrame:
    """The attacker's own SSL encoder on the same query images and budget. It does not
    depend on the victim, so records without a victim apply to every victim; records
    naming this victim take precedence."""
    own = probes[
        (probes["encoder"] == "own_ssl") & (probes["query_set"] == query_set) & (probes["budget"] == budget)
    ]
    for_victim = own[own["victim"] == victim]
    return for_victim if len(for_victim) else own[own["victim"].isna()]


def _budget_text(budget) -> str:
    return str(int(budget)) if pd.notna(budget) else "?"


def _cell_text(approach, loss, query_set, budget) -> str:
    return f"{approach}/{loss}/{query_set}/{_budget_text(budget)}"


# --- one comparison ----------------------------------------------------------------------


def _common_seeds(cells: Iterable[pd.DataFrame]) -> list[int]:
    """Seeds present in every cell, sorted (the pairing across cells)."""
    seed_sets = [set(int(seed) for seed in rows["seed"]) for rows in cells]
    return sorted(set.intersection(*seed_sets)) if seed_sets else []


def _compare_groups(
    positive: list[pd.DataFrame], negative: list[pd.DataFrame], n_boot: int
) -> Interval | None:
    """Paired interval of mean accuracy over ``positive`` cells minus mean over ``negative``
    cells, on the seeds common to all; None when they share no seed."""
    seeds = _common_seeds(positive + negative)
    if not seeds:
        return None
    arrays = {f"p{k}": correct_matrix(rows, seeds) for k, rows in enumerate(positive)}
    arrays.update({f"n{k}": correct_matrix(rows, seeds) for k, rows in enumerate(negative)})

    def mean_difference(acc: dict[str, np.ndarray]) -> np.ndarray:
        plus = np.mean([acc[f"p{k}"] for k in range(len(positive))], axis=0)
        minus = np.mean([acc[f"n{k}"] for k in range(len(negative))], axis=0)
        return plus - minus

    return bootstrap(arrays, mean_difference, n_boot=n_boot)


def _row(claim: str, victim, comparison: str, interval: Interval, margin: float) -> dict:
    return {
        "claim": claim,
        "statement": CLAIMS[claim],
        "victim": victim,
        "comparison": comparison,
        "effect": interval.estimate,
        "ci_low": interval.low,
        "ci_high": interval.high,
        "margin": margin,
        "n_seeds": interval.n_seeds,
        "verdict": verdict(interval, margin),
        "unit": "nats" if claim in NATS_CLAIMS else "accuracy",
    }


def _comparison_row(claim, victim, comparison, positive, negative, margin, n_boot) -> list[dict]:
    """A one-element list with the comparison's row, or empty if the sides share no seed."""
    interval = _compare_groups(positive, negative, n_boot)
    return [] if interval is None else [_row(claim, victim, comparison, interval, margin)]


# --- the claims --------------------------------------------------------------------------


def _close_copy(probes, cells, kinds, train_sizes, margin, n_boot) -> list[dict]:
    """Stolen direct cells on in-distribution query sets, at each query set's largest
    budget, against the victim: non-inferiority with margin -margin."""
    rows = []
    direct = {key: cell for key, cell in cells.items() if key[1] == "direct" and kinds.get(key[3]) == IN_DISTRIBUTION}
    largest = {}
    for victim, _, _, query_set, budget in direct:
        largest[victim, query_set] = max(budget, largest.get((victim, query_set), budget))
    for (victim, approach, loss, query_set, budget), cell in direct.items():
        if budget != largest[victim, query_set]:
            continue
        share = f" ({budget / train_sizes[victim]:.0%} of victim training set)" if victim in train_sizes else ""
        text = f"{_cell_text(approach, loss, query_set, budget)}{share} − victim"
        rows += _comparison_row("close_copy", victim, text, [cell], [_victim_rows(probes, victim)], -margin, n_boot)
    return rows


def _more_queries(cells, n_boot) -> list[dict]:
    """Largest minus smallest budget of each (victim, approach, loss, query_set)."""
    rows = []
    by_setting: dict[tuple, dict] = {}
    for (victim, approach, loss, query_set, budget), cell in cells.items():
        by_setting.setdefault((victim, approach, loss, query_set), {})[budget] = cell
    for (victim, approach, loss, query_set), by_budget in by_setting.items():
        if len(by_budget) < 2:
            continue
        low, high = min(by_budget), max(by_budget)
        text = f"{approach}/{loss}/{query_set}: {_budget_text(high)} − {_budget_text(low)} queries"
        rows += _comparison_row("more_queries", victim, text, [by_budget[high]], [by_budget[low]], 0.0, n_boot)
    return rows


def _in_distribution_queries(cells, kinds, n_boot) -> list[dict]:
    """Each in-distribution query set against each other-kind query set at the same
    (victim, approach, loss, budget); query sets of unknown kind are left out."""
    rows = []
    by_setting: dict[tuple, dict] = {}
    for (victim, approach, loss, query_set, budget), cell in cells.items():
        by_setting.setdefault((victim, approach, loss, budget), {})[query_set] = cell
    for (victim, approach, loss, budget), by_query in by_setting.items():
        inside = [q for q in by_query if kinds.get(q) == IN_DISTRIBUTION]
        outside = [q for q in by_query if kinds.get(q) not in (None, IN_DISTRIBUTION)]
        for q_in in inside:
            for q_out in outside:
                text = f"{approach}/{loss}/{_budget_text(budget)}: {q_in} − {q_out} ({kinds[q_out]})"
                rows += _comparison_row(
                    "in_distribution_queries", victim, text, [by_query[q_in]], [by_query[q_out]], 0.0, n_boot
                )
    return rows


def _contrastive_losses(cells, n_boot) -> list[dict]:
    """Mean of the contrastive-loss cells minus mean of the others, per
    (victim, approach, query_set, budget) having both kinds."""
    rows = []
    by_setting: dict[tuple, dict] = {}
    for (victim, approach, loss, query_set, budget), cell in cells.items():
        by_setting.setdefault((victim, approach, query_set, budget), {})[loss] = cell
    for (victim, approach, query_set, budget), by_loss in by_setting.items():
        contrastive = sorted(loss for loss in by_loss if loss in CONTRASTIVE_LOSSES)
        others = sorted(loss for loss in by_loss if loss not in CONTRASTIVE_LOSSES)
        if not contrastive or not others:
            continue
        text = (
            f"{approach}/{query_set}/{_budget_text(budget)}: "
            f"mean({', '.join(contrastive)}) − mean({', '.join(others)})"
        )
        positive = [by_loss[loss] for loss in contrastive]
        negative = [by_loss[loss] for loss in others]
        rows += _comparison_row("contrastive_losses", victim, text, positive, negative, 0.0, n_boot)
    return rows


def _direct_vs_head(cells, margin, n_boot) -> list[dict]:
    """Direct minus each head-based approach at the same (victim, loss, query_set, budget):
    non-inferiority with margin -margin."""
    rows = []
    by_setting: dict[tuple, dict] = {}
    for (victim, approach, loss, query_set, budget), cell in cells.items():
        by_setting.setdefault((victim, loss, query_set, budget), {})[approach] = cell
    for (victim, loss, query_set, budget), by_approach in by_setting.items():
        if "direct" not in by_approach:
            continue
        for head in (m for m in HEAD_APPROACHES if m in by_approach):
            text = f"{loss}/{query_set}/{_budget_text(budget)}: direct − {head}"
            rows += _comparison_row(
                "direct_vs_head", victim, text, [by_approach["direct"]], [by_approach[head]], -margin, n_boot
            )
    return rows


def _api_beats_own_ssl(probes, cells, n_boot) -> list[dict]:
    """Each stolen direct cell minus the attacker's own SSL on the same query set and budget."""
    rows = []
    for (victim, approach, loss, query_set, budget), cell in cells.items():
        if approach != "direct":
            continue
        own = _own_ssl_rows(probes, victim, query_set, budget)
        if len(own):
            text = f"{_cell_text(approach, loss, query_set, budget)} − own_ssl/{query_set}/{_budget_text(budget)}"
            rows += _comparison_row("api_beats_own_ssl", victim, text, [cell], [own], 0.0, n_boot)
    return rows


def _drop_difference(claim, victim, text, first: tuple, second: tuple, n_boot) -> list[dict]:
    """Paired interval of drop(first) - drop(second), where each side is (undefended
    rows, defended rows) and drop = undefended accuracy - defended accuracy."""
    seeds = _common_seeds([*first, *second])
    if not seeds or any(len(rows) == 0 for rows in (*first, *second)):
        return []
    names = ("a_clear", "a_defended", "b_clear", "b_defended")
    arrays = {name: correct_matrix(rows, seeds) for name, rows in zip(names, (*first, *second))}

    def statistic(acc: dict[str, np.ndarray]) -> np.ndarray:
        return (acc["a_clear"] - acc["a_defended"]) - (acc["b_clear"] - acc["b_defended"])

    return [_row(claim, victim, text, bootstrap(arrays, statistic, n_boot=n_boot), 0.0)]


def _defense_claims(probes, margin, n_boot) -> list[dict]:
    """Per poisoning level or B4B setting and attack: the attacker's accuracy drop minus
    the legitimate user's. Per B4B setting with several sybils and attack: the copy's
    accuracy with one account minus with the sybils (non-inferiority: the sybils may
    gain at most ``margin``). Per detection setting: head recreation's drop minus direct
    extraction's, at the same query set and budget."""
    from .defense_spec import defense_name, parse_defense

    rows = []
    clear = _undefended(probes)
    clear_cells = _stolen_cells(clear)
    by_name = _defended(probes)
    for name, defended in by_name.items():
        kind = parse_defense(name)["kind"]
        defended_cells = _stolen_cells(defended)
        for victim in sorted(set(defended["victim"].dropna())):
            cells = {key[1:]: (clear_cells[key], rows_) for key, rows_ in defended_cells.items()
                     if key[0] == victim and key in clear_cells}
            if kind in ("poisoning", "b4b"):
                # A legitimate user is one account: under B4B it meets b4b_sybils1's answers.
                user_rows = defended if kind == "poisoning" else by_name.get(defense_name("b4b", 1), defended.iloc[:0])
                user = (_victim_rows(clear, victim), _victim_rows(user_rows, victim))
                claim = "poisoning_hurts_attacker_more" if kind == "poisoning" else "b4b_hurts_attacker_more"
                for (approach, loss, query_set, budget), attacker in sorted(cells.items()):
                    text = f"{name}: drop of {_cell_text(approach, loss, query_set, budget)} − drop of the legitimate user"
                    rows += _drop_difference(claim, victim, text, attacker, user, n_boot)
                if kind == "b4b" and parse_defense(name)["sybils"] > 1:
                    one = _stolen_cells(by_name.get(defense_name("b4b", 1), defended.iloc[:0]))
                    for key, sybil_rows in sorted(defended_cells.items()):
                        if key[0] == victim and key in one:
                            text = f"{defense_name('b4b', 1)} − {name}: {_cell_text(*key[1:])}"
                            rows += _comparison_row("sybils_do_not_evade_b4b", victim, text, [one[key]], [sybil_rows], -margin, n_boot)
            else:
                for (approach, loss, query_set, budget), head in sorted(cells.items()):
                    if approach != "head_recreation":
                        continue
                    for (d_approach, d_loss, d_query, d_budget), direct in sorted(cells.items()):
                        if d_approach == "direct" and (d_query, d_budget) == (query_set, budget):
                            text = (
                                f"{name}: drop of {_cell_text(approach, loss, query_set, budget)} − "
                                f"drop of {_cell_text(d_approach, d_loss, d_query, d_budget)}"
                            )
                            rows += _drop_difference("detection_hurts_head_recreation_more", victim, text, head, direct, n_boot)
    return rows


def _inference_cell(record: dict) -> str:
    cell = _cell_text(record.get("approach"), record.get("loss"), record.get("query_set"), record.get("budget"))
    return f"{record['defense']}: {cell}" if record.get("defense") else cell


def _gap(record: dict) -> Interval:
    """A dataset-inference record's train - unseen gap with its 95% Welch interval."""
    return Interval(record["difference"], record["difference_low"], record["difference_high"], 1, record["n_train"])


def _dataset_inference_claims(records: list[dict]) -> list[dict]:
    """Per stolen copy: its gap (flags_stolen, against 0); per stolen copy and independent
    twin of its victim: the copy's gap minus the twin's (spares_independent, against 0),
    its interval from the two Welch intervals as if independent (the two gaps are
    measured on the same images, so this is wider than a paired interval)."""
    rows = []
    testable = [r for r in records if r.get("testable", True) and r.get("difference") is not None]
    for record in testable:
        if record["suspect_kind"] not in ("stolen", "defended_stolen"):
            continue
        victim, copy = record["victim"], _gap(record)
        rows.append(_row("dataset_inference_flags_stolen", victim, f"{_inference_cell(record)}: train − unseen", copy, 0.0))
        for twin in (r for r in testable if r["suspect_kind"] == "independent" and r["victim"] == victim):
            other = _gap(twin)
            se = np.hypot((copy.high - copy.low) / (2 * 1.96), (other.high - other.low) / (2 * 1.96))
            effect = copy.estimate - other.estimate
            interval = Interval(effect, effect - 1.96 * se, effect + 1.96 * se, 1, copy.n_images)
            text = f"{_inference_cell(record)} − independent {twin['suspect']} (train − unseen gaps)"
            rows.append(_row("dataset_inference_spares_independent", victim, text, interval, 0.0))
    return rows


def claims_table(
    probes: pd.DataFrame,
    query_set_kinds: dict[str, str],
    victim_train_sizes: dict[str, int],
    margin: float = 0.02,
    n_boot: int = 2000,
    inference_records: list[dict] = (),
) -> pd.DataFrame:
    """One row per comparison testing one of ``CLAIMS`` on one downstream task's probes.

    ``probes``: one row per probe record (``encoder``, ``victim``, ``approach``, ``loss``,
    ``query_set``, ``budget``, ``seed``, ``n_test``, ``correct``); all of one downstream task.
    Records with a ``defense`` are left out of the paper's attack claims and make the
    defense claims (each against the same cell undefended); encoders other than stolen,
    victim and own_ssl are ignored.
    ``query_set_kinds``: query set -> "in_distribution" | "out_of_distribution" | "noise".
    ``victim_train_sizes``: victim -> training-set size (for the query fraction in text).
    ``margin``: non-inferiority margin (accuracy as a fraction) for close_copy and
    direct_vs_head. Effects and intervals are accuracy differences as fractions, but for
    the dataset-inference claims (``inference_records``: dataset-inference records, whose
    effects are log-likelihood gaps in nats; column ``unit``).
    """
    all_probes = probes
    probes = _with_optional_columns(_undefended(probes))
    cells = _stolen_cells(probes)
    rows = (
        _close_copy(probes, cells, query_set_kinds, victim_train_sizes, margin, n_boot)
        + _more_queries(cells, n_boot)
        + _in_distribution_queries(cells, query_set_kinds, n_boot)
        + _contrastive_losses(cells, n_boot)
        + _direct_vs_head(cells, margin, n_boot)
        + _api_beats_own_ssl(probes, cells, n_boot)
        + _defense_claims(_with_optional_columns(all_probes), margin, n_boot)
        + _dataset_inference_claims(list(inference_records))
    )
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)


# --- summary and output ------------------------------------------------------------------


def _overall(verdicts: pd.Series) -> str:
    """All hold -> holds; all contradicted -> contradicted; both present -> mixed;
    otherwise inconclusive; no comparisons -> not tested."""
    counts = verdicts.value_counts()
    n_holds, n_contradicted = counts.get("holds", 0), counts.get("contradicted", 0)
    if len(verdicts) == 0:
        return "not tested"
    if n_holds == len(verdicts):
        return "holds"
    if n_contradicted == len(verdicts):
        return "contradicted"
    if n_holds and n_contradicted:
        return "mixed"
    return "inconclusive"


def summarise_claims(table: pd.DataFrame) -> pd.DataFrame:
    """One row per claim (all of ``CLAIMS``, in order): comparison and verdict counts, the
    overall verdict, and the paper's statement. Claims without comparisons are "not tested"."""
    rows = []
    for claim, statement in CLAIMS.items():
        verdicts = table.loc[table["claim"] == claim, "verdict"]
        rows.append({
            "claim": claim,
            "n_comparisons": len(verdicts),
            "n_holds": int((verdicts == "holds").sum()),
            "n_contradicted": int((verdicts == "contradicted").sum()),
            "n_inconclusive": int((verdicts == "inconclusive").sum()),
            "overall": _overall(verdicts),
            "statement": statement,
        })
    return pd.DataFrame(rows)


def _points(value: float) -> str:
    return "n/a" if pd.isna(value) else f"{100 * value:.1f}"


def _markdown_table(frame: pd.DataFrame) -> list[str]:
    header = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(str(value) for value in row) + " |" for row in frame.itertuples(index=False)]
    return [header, rule, *body]


def _readable_table(table: pd.DataFrame) -> pd.DataFrame:
    """The comparison table with effect and interval as "effect [low, high]" in points."""
    readable = table[["claim", "victim", "comparison"]].copy()
    def shown(value: float, unit: str) -> str:
        return _points(value) if unit != "nats" else ("n/a" if pd.isna(value) else f"{value:.3f} nats")

    readable["effect [95% CI] (points)"] = [
        f"{shown(row.effect, row.unit)} [{shown(row.ci_low, row.unit)}, {shown(row.ci_high, row.unit)}]"
        for row in table.itertuples()
    ]
    readable["margin (points)"] = [shown(value, unit) for value, unit in zip(table["margin"], table["unit"])]
    readable["seeds"] = table["n_seeds"].to_numpy()
    readable["verdict"] = table["verdict"].to_numpy()
    return readable


def claims_markdown(table: pd.DataFrame, summary: pd.DataFrame) -> str:
    lines = [
        "# The paper's claims, tested",
        "",
        "Each row compares two probe results of one downstream task. Effects are accuracy "
        "differences in points (percentage points), with paired 95% percentile bootstrap "
        "intervals that resample seeds and test images together (both sides see the same "
        "resampled seeds and images). A comparison *holds* when its interval lies above the "
        "margin, is *contradicted* when it lies below, and is *inconclusive* otherwise. "
        "Claims that A is at least as good as B use a negative margin (A may be up to that "
        "much worse); claims that A beats B use margin 0. Dataset-inference rows compare "
        "log-likelihood gaps (nats) with their Welch intervals instead.",
        "",
        "## Summary",
        "",
        *_markdown_table(summary),
        "",
        "## Comparisons",
        "",
        *_markdown_table(_readable_table(table)),
        "",
    ]
    return "\n".join(lines)


def write_claims(
    table: pd.DataFrame, summary: pd.DataFrame, csv_path: str | os.PathLike, markdown_path: str | os.PathLike
) -> None:
    """Write the table as CSV (4 decimals) and table plus summary as Markdown, atomically."""
    with atomic_path(csv_path) as tmp:
        table.to_csv(tmp, index=False, float_format="%.4f")
    with atomic_path(markdown_path) as tmp:
        tmp.write_text(claims_markdown(table, summary))
