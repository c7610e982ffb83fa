"""The paper's qualitative claims, each tested by paired comparisons of probe results.

``claims_table`` turns the probe records of one downstream task into one row per
comparison (e.g. one stolen cell against its victim), with the effect in accuracy
(as a fraction), its paired 95% interval over seeds and test images
(``sslsteal.stats``: the training randomness between seeds plus the sampling of the test
images) and a verdict against a margin:

- "holds": the interval lies strictly above the margin;
- "contradicted": it lies strictly below;
- "inconclusive": it contains or touches the margin;
- "not tested (k seeds)": the comparison rests on k < 3 seeds, too few to estimate the
  run-to-run spread of training (effect and interval are still shown; with one seed the
  interval covers the test images only); "not tested (no floor)", "not tested (premise
  not met)", "not tested (no image blocks)": see the row's ``note``.

Claims of the form "A is at least as good as B" are non-inferiority tests: effect
A - B with margin -m, m = ``margin_fraction`` x (victim - its best floor), the floor the
better of random init and raw pixels (the attacker-independent floors): a copy "comes
close" when it is within that share of the victim's gain over the floor. Claims of the
form "A beats B" use margin 0.

Each comparison uses the seeds common to both sides (sorted), so results are paired by
(seed, test image); a comparison with no common seed is skipped. The dataset-inference
claims are their own kind: each is about one encoder's log-likelihood gap with its Welch
interval (one "seed"), not about training randomness, so the 3-seed rule does not apply.
"""

from __future__ import annotations

import os
import re
from typing import Iterable

import numpy as np
import pandas as pd

from .io import atomic_path
from .registry import CONTRASTIVE_LOSSES, HEAD_APPROACHES
from .stats import (
    Interval,
    contrast_interval,
    correct_matrix,
    group_difference_interval,
    jackknife_variance,
    seed_image_interval,
    seeds_to_resolve,
    verdict,
)

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
    "fidelity_tells_copy_from_independent": (
        "A copy's fidelity to the victim tells it from an independent encoder (the victim's recipe from another seed)."
    ),
}
# Claims whose effect is a log-likelihood gap (nats), not an accuracy difference: one
# encoder's gap with its Welch interval, outside the seed rule.
NATS_CLAIMS = ("dataset_inference_flags_stolen", "dataset_inference_spares_independent")
# Claims whose effect is a fidelity (CKA or centred cosine) difference.
SIMILARITY_CLAIMS = ("fidelity_tells_copy_from_independent",)
# Non-inferiority claims: margin -margin_fraction x (victim - its best floor).
NON_INFERIORITY_CLAIMS = ("close_copy", "direct_vs_head", "sybils_do_not_evade_b4b")
# A verdict needs at least this many seeds (training runs) on each side.
MIN_SEEDS = 3
TESTED = ("holds", "contradicted", "inconclusive")
TABLE_COLUMNS = [
    "claim", "statement", "victim", "comparison", "effect", "ci_low", "ci_high", "margin", "margin_basis",
    "n_seeds", "df", "verdict", "seeds_to_resolve", "note", "unit",
]
IN_DISTRIBUTION = "in_distribution"
# Columns a probe record may lack (baselines have no approach, raw pixels no victim, ...).
OPTIONAL_COLUMNS = ("victim", "approach", "loss", "query_set", "budget")
STOLEN_KEY = ["victim", "approach", "loss", "query_set", "budget"]
# The attacker-independent floors a victim's gain (and so the non-inferiority margin) is measured over.
FLOORS = ("random_init", "raw_pixels")


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


def _floor_rows(probes: pd.DataFrame, victim: str, encoder: str) -> pd.DataFrame:
    """A floor's records for ``victim``: those naming it, else those naming no victim
    (raw pixels do not depend on the victim)."""
    rows = probes[probes["encoder"] == encoder]
    for_victim = rows[rows["victim"] == victim]
    return for_victim if len(for_victim) else rows[rows["victim"].isna()]


def _kind(kinds: dict, victim, query_set) -> str | None:
    """The kind of ``query_set`` for ``victim`` (in_distribution only on the victim's own dataset)."""
    return kinds.get(victim, {}).get(query_set)


def _budget_text(budget) -> str:
    return str(int(budget)) if pd.notna(budget) else "?"


