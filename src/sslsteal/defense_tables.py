"""Paper outputs of the defenses: poisoning trade-off, duplicate detection, watermark.

Torch-free (the table jobs start in a second): probe and verification JSONs in,
CSV, Markdown and seaborn figures out.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .defense_spec import parse_defense
from .io import atomic_path, read_json
from .tables import _interval_text, plt, sns

USER = "legitimate user"


def _party(row: pd.Series) -> str:
    """Who received the answers: the legitimate user (the victim's probe) or an attack."""
    if row["encoder"] == "victim":
        return USER
    if row["encoder"] == "random_init":
        return "random init (floor)"
    return f"attacker: {row['method']} {row['loss']}, {int(row['budget']):,} queries"


def label_defenses(probes: pd.DataFrame) -> pd.DataFrame:
    """Add ``party`` and ``defense`` ("none" when undefended) to collected probes."""
    table = probes.copy()
    if "defense" not in table:
        table["defense"] = None
    table["defense"] = table["defense"].fillna("none")
    table["party"] = table.apply(_party, axis=1)
    return table


def _finish(fig, ax, labels: tuple[str, str, str], path: str | Path, style: dict, legend_title: str | None = None) -> None:
    """Axis labels, title and the legend outside the axes; then save atomically."""
    xlabel, ylabel, title = labels
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize="small", title=legend_title, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=style.get("dpi", 150), format=Path(path).suffix.lstrip("."))
    plt.close(fig)


def _write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def _figure(style: dict):
    sns.set_theme(style=style.get("theme", "whitegrid"), context=style.get("context", "paper"))
    return plt.subplots(figsize=tuple(style.get("size", (6.0, 3.6))))


# ------------------------------------------------------------------ poisoning
def poisoning_table(probes: pd.DataFrame) -> pd.DataFrame:
    """One row per (sigma, party): the accuracy reached on answers poisoned with sigma
    (0 = undefended) and its drop from the undefended accuracy, in points."""
    table = label_defenses(probes)
    table = table[table["encoder"] != "random_init"].copy()
    table["sigma"] = [0.0 if d == "none" else parse_defense(d)["sigma"] for d in table["defense"]]
    undefended = table[table["sigma"] == 0].set_index("party")["accuracy"]
    table["drop_points"] = [(undefended.get(p, float("nan")) - a) * 100 for p, a in zip(table["party"], table["accuracy"])]
    keep = ["sigma", "party", "accuracy", "ci_low", "ci_high", "drop_points", "api_calls"]
    return table[keep].sort_values(["sigma", "party"]).reset_index(drop=True)


def write_poisoning(table: pd.DataFrame, probes: pd.DataFrame, csv_path, markdown_path, figure_path, title: str, style: dict) -> None:
    with atomic_path(csv_path) as tmp:
        table.to_csv(tmp, index=False, float_format="%.4f")
    shown = table.assign(shown=[_interval_text(*v) for v in zip(table["accuracy"], table["ci_low"], table["ci_high"])])
    accuracy = shown.pivot_table(index="sigma", columns="party", values="shown", aggfunc="first").fillna("")
    drop = table.pivot_table(index="sigma", columns="party", values="drop_points", aggfunc="first").round(1)
    floor = probes.loc[probes["encoder"] == "random_init", "accuracy"]
    floor_text = f"Random-init floor of the victim's architecture: {float(floor.iloc[0]) * 100:.1f}%.\n" if len(floor) else ""
    text = (
        f"# {title}\n\nNoise sigma is relative to the answers' RMS; sigma 0 is the undefended API. "
        "The legitimate user trains and tests its linear probe on noisy answers; the attacker "
        "trains its stolen copy on noisy answers, and the copy is probed like the victim.\n"
        f"{floor_text}\n## Accuracy (%) [95% CI over test images]\n\n{accuracy.to_markdown()}\n\n"
        f"## Drop from the undefended accuracy (points)\n\n{drop.to_markdown()}\n"
    )
    _write_text(markdown_path, text)
    fig, ax = _figure(style)
    for (party, group), colour in zip(table.groupby("party"), sns.color_palette("deep")):
        group = group.sort_values("sigma")
        y = group["accuracy"] * 100
        ax.errorbar(group["sigma"], y, yerr=[y - group["ci_low"] * 100, group["ci_high"] * 100 - y], label=party,
                    color=colour, marker="o", capsize=3, linewidth=1.2, markersize=4)
    if len(floor):
        ax.axhline(float(floor.iloc[0]) * 100, linestyle=":", color="grey", label="random init", linewidth=1.2)
    positive = sorted(s for s in table["sigma"].unique() if s > 0)
    if positive:
        # symlog: sigma 0 (undefended) sits at the left of a log axis.
        ax.set_xscale("symlog", linthresh=positive[0])
        ticks = [0.0, *positive]
        ax.set_xticks(ticks, [f"{s:g}" for s in ticks])
        ax.minorticks_off()
    labels = ("noise sigma (x answers' RMS); 0 = undefended", "linear-probe accuracy (%)", title)
    _finish(fig, ax, labels, figure_path, style)


