"""Paper outputs: probe results -> tables (CSV, Markdown) and figures (seaborn)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # figures are files; no display on clusters or CI
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from .io import atomic_path, read_json  # noqa: E402

BASELINES = ("victim", "random_init", "raw_pixels")


def collect(paths: list[str | Path]) -> pd.DataFrame:
    """One row per probe JSON."""
    rows = [read_json(p) for p in paths]
    if not rows:
        raise ValueError("no probe results to collect")
    return pd.DataFrame(rows)


def stolen_accuracy_table(probes: pd.DataFrame) -> pd.DataFrame:
    """Victim, random-init and raw-pixel rows, then every stolen copy, each with its
    accuracy, its ratio to the victim and the share of the victim's gain over random
    init it recovers: (stolen - random) / (victim - random)."""
    baseline = {}
    for kind in BASELINES:
        rows = probes[probes["encoder"] == kind]
        if len(rows) != 1:
            raise ValueError(f"expected exactly one {kind} probe, found {len(rows)}")
        baseline[kind] = float(rows["accuracy"].iloc[0])
    stolen = probes[probes["encoder"] == "stolen"].sort_values(["method", "loss", "query_set", "budget"])
    table = pd.concat([probes[probes["encoder"] == k] for k in BASELINES] + [stolen], ignore_index=True)
    table = table.reindex(columns=[c for c in COLUMNS if c not in ("ratio_to_victim", "gain_recovered")])
    table["ratio_to_victim"] = table["accuracy"] / baseline["victim"]
    gain = baseline["victim"] - baseline["random_init"]
    table["gain_recovered"] = (table["accuracy"] - baseline["random_init"]) / gain if gain != 0 else float("nan")
    for column in ("budget", "queries", "api_calls"):
        table[column] = table[column].astype("Int64")
    return table[COLUMNS]


# Every stolen copy is one row; its query accounting (distinct images, API calls) and
# fidelity to the victim (on the probe's held-out images) beside its accuracy.
COLUMNS = [
    "encoder", "method", "loss", "query_set", "budget", "queries", "api_calls",
    "accuracy", "ratio_to_victim", "gain_recovered", "cosine", "cka",
]


def loss_by_budget(table: pd.DataFrame) -> pd.DataFrame:
    """Stolen accuracy (%): one row per (method, loss, query set), budgets as columns."""
    stolen = table[table["encoder"] == "stolen"]
    pivot = stolen.pivot_table(index=["method", "loss", "query_set"], columns="budget", values="accuracy", aggfunc="first") * 100
    pivot.columns = [f"{b} queries" for b in pivot.columns]
    return pivot.round(1)


def method_comparison(table: pd.DataFrame, query_set: str, budget: int) -> pd.DataFrame:
    """The paper's comparison of approaches: one row per (method, loss) at one query set
    and budget (distinct images), with API calls, accuracy and fidelity."""
    stolen = table[(table["encoder"] == "stolen") & (table["query_set"] == query_set) & (table["budget"] == budget)]
    if stolen.empty:
        raise ValueError(f"no stolen copies at query set {query_set!r} and budget {budget}")
    keep = ["method", "loss", "queries", "api_calls", "accuracy", "ratio_to_victim", "gain_recovered", "cosine", "cka"]
    return stolen[keep].sort_values(["method", "loss"]).reset_index(drop=True)


def _shown(table: pd.DataFrame) -> pd.DataFrame:
    """Accuracy in %, ratios and fidelity to 3 decimals, blanks for missing values."""
    shown = table.copy()
    shown["accuracy"] = (shown["accuracy"] * 100).round(1)
    for column in ("ratio_to_victim", "gain_recovered", "cosine", "cka"):
        if column in shown:
            shown[column] = pd.to_numeric(shown[column]).round(3)
    return shown.astype(object).where(shown.notna(), "").rename(columns={"accuracy": "accuracy (%)"})


def write_table(table: pd.DataFrame, csv_path: str | Path, markdown_path: str | Path, title: str) -> None:
    with atomic_path(csv_path) as tmp:
        table.to_csv(tmp, index=False, float_format="%.4f")
    text = (
        f"# {title}\n\n## Every probe\n\n{_shown(table).to_markdown(index=False)}\n\n"
        f"## Stolen accuracy (%), budget by budget\n\n{loss_by_budget(table).to_markdown()}\n"
    )
    with atomic_path(markdown_path) as tmp:
        tmp.write_text(text)


def write_comparison(table: pd.DataFrame, csv_path: str | Path, markdown_path: str | Path, title: str) -> None:
    with atomic_path(csv_path) as tmp:
        table.to_csv(tmp, index=False, float_format="%.4f")
    accuracy = (table.pivot_table(index="loss", columns="method", values="accuracy", aggfunc="first") * 100).round(1)
    text = (
        f"# {title}\n\n{_shown(table).to_markdown(index=False)}\n\n"
        f"## Accuracy (%), loss x approach\n\n{accuracy.to_markdown()}\n"
    )
    with atomic_path(markdown_path) as tmp:
        tmp.write_text(text)


def accuracy_vs_queries(table: pd.DataFrame, path: str | Path, title: str, style: dict, query_set: str) -> None:
    """Stolen accuracy vs number of distinct queries from ``query_set``, one line per
    (approach, loss): colour the loss, line style the approach; baselines as lines."""
    sns.set_theme(style=style.get("theme", "whitegrid"), context=style.get("context", "paper"))
    fig, ax = plt.subplots(figsize=tuple(style.get("size", (6.0, 3.6))))
    stolen = table[(table["encoder"] == "stolen") & (table["query_set"] == query_set)].copy()
    stolen["accuracy (%)"] = stolen["accuracy"] * 100
    stolen["budget"] = stolen["budget"].astype(int)
    sns.lineplot(data=stolen, x="budget", y="accuracy (%)", hue="loss", style="method", markers=True, ax=ax)
    lines = {"victim": ("victim", "-", "black"), "random_init": ("random init", ":", "grey"), "raw_pixels": ("raw pixels", "--", "tab:brown")}
    for kind, (label, linestyle, colour) in lines.items():
        value = table.loc[table["encoder"] == kind, "accuracy"]
        if len(value):
            ax.axhline(float(value.iloc[0]) * 100, linestyle=linestyle, color=colour, label=label, linewidth=1.2)
    if style.get("log_x", True):
        ax.set_xscale("log")
    budgets = sorted(stolen["budget"].unique())
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
    architecture, the raw-pixel probe, and the victim's margins over both."""
    raw = probes.loc[probes["encoder"] == "raw_pixels", "accuracy"]
    raw_accuracy = float(raw.iloc[0]) if len(raw) else float("nan")
    rows = []
    for victim, group in probes[probes["encoder"].isin(["victim", "random_init"])].groupby("victim"):
        accuracy = dict(zip(group["encoder"], group["accuracy"]))
        rows.append(
            {
                "victim": victim,
                "method": group["method"].dropna().iloc[0] if group["method"].notna().any() else "",
                "downstream": group["downstream"].iloc[0],
                "victim_accuracy": accuracy.get("victim", float("nan")),
                "random_init_accuracy": accuracy.get("random_init", float("nan")),
                "raw_pixels_accuracy": raw_accuracy,
            }
        )
    table = pd.DataFrame(rows)
    table["over_random_init"] = table["victim_accuracy"] - table["random_init_accuracy"]
    table["over_raw_pixels"] = table["victim_accuracy"] - table["raw_pixels_accuracy"]
    return table