def _cell_text(approach, loss, query_set, budget) -> str:
    return f"{approach}/{loss}/{query_set}/{_budget_text(budget)}"


def _points(value: float) -> str:
    return "n/a" if pd.isna(value) else f"{100 * value:.1f}"


# --- the non-inferiority margin ------------------------------------------------------------


def _common_seeds(cells: Iterable[pd.DataFrame]) -> list[int]:
    """Seeds present in every cell, sorted (the pairing across cells)."""
    seed_sets = [set(int(seed) for seed in rows["seed"]) for rows in cells]
    return sorted(set.intersection(*seed_sets)) if seed_sets else []


def victim_margins(probes: pd.DataFrame, margin_fraction: float) -> dict[str, tuple[float | None, str]]:
    """victim -> (margin, basis): the non-inferiority margin margin_fraction x (victim -
    best floor) in accuracy (a fraction), the best floor being the better by mean
    accuracy (on the seeds it shares with the victim) of random init and raw pixels; and
    the text saying so. The margin is None where the victim has no floor record, or does
    not beat its best floor."""
    margins = {}
    for victim in sorted(set(probes.loc[probes["encoder"] == "victim", "victim"].dropna())):
        mine = _victim_rows(probes, victim)
        best = None
        for name in FLOORS:
            floor = _floor_rows(probes, victim, name)
            seeds = _common_seeds([mine, floor]) if len(floor) else []
            if not seeds:
                continue
            gain = correct_matrix(mine, seeds).mean() - correct_matrix(floor, seeds).mean()
            if best is None or gain < best[1]:  # the best floor leaves the victim the smallest gain
                best = (name, gain)
        if best is None:
            margins[victim] = (None, "no floor: no random_init or raw_pixels probe shares a seed with the victim")
        elif best[1] <= 0:
            margins[victim] = (None, f"no floor: the victim is {_points(-best[1])} points below {best[0]}")
        else:
            margin = margin_fraction * best[1]
            margins[victim] = (
                margin,
                f"{margin_fraction:g} × (victim − {best[0]}) = {margin_fraction:g} × {_points(best[1])} "
                f"= {100 * margin:.2f} points",
            )
    return margins


# --- one comparison ----------------------------------------------------------------------


def _compare_groups(positive: list[pd.DataFrame], negative: list[pd.DataFrame]) -> Interval | None:
    """Paired interval of mean accuracy over ``positive`` cells minus mean over ``negative``
    cells, on the seeds common to all; None when they share no seed."""
    seeds = _common_seeds(positive + negative)
    if not seeds:
        return None
    return group_difference_interval(
        [correct_matrix(rows, seeds) for rows in positive], [correct_matrix(rows, seeds) for rows in negative]
    )


def _unit(claim: str) -> str:
    if claim in NATS_CLAIMS:
        return "nats"
    return "similarity" if claim in SIMILARITY_CLAIMS else "accuracy"


def _seeds_to_resolve(interval: Interval, margin: float, shown_verdict: str):
    """How many seeds would resolve an inconclusive (or too-few-seeds) comparison of
    this effect: an int, ">100", or NaN (decided, or no seed spread measured)."""
    undecided = shown_verdict == "inconclusive" or re.fullmatch(r"not tested \(\d+ seeds?\)", shown_verdict)
    if not undecided or not np.isfinite(interval.sd_seeds) or not np.isfinite(margin):
        return np.nan
    needed = seeds_to_resolve(interval, interval.estimate - margin, min_seeds=MIN_SEEDS)
    return ">100" if needed is None else str(needed)


def _row(
    claim: str, victim, comparison: str, interval: Interval, margin: float,
    *, note: str = "", margin_basis: str = "", override: str | None = None,
) -> dict:
    """One comparison's row. Its verdict: ``override`` if given; else the interval against
    the margin, "not tested (k seeds)" below ``MIN_SEEDS`` seeds (but for the
    dataset-inference claims, whose intervals are not over seeds)."""
    if override is not None:
        shown = override
    else:
        shown = verdict(interval, margin, None if claim in NATS_CLAIMS else MIN_SEEDS)
    return {
        "claim": claim,
        "statement": CLAIMS[claim],
        "victim": victim,
        "comparison": comparison,
        "effect": interval.estimate,
        "ci_low": interval.low,
        "ci_high": interval.high,
        "margin": margin,
        "margin_basis": margin_basis,
        "n_seeds": interval.n_seeds,
        "df": interval.df,
        "verdict": shown,
        "seeds_to_resolve": np.nan if override is not None else _seeds_to_resolve(interval, margin, shown),
        "note": note,
        "unit": _unit(claim),
    }