# ------------------------------------------------------------------ detection
DETECTION_COLUMNS = [
    "party", "defense", "api_calls", "queries_sent", "flagged", "duplicates",
    "detection_precision", "detection_recall", "detection_f1", "accuracy", "ci_low", "ci_high",
]


def detection_table(probes: pd.DataFrame) -> pd.DataFrame:
    """One row per (party, defense): what the detector flagged among the party's calls,
    its precision, recall and F1 against the truth (augmented duplicates), and the
    accuracy the party reached."""
    table = label_defenses(probes)
    table = table[table["encoder"] != "random_init"]
    table = table.reindex(columns=DETECTION_COLUMNS)
    for column in ("api_calls", "queries_sent", "flagged", "duplicates"):
        table[column] = pd.to_numeric(table[column]).astype("Int64")
    return table.sort_values(["party", "defense"], key=lambda c: c.map(lambda v: (v != USER, v != "none", v))).reset_index(drop=True)


def write_detection(table: pd.DataFrame, csv_path, markdown_path, figure_path, title: str, style: dict) -> None:
    with atomic_path(csv_path) as tmp:
        table.to_csv(tmp, index=False, float_format="%.4f")
    shown = table.drop(columns=["ci_low", "ci_high"])
    shown["accuracy"] = [_interval_text(*v) for v in zip(table["accuracy"], table["ci_low"], table["ci_high"])]
    for column in ("detection_precision", "detection_recall", "detection_f1"):
        shown[column] = pd.to_numeric(shown[column]).round(3)
    shown = shown.astype(object).where(shown.notna(), "n/a").rename(columns={"accuracy": "accuracy (%) [95% CI]"})
    text = (
        f"# {title}\n\nA query is flagged when the victim's projection of it has (1 + cos) / 2 "
        "above the threshold with an earlier query of the same user; flagged queries are "
        "answered with noise. Truth: a query is a duplicate when an earlier query of the "
        "user is an augmented view of the same image (the head-recreation attacker's second "
        "view). n/a: undefined (no flags, or no duplicates to find).\n\n"
        f"{shown.to_markdown(index=False)}\n"
    )
    _write_text(markdown_path, text)
    fig, ax = _figure(style)
    bars = table.assign(**{"accuracy (%)": table["accuracy"] * 100})
    sns.barplot(data=bars, y="party", x="accuracy (%)", hue="defense", ax=ax, orient="h")
    # 95% intervals on the bars, in the order seaborn drew them.
    for container, (_, group) in zip(ax.containers, bars.groupby("defense", sort=False)):
        for bar, (_, row) in zip(container, group.iterrows()):
            centre = bar.get_y() + bar.get_height() / 2
            ax.plot([row["ci_low"] * 100, row["ci_high"] * 100], [centre, centre], color="black", linewidth=1.0)
    low = float(bars["accuracy (%)"].min())
    ax.set_xlim(max(0.0, low - 10), 100)
    _finish(fig, ax, ("accuracy (%)", "", title), figure_path, style, legend_title="defense")


# ------------------------------------------------------------------ watermark
def watermark_table(verifications: list[str | Path], watermarked_probe: str | Path, plain_probe: str | Path | None) -> pd.DataFrame:
    """One row per suspect: the secret head's accuracy on its representations of the
    rotated held-out images and the one-sided binomial p-value against 50%; then the
    watermark's cost: the watermarked victim's probe accuracy beside its plain twin's."""
    rows = []
    for path in verifications:
        record = read_json(path)
        if record["suspect_kind"] == "stolen":
            kind, suspect = "stolen copy", f"{record['method']} {record['loss']}, {record['query_set']}"
        elif record["suspect"] == record["watermarked"]:
            kind, suspect = "watermarked victim", record["suspect"]
        else:
            kind, suspect = "independent victim", record["suspect"]
        low, high = wilson_interval(record["accuracy"], record["images"])
        rows.append(
            {
                "kind": kind,
                "suspect": suspect,
                "queries": record.get("queries"),
                "images": record["images"],
                "accuracy": record["accuracy"],
                "ci_low": low,
                "ci_high": high,
                "p_value": record["p_value"],
            }
        )
    for kind, path in (("probe accuracy: watermarked victim", watermarked_probe), ("probe accuracy: plain twin", plain_probe)):
        if path:
            probe = read_json(path)
            low, high = wilson_interval(probe["accuracy"], probe["n_test"])
            rows.append({"kind": kind, "suspect": probe["victim"], "images": probe["n_test"], "accuracy": probe["accuracy"], "ci_low": low, "ci_high": high})
    table = pd.DataFrame(rows)
    table["queries"] = pd.to_numeric(table["queries"]).astype("Int64")
    order = {"watermarked victim": 0, "independent victim": 1, "stolen copy": 2}
    table["_order"] = table["kind"].map(lambda k: order.get(k, 3))
    return table.sort_values(["_order", "suspect", "queries"]).drop(columns="_order").reset_index(drop=True)