def write_victim_quality(table: pd.DataFrame, csv_path: str | Path, markdown_path: str | Path) -> None:
    with atomic_path(csv_path) as tmp:
        table.to_csv(tmp, index=False, float_format="%.4f")
    shown = table.copy()
    for column in shown.columns:
        if column.endswith("accuracy") or column.startswith("over_"):
            shown[column] = (shown[column] * 100).round(1)
    shown = shown.rename(columns=lambda c: f"{c} (%)" if c.endswith("accuracy") else (f"{c} (points)" if c.startswith("over_") else c))
    with atomic_path(markdown_path) as tmp:
        tmp.write_text(f"# Victim quality (linear probe)\n\n{shown.to_markdown(index=False)}\n")


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
            stolen, victim = read_json(run["stolen"]), read_json(run["victim_probe"])
            ours = {
                "status": "run",
                "our_victim": run["victim"],
                "our_downstream": run["downstream"],
                "our_query_set": run["query_set"],
                "our_victim_accuracy": victim["accuracy"],
                "our_stolen_accuracy": stolen["accuracy"],
                "our_ratio": stolen["accuracy"] / victim["accuracy"],
            }
            ours["victim_difference"] = ours["our_victim_accuracy"] - paper["paper_victim_accuracy"]
            ours["stolen_difference"] = ours["our_stolen_accuracy"] - paper["paper_stolen_accuracy"]
            rows.append({**paper, **ours})
    return pd.DataFrame(rows).reindex(columns=PAPER_COLUMNS)


PAPER_COLUMNS = [
    "cell", "queries", "status", "our_victim", "our_downstream", "our_query_set",
    "paper_victim_accuracy", "our_victim_accuracy", "victim_difference",
    "paper_stolen_accuracy", "our_stolen_accuracy", "stolen_difference", "paper_ratio", "our_ratio",
]


def write_paper_comparison(table: pd.DataFrame, csv_path: str | Path, markdown_path: str | Path, source: str) -> None:
    with atomic_path(csv_path) as tmp:
        table.to_csv(tmp, index=False, float_format="%.4f")
    shown = table.copy()
    for column in shown.columns:
        if column.endswith("accuracy") or column.endswith("difference"):
            shown[column] = (pd.to_numeric(shown[column]) * 100).round(1)
        elif column.endswith("ratio"):
            shown[column] = pd.to_numeric(shown[column]).round(3)
    shown = shown.astype(object).where(shown.notna(), "")
    shown = shown.rename(columns=lambda c: f"{c} (%)" if c.endswith("accuracy") else (f"{c} (points)" if c.endswith("difference") else c))
    text = (
        "# Our numbers next to the paper's\n\n"
        f"Source of the published numbers: {source}\n\n"
        "Accuracies are linear-probe top-1 (%); differences are ours minus the paper's, in points; "
        "ratio = stolen / victim.\n\n"
        f"{shown.to_markdown(index=False)}\n"
    )
    with atomic_path(markdown_path) as tmp:
        tmp.write_text(text)