def _comparison_row(claim, victim, comparison, positive, negative, margin=0.0, **fields) -> list[dict]:
    """A one-element list with the comparison's row, or empty if the sides share no seed."""
    interval = _compare_groups(positive, negative)
    return [] if interval is None else [_row(claim, victim, comparison, interval, margin, **fields)]


def _non_inferiority_row(claim, victim, comparison, positive, negative, margins) -> list[dict]:
    """A non-inferiority comparison against -margin, the victim's scaled margin; "not
    tested (no floor)" where the victim has none."""
    margin, basis = margins.get(victim, (None, "no floor: no probe of this victim"))
    if margin is None:
        return _comparison_row(claim, victim, comparison, positive, negative, np.nan, margin_basis=basis,
                               note=basis, override="not tested (no floor)")
    return _comparison_row(claim, victim, comparison, positive, negative, -margin, margin_basis=basis)


# --- the claims --------------------------------------------------------------------------


def _close_copy(probes, cells, kinds, train_sizes, margins) -> list[dict]:
    """Stolen direct cells on query sets in-distribution for their victim, at each query
    set's largest budget, against the victim: non-inferiority with the victim's margin."""
    rows = []
    direct = {
        key: cell for key, cell in cells.items()
        if key[1] == "direct" and _kind(kinds, key[0], key[3]) == IN_DISTRIBUTION
    }
    largest = {}
    for victim, _, _, query_set, budget in direct:
        largest[victim, query_set] = max(budget, largest.get((victim, query_set), budget))
    for (victim, approach, loss, query_set, budget), cell in direct.items():
        if budget != largest[victim, query_set]:
            continue
        share = f" ({budget / train_sizes[victim]:.0%} of victim training set)" if victim in train_sizes else ""
        text = f"{_cell_text(approach, loss, query_set, budget)}{share} − victim"
        rows += _non_inferiority_row("close_copy", victim, text, [cell], [_victim_rows(probes, victim)], margins)
    return rows


def _more_queries(cells) -> list[dict]:
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
        rows += _comparison_row("more_queries", victim, text, [by_budget[high]], [by_budget[low]])
    return rows


def _in_distribution_queries(cells, kinds) -> list[dict]:
    """Each query set in-distribution for the victim against each other-kind query set at
    the same (victim, approach, loss, budget); query sets of unknown kind are left out."""
    rows = []
    by_setting: dict[tuple, dict] = {}
    for (victim, approach, loss, query_set, budget), cell in cells.items():
        by_setting.setdefault((victim, approach, loss, budget), {})[query_set] = cell
    for (victim, approach, loss, budget), by_query in by_setting.items():
        inside = [q for q in by_query if _kind(kinds, victim, q) == IN_DISTRIBUTION]
        outside = [q for q in by_query if _kind(kinds, victim, q) not in (None, IN_DISTRIBUTION)]
        for q_in in inside:
            for q_out in outside:
                text = f"{approach}/{loss}/{_budget_text(budget)}: {q_in} − {q_out} ({_kind(kinds, victim, q_out)})"
                rows += _comparison_row("in_distribution_queries", victim, text, [by_query[q_in]], [by_query[q_out]])
    return rows


def _contrastive_losses(cells) -> list[dict]:
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
        rows += _comparison_row("contrastive_losses", victim, text, positive, negative)
    return rows


def _direct_vs_head(cells, margins) -> list[dict]:
    """Direct minus each head-based approach at the same (victim, loss, query_set, budget):
    non-inferiority with the victim's margin."""
    rows = []
    by_setting: dict[tuple, dict] = {}
    for (victim, approach, loss, query_set, budget), cell in cells.items():
        by_setting.setdefault((victim, loss, query_set, budget), {})[approach] = cell
    for (victim, loss, query_set, budget), by_approach in by_setting.items():
        if "direct" not in by_approach:
            continue
        for head in (m for m in HEAD_APPROACHES if m in by_approach):
            text = f"{loss}/{query_set}/{_budget_text(budget)}: direct − {head}"
            rows += _non_inferiority_row(
                "direct_vs_head", victim, text, [by_approach["direct"]], [by_approach[head]], margins
            )
    return rows