def wilson_interval(accuracy: float, n: int) -> tuple[float, float]:
    """The 95% Wilson score interval of a proportion (scipy's binomtest)."""
    from scipy.stats import binomtest

    interval = binomtest(int(round(accuracy * n)), int(n)).proportion_ci(0.95, method="wilson")
    return interval.low, interval.high


def write_watermark(table: pd.DataFrame, csv_path, markdown_path, figure_path, title: str, style: dict) -> None:
    with atomic_path(csv_path) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")
    verified = table[~table["kind"].str.startswith("probe accuracy")].copy()
    verified["accuracy"] = [_interval_text(*v) for v in zip(verified["accuracy"], verified["ci_low"], verified["ci_high"])]
    verified = verified.drop(columns=["ci_low", "ci_high"])
    verified["p_value"] = verified["p_value"].map(lambda p: f"{p:.2g}")
    verified = verified.astype(object).where(verified.notna(), "").rename(columns={"accuracy": "watermark accuracy (%) [95% CI]"})
    cost = table[table["kind"].str.startswith("probe accuracy")].set_index("kind")
    cost_text = "No plain twin (same config without the watermark) in the config: cost not measured.\n"
    if "probe accuracy: plain twin" in cost.index:
        marked = float(cost.loc["probe accuracy: watermarked victim", "accuracy"]) * 100
        plain = float(cost.loc["probe accuracy: plain twin", "accuracy"]) * 100
        cost_text = (
            f"Linear-probe accuracy: watermarked victim {marked:.1f}%, the same victim trained "
            f"without the watermark ({cost.loc['probe accuracy: plain twin', 'suspect']}) {plain:.1f}%: "
            f"the watermark costs {plain - marked:.1f} points.\n"
        )
    text = (
        f"# {title}\n\nThe watermarked victim's secret head (rotation in [0, 180) vs [180, 360)) "
        "applied to each suspect's representations of rotated held-out images; p-value: "
        "one-sided binomial test against 50% (chance).\n\n"
        f"{verified.to_markdown(index=False)}\n\n## Cost\n\n{cost_text}"
    )
    _write_text(markdown_path, text)
    fig, ax = _figure(style)
    stolen = table[table["kind"] == "stolen copy"].copy()
    if len(stolen):
        stolen["watermark accuracy (%)"] = stolen["accuracy"] * 100
        stolen["queries"] = stolen["queries"].astype(int)
        for (suspect, group), colour in zip(stolen.groupby("suspect"), sns.color_palette("deep")):
            group = group.sort_values("queries")
            y = group["watermark accuracy (%)"]
            ax.errorbar(group["queries"], y, yerr=[y - group["ci_low"] * 100, group["ci_high"] * 100 - y], label=suspect,
                        color=colour, marker="o", capsize=3, linewidth=1.2, markersize=4)
        if style.get("log_x", True):
            ax.set_xscale("log")
        ticks = sorted(stolen["queries"].unique())
        ax.set_xticks(ticks, [f"{q:,}" for q in ticks])
        ax.minorticks_off()
    references = table[table["kind"].isin(["watermarked victim", "independent victim"])]
    for i, (_, row) in enumerate(references.iterrows()):
        ax.axhline(row["accuracy"] * 100, linestyle="-" if row["kind"] == "watermarked victim" else "--",
                   color="black" if row["kind"] == "watermarked victim" else sns.color_palette("muted")[(i + 3) % 10],
                   linewidth=1.2, label=f"{row['kind']}: {row['suspect']}")
    ax.axhline(50, linestyle=":", color="grey", label="chance", linewidth=1.2)
    _finish(fig, ax, ("attacker's queries (distinct images)", "watermark accuracy (%)", title), figure_path, style)
