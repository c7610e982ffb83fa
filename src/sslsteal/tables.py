"""Paper outputs: probe results -> tables (CSV, Markdown) and figures (seaborn)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # figures are files; no display on clusters or CI
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from .io import atomic_path, read_json  # noqa: E402

from .stats import (  # noqa: E402
    accuracy_interval,
    correct_matrix,
    difference_interval,
    gain_is_defined,
    gain_recovered_interval,
)

# The encoders a victim's table holds besides its stolen copies, in display order.
BASELINES = ("victim", "independent", "random_init", "raw_pixels", "own_ssl")
# One cell: every seed of one encoder on one downstream task.
CELL_KEYS = ["encoder", "victim", "defense", "approach", "loss", "query_set", "budget"]
# Recorded per seed and averaged over a cell's seeds.
MEAN_COLUMNS = [
    "cosine", "cka", "train_loss", "train_accuracy", "l2", "temperature", "steps",
    "queries", "api_calls", "queries_sent", "flagged", "duplicates",
    "detection_precision", "detection_recall", "detection_f1", "detection_threshold",
]


def collect(paths: list[str | Path]) -> pd.DataFrame:
    """One row per probe JSON."""
    rows = [read_json(p) for p in paths]
    if not rows:
        raise ValueError("no probe results to collect")
    return pd.DataFrame(rows)


def _keyed(probes: pd.DataFrame) -> pd.DataFrame:
    table = probes.copy()
    for key in CELL_KEYS:
        if key not in table:
            table[key] = None
    for key in CELL_KEYS:
        if key == "budget":
            table[key] = pd.to_numeric(table[key]).fillna(-1).astype(int)
        else:
            table[key] = table[key].fillna("").astype(str)
    return table


def summarise_cells(probes: pd.DataFrame) -> pd.DataFrame:
    """One row per cell (encoder, victim, defense, approach, loss, query set, budget) from
    the per-seed probe records: the mean accuracy over seeds and its 95% t-interval over
    seeds and the probe's test images (``stats``; over test images only when the cell
    has one seed: ``n_seeds``); the difference from the victim with a paired interval
    (same seeds, same test images); the share of the victim's gain over the best floor
    the cell recovers; and the means of fidelity, training loss and accounting columns.

    The floor of a cell is the best (highest mean accuracy at the cell's seeds) of
    random init, raw pixels and the attacker's own SSL on the same query set and budget,
    among those probed at every seed of the cell; ``gain_recovered`` (with Fieller's
    interval, on the cell's seeds) is "n/a" (NaN) unless the victim's paired 95% lower
    bound over that floor is at least ``stats.GAIN_MIN_GAP`` (3 points)."""
    table = _keyed(probes)
    cells = {key: rows for key, rows in table.groupby(CELL_KEYS, sort=False)}
    victims = {key[1]: rows for key, rows in cells.items() if key[0] == "victim" and key[2] == ""}
    raw = [rows for key, rows in cells.items() if key[0] == "raw_pixels" and key[2] == ""]
    summary = []
    for key, rows in cells.items():
        encoder, victim, defense, approach, loss, query_set, budget = key
        seeds = sorted(int(s) for s in rows["seed"])
        correct = correct_matrix(rows, seeds)
        interval = accuracy_interval(correct)
        row = dict(zip(CELL_KEYS, key))
        row.update(
            seeds=" ".join(map(str, seeds)),
            n_seeds=len(seeds),
            n_test=int(rows["n_test"].iloc[0]),
            accuracy=interval.estimate,
            ci_low=interval.low,
            ci_high=interval.high,
        )
        for column in MEAN_COLUMNS:
            if column in rows and pd.to_numeric(rows[column], errors="coerce").notna().any():
                row[column] = pd.to_numeric(rows[column], errors="coerce").mean()
        reference = victims.get(victim)
        if reference is not None and encoder != "victim" and set(seeds) <= set(reference["seed"].astype(int)):
            victim_correct = correct_matrix(reference, seeds)
            difference = difference_interval(correct, victim_correct)
            row.update(
                vs_victim=difference.estimate,
                vs_victim_low=difference.low,
                vs_victim_high=difference.high,
                ratio_to_victim=interval.estimate / victim_correct.mean(),
            )
            if encoder in ("stolen", "own_ssl", "independent"):
                row.update(_gain_over_floor(cells, raw, key, seeds, correct, victim_correct))
        summary.append(row)
    out = pd.DataFrame(summary)
    for column in ("budget",):
        out[column] = out[column].where(out[column] >= 0).astype("Int64")
    return out.replace({"": None})


def _gain_over_floor(
    cells: dict, raw: list, key: tuple, seeds: list[int], correct: np.ndarray, victim_correct: np.ndarray
) -> dict:
    """The floor of a cell (the best by mean accuracy of random init, raw pixels and the
    attacker's own SSL on the same query set and budget, among those probed at every one
    of the cell's ``seeds``) and the share of the victim's gain over it that the cell
    recovers, on those seeds (the accuracy column's): Fieller's interval of
    (cell - floor) / (victim - floor); reported only where the victim's paired lower
    95% bound over the floor is at least ``GAIN_MIN_GAP``, else NaN."""
    encoder, victim, _, _, _, query_set, budget = key
    candidates = [cells.get(("random_init", victim, "", "", "", "", -1)), *raw]
    if encoder != "own_ssl":
        candidates.append(cells.get(("own_ssl", victim, "", "own_ssl", "", query_set, budget)))
    best = None
    for floor in candidates:
        if floor is None or not set(seeds) <= set(int(s) for s in floor["seed"]):
            continue
        matrix = correct_matrix(floor, seeds)
        if best is None or matrix.mean() > best[1].mean():
            best = (floor["encoder"].iloc[0], matrix)
    if best is None:
        return {}
    name, floor = best
    gap = difference_interval(victim_correct, floor)
    out = {
        "floor": name, "floor_seeds": " ".join(map(str, seeds)),
        "victim_over_floor": gap.estimate, "victim_over_floor_low": gap.low, "victim_over_floor_high": gap.high,
    }
    if gain_is_defined(gap):
        gain = gain_recovered_interval(correct, victim_correct, floor)
        out.update(gain_recovered=gain.estimate, gain_low=gain.low, gain_high=gain.high)
    return out


def _order(table: pd.DataFrame) -> pd.DataFrame:
    rank = {kind: i for i, kind in enumerate(BASELINES)}
    keyed = table.assign(_rank=table["encoder"].map(lambda e: rank.get(e, len(rank))))
    keyed = keyed.sort_values(["_rank", "approach", "loss", "query_set", "budget"], na_position="first")
    return keyed.drop(columns="_rank").reset_index(drop=True)


# Every cell is one row: its accuracy with the 95% interval, the difference from the
# victim with its paired interval, the gain recovered over the best floor, its query
# accounting and optimisation, and its fidelity to the victim.
COLUMNS = [
    "encoder", "approach", "loss", "query_set", "budget", "seeds", "n_seeds", "queries", "api_calls", "steps",
    "accuracy", "ci_low", "ci_high", "vs_victim", "vs_victim_low", "vs_victim_high", "ratio_to_victim",
    "floor", "floor_seeds", "victim_over_floor", "victim_over_floor_low", "victim_over_floor_high",
    "gain_recovered", "gain_low", "gain_high", "cosine", "cka", "train_loss", "train_accuracy", "l2",
]


def stolen_accuracy_table(cells: pd.DataFrame) -> pd.DataFrame:
    """The victim, its baselines, then every stolen copy (summarised cells)."""
    table = cells[cells["encoder"].isin([*BASELINES, "stolen"])]
    if not (table["encoder"] == "victim").any():
        raise ValueError("no victim probe among the cells")
    table = _order(table).reindex(columns=COLUMNS)
    for column in ("budget", "n_seeds", "queries", "api_calls", "steps"):
        table[column] = pd.to_numeric(table[column]).round().astype("Int64")
    return table


def _interval_text(estimate, low, high, scale: float = 100.0, digits: int = 1) -> str:
    if estimate is None or pd.isna(estimate):
        return "n/a"
    if low is None or pd.isna(low):
        return f"{estimate * scale:.{digits}f}"
    return f"{estimate * scale:.{digits}f} [{low * scale:.{digits}f}, {high * scale:.{digits}f}]"


# Marks an interval over test images only (a cell with one seed: training randomness left out).
IMAGES_ONLY = " †"


def _n_seeds(table: pd.DataFrame) -> list[int]:
    """Each row's number of seeds (``n_seeds``, else counted from ``seeds``)."""
    if "n_seeds" in table and table["n_seeds"].notna().all():
        return [int(n) for n in table["n_seeds"]]
    if "seeds" in table:
        return [len(str(s).split()) if pd.notna(s) else 0 for s in table["seeds"]]
    return [0] * len(table)


def _accuracy_texts(table: pd.DataFrame) -> list[str]:
    """"accuracy [low, high]" in %, marked with a dagger where the cell has one seed."""
    return [
        _interval_text(*v) + (IMAGES_ONLY if n == 1 else "")
        for v, n in zip(zip(table["accuracy"], table["ci_low"], table["ci_high"]), _n_seeds(table))
    ]


def _shown(table: pd.DataFrame) -> pd.DataFrame:
    """Accuracies in % with their 95% intervals (a dagger: over test images only, one
    seed), differences in points with their paired intervals, gain recovered as a share
    ("n/a" where the victim's lower bound over the floor is under 3 points), fidelity to
    3 decimals."""
    shown = pd.DataFrame(index=table.index)
    for column in ("encoder", "approach", "loss", "query_set", "budget", "seeds", "api_calls", "steps"):
        if column in table:
            shown[column] = table[column]
    shown["accuracy (%) [95% CI]"] = _accuracy_texts(table)
    if "vs_victim" in table:
        shown["vs victim (points) [95% CI]"] = [
            "" if pd.isna(e) else _interval_text(e, lo, hi) + (IMAGES_ONLY if n == 1 else "")
            for e, lo, hi, n in zip(table["vs_victim"], table["vs_victim_low"], table["vs_victim_high"], _n_seeds(table))
        ]
    if "victim_over_floor" in table:
        shown["victim over floor (points) [95% CI]"] = [
            "" if pd.isna(e) else _interval_text(e, lo, hi)
            for e, lo, hi in zip(table["victim_over_floor"], table["victim_over_floor_low"], table["victim_over_floor_high"])
        ]
    if "gain_recovered" in table:
        shown["gain recovered [95% CI]"] = [
            "" if enc in ("victim", "random_init", "raw_pixels") else _interval_text(e, lo, hi, scale=1.0, digits=2)
            for enc, e, lo, hi in zip(table["encoder"], table["gain_recovered"], table["gain_low"], table["gain_high"])
        ]
        shown["floor (seeds)"] = [
            "" if pd.isna(f) else f"{f} ({s})" for f, s in zip(table["floor"], table.get("floor_seeds", table["floor"]))
        ]
    for column in ("cosine", "cka", "train_loss"):
        if column in table:
            shown[column] = pd.to_numeric(table[column]).round(3)
    return shown.astype(object).where(shown.notna(), "")


READING = (
    "Accuracy: mean over seeds of the linear probe's top-1 accuracy, with a 95% t-interval "
    "over seeds and test images (the spread between seeds, each its own training run, plus "
    "the sampling of the test images; † marks a cell with one seed, whose interval covers "
    "the test images only and leaves training randomness out). vs victim: the difference "
    "from the victim probed with the same seeds, with a paired 95% interval (paired by seed "
    "and test image). Gain recovered: (cell - floor) / (victim - floor) with Fieller's 95% "
    "interval, floor the best of random init, raw pixels and the attacker's own SSL on the "
    "same queries, on the cell's seeds; n/a unless the victim's lower 95% bound over the "
    "floor (victim over floor) is at least 3 points. Cosine (centred; none for head "
    "approaches) and linear CKA: fidelity to the victim on the probe's test images; random "
    "init and the independent twin give their 'not stolen' values."
)


def loss_by_budget(table: pd.DataFrame) -> pd.DataFrame:
    """Stolen accuracy (%) with its interval: one row per (approach, loss, query set),
    budgets as columns."""
    stolen = table[table["encoder"] == "stolen"].copy()
    stolen["shown"] = _accuracy_texts(stolen)
    pivot = stolen.pivot_table(index=["approach", "loss", "query_set"], columns="budget", values="shown", aggfunc="first")
    pivot.columns = [f"{int(b)} queries" for b in pivot.columns]
    return pivot.fillna("").reset_index()


def approach_comparison(table: pd.DataFrame, query_set: str, budget: int) -> pd.DataFrame:
    """The paper's comparison of approaches: one row per (approach, loss) at one query set
    and budget (distinct images), with API calls, accuracy and fidelity."""
    stolen = table[(table["encoder"] == "stolen") & (table["query_set"] == query_set) & (table["budget"] == budget)]
    if stolen.empty:
        raise ValueError(f"no stolen copies at query set {query_set!r} and budget {budget}")
    keep = [c for c in COLUMNS if c not in ("encoder", "query_set", "budget")]
    return stolen.reindex(columns=["encoder", *keep]).sort_values(["approach", "loss"]).reset_index(drop=True)


def write_table(table: pd.DataFrame, csv_path: str | Path, markdown_path: str | Path, title: str) -> None:
    with atomic_path(csv_path) as tmp:
        table.to_csv(tmp, index=False, float_format="%.4f")
    text = (
        f"# {title}\n\n{READING}\n\n## Every cell\n\n{_shown(table).to_markdown(index=False)}\n\n"
        f"## Stolen accuracy (%) [95% CI], budget by budget\n\n{loss_by_budget(table).to_markdown(index=False)}\n"
    )
    with atomic_path(markdown_path) as tmp:
        tmp.write_text(text)


def write_comparison(table: pd.DataFrame, csv_path: str | Path, markdown_path: str | Path, title: str) -> None:
    with atomic_path(csv_path) as tmp:
        table.to_csv(tmp, index=False, float_format="%.4f")
    shown = table.assign(shown=_accuracy_texts(table))
    accuracy = shown.pivot_table(index="loss", columns="approach", values="shown", aggfunc="first").fillna("")
    text = (
        f"# {title}\n\n{READING}\n\n{_shown(table).to_markdown(index=False)}\n\n"
        f"## Accuracy (%) [95% CI], loss x approach\n\n{accuracy.to_markdown()}\n"
    )
    with atomic_path(markdown_path) as tmp:
        tmp.write_text(text)


def accuracy_vs_queries(table: pd.DataFrame, path: str | Path, title: str, style: dict, query_set: str) -> None:
    """Stolen accuracy vs number of distinct queries from ``query_set``, one line per
    (approach, loss) with 95% intervals as error bars; the attacker's own SSL as a
    dashed line; victim, random init and raw pixels as horizontal bands (their
    intervals)."""
    sns.set_theme(style=style.get("theme", "whitegrid"), context=style.get("context", "paper"))
    fig, ax = plt.subplots(figsize=tuple(style.get("size", (6.0, 3.6))))
    lines = table[(table["encoder"].isin(["stolen", "own_ssl"])) & (table["query_set"] == query_set)].copy()
    lines["budget"] = lines["budget"].astype(int)
    palette = dict(zip(sorted(lines["loss"].fillna("own SSL").unique()), sns.color_palette("deep")))
    markers = dict(zip(sorted(lines["approach"].dropna().unique()), ["o", "s", "^", "D", "v"]))
    for (approach, loss), group in lines.groupby(["approach", lines["loss"].fillna("own SSL")]):
        group = group.sort_values("budget")
        y = group["accuracy"] * 100
        errors = [y - group["ci_low"] * 100, group["ci_high"] * 100 - y]
        ax.errorbar(
            group["budget"], y, yerr=errors, label=f"{approach} {loss}" if approach != "own_ssl" else "attacker's own SSL",
            color=palette[loss], marker=markers.get(approach, "o"), linestyle="--" if approach == "own_ssl" else "-",
            capsize=3, linewidth=1.2, markersize=4,
        )
    bands = {"victim": ("victim", "black"), "random_init": ("random init", "grey"), "raw_pixels": ("raw pixels", "tab:brown")}
    for kind, (label, colour) in bands.items():
        rows = table[(table["encoder"] == kind) & table["defense"].isna()] if "defense" in table else table[table["encoder"] == kind]
        if len(rows):
            row = rows.iloc[0]
            ax.axhline(row["accuracy"] * 100, color=colour, linewidth=1.0, label=f"{label} (95% CI band)")
            ax.axhspan(row["ci_low"] * 100, row["ci_high"] * 100, color=colour, alpha=0.15)
    if style.get("log_x", True):
        ax.set_xscale("log")
    budgets = sorted(lines["budget"].unique())
    ax.set_xticks(budgets, [f"{b:,}" for b in budgets])
    ax.minorticks_off()
    ax.set_xlabel("number of queries (distinct images)")
    ax.set_ylabel("linear-probe accuracy (%)")
    ax.set_title(title)
    ax.legend(fontsize="small", loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=style.get("dpi", 150), format=Path(path).suffix.lstrip("."))
    plt.close(fig)


def victim_quality_table(probes: pd.DataFrame) -> pd.DataFrame:
    """One row per victim: its probe accuracy, the random-init floor of its
    architecture, the raw-pixel probe (each with its 95% interval over seeds and test
    images) and the victim's margins over both with paired intervals."""
    table = _keyed(probes)
    raw_rows = table[table["encoder"] == "raw_pixels"]
    rows = []
    for victim, group in table[table["encoder"] == "victim"].groupby("victim"):
        seeds = sorted(int(s) for s in group["seed"])
        mine = correct_matrix(group, seeds)
        row = {"victim": victim, "downstream": group["downstream"].iloc[0], "seeds": " ".join(map(str, seeds))}
        estimate = accuracy_interval(mine)
        row.update(victim_accuracy=estimate.estimate, victim_low=estimate.low, victim_high=estimate.high)
        references = {"random_init": table[(table["encoder"] == "random_init") & (table["victim"] == victim)], "raw_pixels": raw_rows}
        for name, reference in references.items():
            if reference.empty:
                continue
            theirs = correct_matrix(reference, seeds)
            own = accuracy_interval(theirs)
            difference = difference_interval(mine, theirs)
            row.update(
                {
                    f"{name}_accuracy": own.estimate, f"{name}_low": own.low, f"{name}_high": own.high,
                    f"over_{name}": difference.estimate, f"over_{name}_low": difference.low, f"over_{name}_high": difference.high,
                    f"intervals_overlap_{name}": bool(own.high >= estimate.low and estimate.high >= own.low),
                }
            )
        rows.append(row)
    return pd.DataFrame(rows)


def write_victim_quality(table: pd.DataFrame, csv_path: str | Path, markdown_path: str | Path) -> None:
    with atomic_path(csv_path) as tmp:
        table.to_csv(tmp, index=False, float_format="%.4f")
    shown = pd.DataFrame({"victim": table["victim"], "seeds": table["seeds"]})
    marks = [IMAGES_ONLY if n == 1 else "" for n in _n_seeds(table)]

    def texts(estimate: str, low: str, high: str) -> list[str]:
        return [_interval_text(*v) + m for v, m in zip(zip(table[estimate], table[low], table[high]), marks)]

    shown["victim (%) [95% CI]"] = texts("victim_accuracy", "victim_low", "victim_high")
    for name, label in (("random_init", "random init"), ("raw_pixels", "raw pixels")):
        if f"{name}_accuracy" in table:
            shown[f"{label} (%) [95% CI]"] = texts(f"{name}_accuracy", f"{name}_low", f"{name}_high")
            shown[f"over {label} (points) [paired 95% CI]"] = texts(f"over_{name}", f"over_{name}_low", f"over_{name}_high")
            shown[f"intervals overlap ({label})"] = table[f"intervals_overlap_{name}"].map({True: "yes", False: "no"})
    text = (
        "# Victim quality (linear probe)\n\nMean over probe seeds; 95% t-intervals over seeds and test images "
        "(over test images only when one seed: †); margins with paired intervals (same seeds, same test images).\n\n"
        f"{shown.to_markdown(index=False)}\n"
    )
    with atomic_path(markdown_path) as tmp:
        tmp.write_text(text)


def paper_comparison(entries: list[dict]) -> pd.DataFrame:
    """One row per (published cell, our run of it): the paper's victim and stolen
    accuracies, ours from the probe JSONs, and ours minus the paper's. A published cell
    this config does not run is one row saying so."""
    rows = []
    for entry in entries:
        cell = entry["published"]
        paper = {
            "cell": cell["cell"],
            "queries": cell["budget"],
            "paper_victim_accuracy": cell["victim_accuracy"],
            "paper_stolen_accuracy": cell["stolen_accuracy"],
            "paper_ratio": cell["stolen_accuracy"] / cell["victim_accuracy"],
        }
        if not entry["runs"]:
            rows.append({**paper, "status": "not run (no such cell in this config)"})
            continue
        for run in entry["runs"]:
            stolen, victim = collect(run["stolen"]), collect(run["victim_probe"])
            seeds = sorted(int(s) for s in stolen["seed"])
            stolen_correct, victim_correct = correct_matrix(stolen, seeds), correct_matrix(victim, seeds)
            ours_stolen, ours_victim = accuracy_interval(stolen_correct), accuracy_interval(victim_correct)
            gap = difference_interval(stolen_correct, victim_correct)
            ours = {
                "status": "run",
                "our_victim": run["victim"],
                "our_downstream": run["downstream"],
                "our_query_set": run["query_set"],
                "seeds": " ".join(map(str, seeds)),
                "our_victim_accuracy": ours_victim.estimate,
                "our_victim_low": ours_victim.low,
                "our_victim_high": ours_victim.high,
                "our_stolen_accuracy": ours_stolen.estimate,
                "our_stolen_low": ours_stolen.low,
                "our_stolen_high": ours_stolen.high,
                "our_stolen_minus_victim": gap.estimate,
                "our_stolen_minus_victim_low": gap.low,
                "our_stolen_minus_victim_high": gap.high,
                # Undefined for a victim no better than 0% (a toy run's few test images).
                "our_ratio": ours_stolen.estimate / ours_victim.estimate if ours_victim.estimate > 0 else float("nan"),
            }
            ours["victim_difference"] = ours["our_victim_accuracy"] - paper["paper_victim_accuracy"]
            ours["stolen_difference"] = ours["our_stolen_accuracy"] - paper["paper_stolen_accuracy"]
            rows.append({**paper, **ours})
    return pd.DataFrame(rows).reindex(columns=PAPER_COLUMNS)


PAPER_COLUMNS = [
    "cell", "queries", "status", "our_victim", "our_downstream", "our_query_set", "seeds",
    "paper_victim_accuracy", "our_victim_accuracy", "our_victim_low", "our_victim_high", "victim_difference",
    "paper_stolen_accuracy", "our_stolen_accuracy", "our_stolen_low", "our_stolen_high", "stolen_difference",
    "our_stolen_minus_victim", "our_stolen_minus_victim_low", "our_stolen_minus_victim_high", "paper_ratio", "our_ratio",
]


def write_paper_comparison(table: pd.DataFrame, csv_path: str | Path, markdown_path: str | Path, source: str) -> None:
    with atomic_path(csv_path) as tmp:
        table.to_csv(tmp, index=False, float_format="%.4f")
    shown = table.copy()
    for column in shown.columns:
        if column.endswith(("accuracy", "difference", "_low", "_high", "minus_victim")):
            shown[column] = (pd.to_numeric(shown[column]) * 100).round(1)
        elif column.endswith("ratio"):
            shown[column] = pd.to_numeric(shown[column]).round(3)
    shown = shown.astype(object).where(shown.notna(), "")
    shown = shown.rename(columns=lambda c: f"{c} (%)" if c.endswith("accuracy") else (f"{c} (points)" if c.endswith("difference") else c))
    text = (
        "# Our numbers next to the paper's\n\n"
        f"Source of the published numbers: {source}\n\n"
        "Accuracies are linear-probe top-1 (%); differences are ours minus the paper's, in points; "
        "ratio = stolen / victim. Ours: mean over seeds, _low/_high the 95% t-interval over seeds and test "
        "images (over test images only when one seed); stolen minus victim with a paired interval.\n\n"
        f"{shown.to_markdown(index=False)}\n"
    )
    with atomic_path(markdown_path) as tmp:
        tmp.write_text(text)