def _api_beats_own_ssl(probes, cells) -> list[dict]:
    """Each stolen direct cell minus the attacker's own SSL on the same query set and budget."""
    rows = []
    for (victim, approach, loss, query_set, budget), cell in cells.items():
        if approach != "direct":
            continue
        own = _own_ssl_rows(probes, victim, query_set, budget)
        if len(own):
            text = f"{_cell_text(approach, loss, query_set, budget)} − own_ssl/{query_set}/{_budget_text(budget)}"
            rows += _comparison_row("api_beats_own_ssl", victim, text, [cell], [own])
    return rows


def _blocks(value) -> np.ndarray | None:
    """A record's jackknife block values as an array, or None when it has none."""
    if isinstance(value, (list, tuple, np.ndarray)) and len(value):
        return np.asarray(value, dtype=np.float64)
    return None


def _has_value(value) -> bool:
    return value is not None and not (isinstance(value, float) and np.isnan(value))


def _fidelity_claims(probes, cells) -> list[dict]:
    """Per undefended stolen cell and fidelity metric (CKA; centred cosine where both the
    copy and the twin have it): the copy's fidelity to the victim (mean over its seeds)
    minus the independent twin's, against 0.

    The interval's seed part is the spread of the copy's per-seed fidelity (the twin is
    one encoder: its fidelity does not depend on the probe seed); its image part is the
    delete-a-block jackknife variance of the block-paired difference (the copy's block
    values averaged over seeds minus the twin's, on the same blocks of test images)."""
    rows = []
    for (victim, approach, loss, query_set, budget), cell in cells.items():
        twins = probes[(probes["encoder"] == "independent") & (probes["victim"] == victim)].sort_values("seed")
        if twins.empty:
            continue
        cell = cell.sort_values("seed")
        for metric, label in (("cka", "CKA"), ("cosine", "centred cosine")):
            if metric not in cell or not all(_has_value(v) for v in cell[metric]):
                continue
            twin_rows = [row for _, row in twins.iterrows() if _has_value(row.get(metric))]
            if not twin_rows:
                continue
            blocked = [row for row in twin_rows if _blocks(row.get(f"{metric}_blocks")) is not None]
            twin = (blocked or twin_rows)[0]
            text = f"{label}: {_cell_text(approach, loss, query_set, budget)} − independent twin ({twin['victim']})"
            per_seed = cell[metric].to_numpy(dtype=np.float64) - float(twin[metric])
            copy_blocks = [_blocks(v) for v in cell.get(f"{metric}_blocks", [None] * len(cell))]
            twin_blocks = _blocks(twin.get(f"{metric}_blocks"))
            n_images = int(cell["n_test"].iloc[0]) if "n_test" in cell else 0
            sizes = {len(b) for b in copy_blocks if b is not None} | ({len(twin_blocks)} if twin_blocks is not None else set())
            if twin_blocks is None or any(b is None for b in copy_blocks) or len(sizes) != 1:
                nan = float("nan")
                interval = Interval(float(per_seed.mean()), nan, nan, len(per_seed), n_images)
                rows.append(_row("fidelity_tells_copy_from_independent", victim, text, interval, 0.0,
                                 override="not tested (no image blocks)",
                                 note="a record lacks jackknife block values (cka_blocks / cosine_blocks) on common blocks"))
                continue
            difference = np.mean(copy_blocks, axis=0) - twin_blocks
            groups = len(difference)
            interval = seed_image_interval(per_seed, float(jackknife_variance(difference)), groups - 1, n_images)
            rows.append(_row("fidelity_tells_copy_from_independent", victim, text, interval, 0.0))
    return rows


def _drop_difference(claim, victim, text, first: tuple, second: tuple, **fields) -> list[dict]:
    """Paired interval of drop(first) - drop(second), where each side is (undefended
    rows, defended rows) and drop = undefended accuracy - defended accuracy."""
    seeds = _common_seeds([*first, *second])
    if not seeds or any(len(rows) == 0 for rows in (*first, *second)):
        return []
    arrays = [correct_matrix(rows, seeds) for rows in (*first, *second)]
    interval = contrast_interval(arrays, [1.0, -1.0, -1.0, 1.0])
    return [_row(claim, victim, text, interval, 0.0, **fields)]


def _mean_coverage(rows: pd.DataFrame, seeds: list[int]) -> float | None:
    """Mean of the records' ``b4b_coverage`` at ``seeds``; None when not recorded."""
    if "b4b_coverage" not in rows:
        return None
    values = pd.to_numeric(rows.loc[rows["seed"].astype(int).isin(seeds), "b4b_coverage"], errors="coerce").dropna()
    return float(values.mean()) if len(values) else None


def _b4b_premise(attacker_defended: pd.DataFrame, user_defended: pd.DataFrame, seeds: list[int]) -> dict:
    """B4B prices coverage: its claim presumes the attacker's queries cover more SimHash
    buckets than the legitimate user's. Where they do not, the row is "not tested"."""
    attacker, user = _mean_coverage(attacker_defended, seeds), _mean_coverage(user_defended, seeds)
    if attacker is None or user is None:
        return {"note": "B4B coverage not recorded: premise not checked"}
    shares = f"user covers {100 * user:.1f}% of buckets, attacker {100 * attacker:.1f}%"
    if user >= attacker:
        return {"note": f"premise not met ({shares})", "override": "not tested (premise not met)"}
    return {"note": shares}


def _defense_claims(probes, margins) -> list[dict]:
    """Per poisoning level or B4B setting and attack: the attacker's accuracy drop minus
    the legitimate user's (for B4B only where the attacker covers more buckets than the
    user: the premise). Per B4B setting with several sybils and attack: the copy's
    accuracy with one account minus with the sybils (non-inferiority: the sybils may
    gain at most the victim's margin). Per detection setting: head recreation's drop
    minus direct extraction's, at the same query set and budget."""
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
                    fields = {}
                    if kind == "b4b":
                        fields = _b4b_premise(attacker[1], user[1], _common_seeds([*attacker, *user]))
                    rows += _drop_difference(claim, victim, text, attacker, user, **fields)
                if kind == "b4b" and parse_defense(name)["sybils"] > 1:
                    one = _stolen_cells(by_name.get(defense_name("b4b", 1), defended.iloc[:0]))
                    for key, sybil_rows in sorted(defended_cells.items()):
                        if key[0] == victim and key in one:
                            text = f"{defense_name('b4b', 1)} − {name}: {_cell_text(*key[1:])}"
                            rows += _non_inferiority_row(
                                "sybils_do_not_evade_b4b", victim, text, [one[key]], [sybil_rows], margins
                            )
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
                            rows += _drop_difference("detection_hurts_head_recreation_more", victim, text, head, direct)
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
    measured on the same images, so this is wider than a paired interval). Each is about
    one encoder, not about training randomness: no seed rule."""
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


def _check_kinds(query_set_kinds: dict) -> None:
    flat = [key for key, value in query_set_kinds.items() if not isinstance(value, dict)]
    if flat:
        raise TypeError(
            "query_set_kinds must map victim -> {query set: kind} (sslsteal.config.query_set_kinds); "
            f"got non-mapping values for {flat}"
        )


def claims_table(
    probes: pd.DataFrame,
    query_set_kinds: dict[str, dict[str, str]],
    victim_train_sizes: dict[str, int],
    margin_fraction: float = 0.25,
    inference_records: Iterable[dict] = (),
    seeds: Iterable[int] | None = None,
) -> pd.DataFrame:
    """One row per comparison testing one of ``CLAIMS`` on one downstream task's probes.

    ``probes``: one row per probe record (``encoder``, ``victim``, ``approach``, ``loss``,
    ``query_set``, ``budget``, ``seed``, ``n_test``, ``correct``; fidelity ``cka``,
    ``cosine`` and their ``*_blocks``; B4B's ``b4b_coverage``); all of one downstream task.
    Records with a ``defense`` are left out of the paper's attack claims and make the
    defense claims (each against the same cell undefended).
    ``query_set_kinds``: victim -> query set -> "in_distribution" | "out_of_distribution" |
    "noise" (a query set is in-distribution only for victims trained on its dataset).
    ``victim_train_sizes``: victim -> training-set size (for the query fraction in text).
    ``margin_fraction``: in (0, 1); the non-inferiority margin of a victim's claims is this
    share of its accuracy gain over its best floor (:func:`victim_margins`).
    ``inference_records``: dataset-inference records (effects are log-likelihood gaps in
    nats; column ``unit``).
    ``seeds``: keep only the records of these seeds (probes and, where they carry a seed,
    dataset-inference records): one results folder with seeds 0-5 gives two disjoint
    tables with ``seeds=[0, 1, 2]`` and ``seeds=[3, 4, 5]``.
    Effects and intervals are accuracy differences as fractions, fidelity differences for
    ``fidelity_tells_copy_from_independent`` (unit "similarity"), nats for dataset inference.
    """
    if not 0 < margin_fraction < 1:
        raise ValueError(f"margin_fraction must be in (0, 1), got {margin_fraction}")
    _check_kinds(query_set_kinds)
    inference_records = list(inference_records)
    if seeds is not None:
        keep = {int(seed) for seed in seeds}
        probes = probes[probes["seed"].astype(int).isin(keep)]
        inference_records = [r for r in inference_records if r.get("seed") is None or int(r["seed"]) in keep]
    all_probes = _with_optional_columns(probes)
    probes = _with_optional_columns(_undefended(probes))
    cells = _stolen_cells(probes)
    margins = victim_margins(probes, margin_fraction)
    rows = (
        _close_copy(probes, cells, query_set_kinds, victim_train_sizes, margins)
        + _more_queries(cells)
        + _in_distribution_queries(cells, query_set_kinds)
        + _contrastive_losses(cells)
        + _direct_vs_head(cells, margins)
        + _api_beats_own_ssl(probes, cells)
        + _fidelity_claims(probes, cells)
        + _defense_claims(all_probes, margins)
        + _dataset_inference_claims(inference_records)
    )
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)


# --- summary and output ------------------------------------------------------------------


def overall_reading(n_holds: int, n_contradicted: int, n_inconclusive: int) -> str:
    """A claim's overall reading from its tested comparisons: all hold -> "holds"; all
    contradicted -> "contradicted"; both present -> "mixed"; else at least two thirds one
    way (none the other) -> "mostly holds" / "mostly contradicted"; else "inconclusive";
    none tested -> "not tested"."""
    tested = n_holds + n_contradicted + n_inconclusive
    if tested == 0:
        return "not tested"
    if n_holds == tested:
        return "holds"
    if n_contradicted == tested:
        return "contradicted"
    if n_holds and n_contradicted:
        return "mixed"
    if 3 * n_holds >= 2 * tested:
        return "mostly holds"
    if 3 * n_contradicted >= 2 * tested:
        return "mostly contradicted"
    return "inconclusive"


def summarise_claims(table: pd.DataFrame) -> pd.DataFrame:
    """One row per claim (all of ``CLAIMS``, in order): its comparisons, their verdict
    counts (holds, contradicted, inconclusive, not tested), the overall reading
    (:func:`overall_reading`, over the tested comparisons only) and the paper's statement."""
    rows = []
    for claim, statement in CLAIMS.items():
        verdicts = table.loc[table["claim"] == claim, "verdict"]
        counts = {name: int((verdicts == name).sum()) for name in TESTED}
        rows.append({
            "claim": claim,
            "n_comparisons": len(verdicts),
            "n_holds": counts["holds"],
            "n_contradicted": counts["contradicted"],
            "n_inconclusive": counts["inconclusive"],
            "n_not_tested": int((~verdicts.isin(TESTED)).sum()),
            "overall": overall_reading(counts["holds"], counts["contradicted"], counts["inconclusive"]),
            "statement": statement,
        })
    return pd.DataFrame(rows)


# --- two runs compared -------------------------------------------------------------------

JOIN_KEYS = ["claim", "victim", "comparison"]


def compare_verdicts(table_a: pd.DataFrame, table_b: pd.DataFrame) -> pd.DataFrame:
    """The comparisons two claims tables share, joined on (claim, victim, comparison):
    one row each with ``verdict_a``, ``verdict_b``, ``effect_a``, ``effect_b`` and both
    intervals (``ci_low_a``, ...). A victim missing from both (NaN) joins as ""."""
    columns = [*JOIN_KEYS, "verdict", "effect", "ci_low", "ci_high"]

    def keyed(table: pd.DataFrame) -> pd.DataFrame:
        table = table.reindex(columns=columns).copy()
        table["victim"] = table["victim"].fillna("").astype(str)
        return table

    return keyed(table_a).merge(keyed(table_b), on=JOIN_KEYS, suffixes=("_a", "_b"), how="inner")


def flip_counts(joined: pd.DataFrame) -> dict:
    """From :func:`compare_verdicts`: ``n_compared`` (rows tested in both: holds,
    contradicted or inconclusive each time), ``n_kept`` (same verdict), ``n_flips``
    (holds <-> contradicted), ``n_other_changes`` (to or from inconclusive) and
    ``share_kept`` (n_kept / n_compared; NaN when nothing compared)."""
    both = joined[joined["verdict_a"].isin(TESTED) & joined["verdict_b"].isin(TESTED)]
    kept = int((both["verdict_a"] == both["verdict_b"]).sum())
    decided = {"holds", "contradicted"}
    flips = int(sum(
        a != b and a in decided and b in decided for a, b in zip(both["verdict_a"], both["verdict_b"])
    ))
    n = len(both)
    return {
        "n_compared": n,
        "n_kept": kept,
        "n_flips": flips,
        "n_other_changes": n - kept - flips,
        "share_kept": kept / n if n else float("nan"),
    }


# --- output --------------------------------------------------------------------------------


def _markdown_table(frame: pd.DataFrame) -> list[str]:
    header = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join("" if pd.isna(value) else str(value) for value in row) + " |"
            for row in frame.itertuples(index=False)]
    return [header, rule, *body]


def _shown(value: float, unit: str) -> str:
    if pd.isna(value):
        return "n/a"
    if unit == "nats":
        return f"{value:.3f} nats"
    if unit == "similarity":
        return f"{value:.3f}"
    return _points(value)


def _readable_table(table: pd.DataFrame) -> pd.DataFrame:
    """The comparison table with effect and interval as "effect [low, high]" (points for
    accuracy; a dagger where the interval is over test images only: one seed)."""
    readable = table[["claim", "victim", "comparison"]].copy()
    readable["effect [95% CI]"] = [
        f"{_shown(row.effect, row.unit)} [{_shown(row.ci_low, row.unit)}, {_shown(row.ci_high, row.unit)}]"
        + (" †" if row.n_seeds == 1 and row.unit != "nats" else "")
        for row in table.itertuples()
    ]
    readable["margin"] = [
        _shown(value, unit) if pd.notna(value) else "n/a" for value, unit in zip(table["margin"], table["unit"])
    ]
    readable["margin basis"] = table["margin_basis"].fillna("").to_numpy()
    readable["seeds"] = table["n_seeds"].to_numpy()
    readable["verdict"] = table["verdict"].to_numpy()
    readable["seeds to resolve"] = table["seeds_to_resolve"].to_numpy()
    readable["note"] = table["note"].fillna("").to_numpy()
    return readable


CAPTION = (
    "Each row compares two probe results of one downstream task. Effects are accuracy "
    "differences in points (percentage points) with paired 95% t-intervals over seeds and "
    "test images: the spread between seeds (each seed its own training run and probe label "
    "draw) plus the sampling of the test images, both sides paired by seed and by image. "
    "With one seed the interval covers the test images only (†) and leaves training "
    "randomness out. A comparison *holds* when its interval lies strictly above the margin, "
    "is *contradicted* when it lies strictly below, and is *inconclusive* otherwise; on "
    f"fewer than {MIN_SEEDS} seeds it is *not tested* (effect and interval shown). Claims "
    "that A is at least as good as B use a negative margin: a share of the victim's gain "
    "over its best floor (random init or raw pixels), stated in the margin basis; claims "
    "that A beats B use margin 0. *Seeds to resolve*: for an undecided comparison, the "
    "seeds at which an effect of this size would clear its margin given the measured "
    "spread. The summary's reading counts only tested comparisons. Fidelity rows compare "
    "CKA or centred cosine (seed spread plus a jackknife over blocks of test images); "
    "dataset-inference rows compare log-likelihood gaps (nats) of single encoders with "
    "their Welch intervals, outside the seed rule."
)


def claims_markdown(table: pd.DataFrame, summary: pd.DataFrame) -> str:
    lines = [
        "# The paper's claims, tested",
        "",
        CAPTION,
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
