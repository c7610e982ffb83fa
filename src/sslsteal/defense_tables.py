"""Paper outputs of the defenses: poisoning trade-off, duplicate detection, B4B, watermark.

Torch-free (the table jobs start in a second): probe and verification JSONs in,
CSV, Markdown and seaborn figures out.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
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
    return f"attacker: {row['approach']} {row['loss']}, {int(row['budget']):,} queries"


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


# ------------------------------------------------------------------ poisoning, B4B
def setting_table(probes: pd.DataFrame, key: str = "sigma") -> pd.DataFrame:
    """One row per (setting, party): the accuracy reached on answers defended with the
    setting ``key`` of the defense's name (poisoning's ``sigma``, B4B's ``sybils``; 0 =
    undefended) and its drop from the undefended accuracy, in points. B4B's rows also
    carry the party's mean noise level and coverage."""
    table = label_defenses(probes)
    table = table[table["encoder"] != "random_init"].copy()
    table[key] = [0 if d == "none" else parse_defense(d)[key] for d in table["defense"]]
    undefended = table[table[key] == 0].set_index("party")["accuracy"]
    table["drop_points"] = [(undefended.get(p, float("nan")) - a) * 100 for p, a in zip(table["party"], table["accuracy"])]
    keep = [key, "party", "accuracy", "ci_low", "ci_high", "drop_points", "api_calls"]
    keep += [c for c in ("b4b_mean_sigma", "b4b_coverage") if c in table]
    return table[keep].sort_values([key, "party"]).reset_index(drop=True)


def poisoning_table(probes: pd.DataFrame) -> pd.DataFrame:
    return setting_table(probes, "sigma")


def b4b_table(probes: pd.DataFrame) -> pd.DataFrame:
    return setting_table(probes, "sybils")


POISONING_TEXT = (
    "Noise sigma is relative to the answers' centred standard deviation; sigma 0 is the undefended API. "
    "The legitimate user trains and tests its linear probe on noisy answers; the attacker "
    "trains its stolen copy on noisy answers, and the copy is probed like the victim.\n"
)
B4B_TEXT = (
    "B4B (Dubinski et al., NeurIPS 2023): each answer gets noise growing with the share of the "
    "representation space's hash buckets its account has covered, then the account's own "
    "permutation and scaling. Sybils: the attacker's queries split round-robin over that many "
    "accounts (0 = the undefended API); the legitimate user is one account and sends its probe's "
    "train then test images. Mean sigma: the noise level averaged over a party's calls (x the "
    "answers' centred std); coverage: the largest share of buckets one of its accounts filled.\n"
)


def write_setting(
    table: pd.DataFrame, probes: pd.DataFrame, csv_path, markdown_path, figure_path, title: str, style: dict,
    key: str = "sigma", intro: str = POISONING_TEXT, xlabel: str = "noise sigma (x answers' centred std); 0 = undefended",
) -> None:
    with atomic_path(csv_path) as tmp:
        table.to_csv(tmp, index=False, float_format="%.4f")
    shown = table.assign(shown=[_interval_text(*v) for v in zip(table["accuracy"], table["ci_low"], table["ci_high"])])
    accuracy = shown.pivot_table(index=key, columns="party", values="shown", aggfunc="first").fillna("")
    drop = table.pivot_table(index=key, columns="party", values="drop_points", aggfunc="first").round(1)
    floor = probes.loc[probes["encoder"] == "random_init", "accuracy"]
    floor_text = f"Random-init floor of the victim's architecture: {float(floor.iloc[0]) * 100:.1f}%.\n" if len(floor) else ""
    text = (
        f"# {title}\n\n{intro}{floor_text}\n## Accuracy (%) [95% CI over test images]\n\n{accuracy.to_markdown()}\n\n"
        f"## Drop from the undefended accuracy (points)\n\n{drop.to_markdown()}\n"
    )
    for column, heading in (("b4b_mean_sigma", "Mean noise sigma of the party's calls"), ("b4b_coverage", "Coverage (share of buckets)")):
        if column in table and table[column].notna().any():
            values = table[table[key] != 0].pivot_table(index=key, columns="party", values=column, aggfunc="first").round(3)
            text += f"\n## {heading}\n\n{values.to_markdown()}\n"
    _write_text(markdown_path, text)
    fig, ax = _figure(style)
    for (party, group), colour in zip(table.groupby("party"), sns.color_palette("deep")):
        group = group.sort_values(key)
        y = group["accuracy"] * 100
        ax.errorbar(group[key], y, yerr=[y - group["ci_low"] * 100, group["ci_high"] * 100 - y], label=party,
                    color=colour, marker="o", capsize=3, linewidth=1.2, markersize=4)
    if len(floor):
        ax.axhline(float(floor.iloc[0]) * 100, linestyle=":", color="grey", label="random init", linewidth=1.2)
    positive = sorted(s for s in table[key].unique() if s > 0)
    if positive:
        # symlog: setting 0 (undefended) sits at the left of a log axis.
        ax.set_xscale("symlog", linthresh=positive[0])
        ticks = [0, *positive]
        ax.set_xticks(ticks, [f"{s:g}" for s in ticks])
        ax.minorticks_off()
    _finish(fig, ax, (xlabel, "linear-probe accuracy (%)", title), figure_path, style)


def write_poisoning(table: pd.DataFrame, probes: pd.DataFrame, csv_path, markdown_path, figure_path, title: str, style: dict) -> None:
    write_setting(table, probes, csv_path, markdown_path, figure_path, title, style)


def write_b4b(table: pd.DataFrame, probes: pd.DataFrame, csv_path, markdown_path, figure_path, title: str, style: dict) -> None:
    write_setting(table, probes, csv_path, markdown_path, figure_path, title, style, "sybils", B4B_TEXT,
                  "attacker's accounts (sybils); 0 = undefended")


# ------------------------------------------------------------------ detection
DETECTION_COLUMNS = [
    "party", "defense", "threshold", "api_calls", "flagged", "flagged_rate", "flagged_low", "flagged_high",
    "auc", "auc_low", "auc_high", "duplicates", "detection_recall", "accuracy", "ci_low", "ci_high",
]


def attack_label(attack: dict) -> str:
    """The party name of an attack cell, as :func:`_party` names its probe."""
    return f"attacker: {attack['approach']} {attack['loss']}, {int(attack['budget']):,} queries"


def attack_scores(dump_path: str | Path, budget: int) -> np.ndarray:
    """The detector's scores of the calls an attack of ``budget`` queries made (every view
    of its first ``budget`` images), read from a defended dump."""
    import h5py

    with h5py.File(dump_path, "r") as f:
        if "score" not in f:
            raise ValueError(f"{dump_path} has no detector scores (not a detection-defended dump)")
        scores = f["score"][()]
    return (scores[:, :budget] if scores.ndim == 2 else scores[:budget]).ravel()


def roc(legitimate: np.ndarray, attack: np.ndarray, n_boot: int = 500, seed: int = 0) -> dict:
    """The detector as a classifier of calls (attacker's = positive) by score: the ROC
    curve against a legitimate stream, its AUC and a 95% percentile bootstrap interval
    (both streams resampled)."""
    from sklearn.metrics import roc_auc_score, roc_curve

    truth = np.r_[np.zeros(len(legitimate)), np.ones(len(attack))]
    scores = np.r_[legitimate, attack]
    fpr, tpr, _ = roc_curve(truth, scores)
    rng = np.random.default_rng(seed)
    replicates = [
        roc_auc_score(truth, np.r_[rng.choice(legitimate, len(legitimate)), rng.choice(attack, len(attack))])
        for _ in range(n_boot)
    ]
    low, high = np.percentile(replicates, [2.5, 97.5])
    return {"fpr": fpr, "tpr": tpr, "auc": float(roc_auc_score(truth, scores)), "auc_low": float(low), "auc_high": float(high)}


def detection_table(probes: pd.DataFrame, calibration: dict, attacks: list[dict]) -> tuple[pd.DataFrame, dict]:
    """One row per (party, defense): the detector's threshold, the share of the party's
    calls it flagged (for an attacker the true-positive rate, for the legitimate user a
    false-positive rate) with a 95% Wilson interval, the attack's ROC AUC against the
    calibration stream, the recall of true augmented duplicates, and the accuracy the
    party reached with its interval. ``attacks``: ``{approach, loss, query_set, budget,
    dump}`` (a defended dump holding the calls' scores). Also returns each attack's ROC."""
    table = label_defenses(probes)
    table = table[table["encoder"] != "random_init"].copy()
    legitimate = np.asarray(calibration["scores"], dtype=np.float64)
    curves = {}
    for attack in attacks:
        label = attack_label(attack)
        if label not in curves:
            scores = attack_scores(attack["dump"], int(attack["budget"]))
            if len(scores) > len(legitimate):
                raise ValueError(f"{label}: {len(scores)} calls, more than the {len(legitimate)} of the calibration stream")
            # A query's score grows with the user's history: compare the attack's calls
            # with a legitimate stream of the same length (the calibration stream's first
            # calls, each scored against only the ones before it).
            curves[label] = roc(legitimate[: len(scores)], scores)
            # The operating point on this curve: the legitimate calls of equal number that
            # the calibrated threshold flags (fewer than the target for a shorter stream).
            threshold = float(next(iter(calibration["thresholds"].values())))
            curves[label]["operating_fpr"] = float((legitimate[: len(scores)] > threshold).mean())
    table["threshold"] = pd.to_numeric(table.get("detection_threshold"), errors="coerce")
    for column in ("api_calls", "queries_sent", "flagged", "duplicates"):
        table[column] = pd.to_numeric(table.get(column), errors="coerce").astype("Int64")
    rates = [
        (f / n, *wilson_interval(f / n, n)) if pd.notna(f) and pd.notna(n) and n else (np.nan,) * 3
        for f, n in zip(table["flagged"], table["queries_sent"])
    ]
    table["flagged_rate"], table["flagged_low"], table["flagged_high"] = (list(column) for column in zip(*rates)) if rates else ([], [], [])
    for key in ("auc", "auc_low", "auc_high"):
        table[key] = [curves[p][key] if p in curves else np.nan for p in table["party"]]
    table = table.reindex(columns=DETECTION_COLUMNS)
    order = lambda c: c.map(lambda v: (v != USER, v != "none", v))  # noqa: E731
    return table.sort_values(["party", "defense"], key=order).reset_index(drop=True), curves


def write_detection(
    table: pd.DataFrame, curves: dict, calibration: dict, paths: dict, title: str, style: dict
) -> None:
    """CSV and Markdown of :func:`detection_table`; a bar figure of the accuracies with
    and without the defense; the ROC figure with each attack's operating point."""
    with atomic_path(paths["csv"]) as tmp:
        table.to_csv(tmp, index=False, float_format="%.4f")
    shown = pd.DataFrame({"party": table["party"], "defense": table["defense"]})
    shown["threshold"] = table["threshold"].round(4)
    shown["calls"] = table["api_calls"]
    shown["flagged (%) [95% CI]"] = [_interval_text(*v) for v in zip(table["flagged_rate"], table["flagged_low"], table["flagged_high"])]
    shown["ROC AUC [95% CI]"] = [_interval_text(*v, scale=1.0, digits=3) for v in zip(table["auc"], table["auc_low"], table["auc_high"])]
    shown["duplicates caught (%)"] = (pd.to_numeric(table["detection_recall"]) * 100).round(1)
    shown["accuracy (%) [95% CI]"] = [_interval_text(*v) for v in zip(table["accuracy"], table["ci_low"], table["ci_high"])]
    shown = shown.astype(object).where(shown.notna(), "n/a")
    targets = ", ".join(f"{float(k):.0%} -> threshold {v:.4f}" for k, v in calibration["thresholds"].items())
    measured = ", ".join(f"{v:.2%}" for v in calibration["flagged_fraction"].values())
    text = (
        f"# {title}\n\nEach query is scored by the highest (1 + cos) / 2 between the victim's "
        "projection of it and of an earlier query of the same user; a query scoring above the "
        "threshold is answered with noise. The threshold is set on a calibration stream of "
        f"{len(calibration['scores']):,} legitimate queries ({calibration['dataset']} "
        f"{calibration['split']}, seed {calibration['seed']}), never on an attack's: target "
        f"false-positive rate {targets} (flags {measured} of the calibration stream). "
        "Flagged: the share of a party's calls answered with noise: the true-positive rate "
        "for an attacker, a false-positive rate for the legitimate user (its downstream train "
        "then test images). ROC AUC: the detector's scores separating an attack's calls from "
        "as many legitimate ones (the calibration stream's first calls: a score grows with "
        "the history, so streams of equal length are compared; 0.5: no better than chance). Duplicates caught: the share "
        "of true augmented duplicates (a head-recreation attacker's later views) flagged. "
        "Accuracy: the linear probe of the party's encoder (the user's: the victim on the "
        "answers it got); intervals over test images.\n\n"
        f"{shown.to_markdown(index=False)}\n"
    )
    _write_text(paths["markdown"], text)
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
    _finish(fig, ax, ("accuracy (%)", "", title), paths["figure"], style, legend_title="defense")
    fig, ax = _figure({**style, "size": (style.get("size", (6.0, 3.6))[0],) * 2})
    operating = table[table["defense"] != "none"].set_index("party")
    target = max(float(k) for k in calibration["thresholds"])
    for (label, curve), colour in zip(curves.items(), sns.color_palette("deep")):
        ax.plot(curve["fpr"], curve["tpr"], color=colour, linewidth=1.2, label=f"{label.removeprefix('attacker: ')} (AUC {curve['auc']:.3f})")
        if label in operating.index:
            ax.plot([curve["operating_fpr"]], [float(operating.loc[label, "flagged_rate"])], marker="o", color=colour, markersize=5)
    ax.plot([0, 1], [0, 1], linestyle=":", color="grey", linewidth=1.0, label="chance")
    ax.axvline(target, linestyle="--", color="black", linewidth=0.8, label=f"target false-positive rate {target:.0%}")
    ax.set_aspect("equal")
    ax.set_xlabel("false-positive rate (legitimate calls flagged)")
    ax.set_ylabel("true-positive rate (attacker's calls flagged)")
    ax.set_title(f"{title}: ROC", fontsize="medium")
    # Below the axes: beside them it squeezes the square plot, inside it hides the
    # low false-positive corner that matters.
    ax.legend(fontsize="x-small", loc="upper center", bbox_to_anchor=(0.5, -0.18), frameon=False)
    fig.tight_layout()
    with atomic_path(paths["roc"]) as tmp:
        fig.savefig(tmp, dpi=style.get("dpi", 150), format=Path(paths["roc"]).suffix.lstrip("."))
    plt.close(fig)


# ------------------------------------------------------------------ watermark
NULL_KINDS = {
    "victim": "independent victim",
    "independent": "independent twin",
    "own_ssl": "attacker's own SSL",
    "random_init": "random init",
}


def _suspect_row(record: dict) -> dict:
    kind = record["suspect_kind"]
    if kind == "stolen":
        kind_text = "stolen copy"
        suspect = f"{record['approach']} {record['loss']}, {record['query_set']}"
    elif kind == "victim" and record["suspect"] == record["watermarked"]:
        kind_text, suspect = "watermarked victim", record["suspect"]
    else:
        kind_text = f"null: {NULL_KINDS[kind]}"
        suspect = record["suspect"] if kind != "random_init" else f"seed {record['seed']}"
        if kind == "own_ssl":
            suspect = f"{record['suspect']} {record['query_set']} {record['budget']} seed {record['seed']}"
    low, high = wilson_interval(record["accuracy"], record["images"])
    return {
        "kind": kind_text,
        "suspect": suspect,
        "queries": record.get("queries"),
        "images": record["images"],
        "accuracy": record["accuracy"],
        "ci_low": low,
        "ci_high": high,
    }


def watermark_table(
    suspects: list[str | Path],
    null: list[str | Path],
    watermarked_probe: str | Path,
    plain_probe: str | Path | None,
    false_positive_rate: float = 0.05,
) -> tuple[pd.DataFrame, dict]:
    """One row per verified encoder: the secret head's accuracy on its representations of
    the rotated held-out images (95% Wilson interval), its one-sided p-value against the
    null of encoders that never saw the victim (``null``: a normal fitted to their
    accuracies, Student's t prediction bound; each null encoder against the others), the
    Bonferroni-adjusted p-value over the ``suspects`` tested, and whether it is flagged at
    the family-wise ``false_positive_rate``. Then the watermark's cost: the watermarked
    victim's probe accuracy beside its plain twin's.

    Also returns a summary: the null's mean and spread, the accuracy above which a suspect
    is flagged, and the false-positive rate of the whole procedure measured on the null
    encoders, each held out in turn (flagged with the same correction), with its Wilson
    interval."""
    from .stats import bonferroni, leave_one_out_p_values, null_p_value, null_threshold

    suspect_rows = [_suspect_row(read_json(path)) for path in suspects]
    null_rows = [_suspect_row(read_json(path)) for path in null]
    null_accuracy = np.array([row["accuracy"] for row in null_rows])
    m = len(suspect_rows)
    for row in suspect_rows:
        row["p_value"] = null_p_value(row["accuracy"], null_accuracy)
    for row, p in zip(null_rows, leave_one_out_p_values(null_accuracy)):
        row["p_value"] = float(p)
    rows = suspect_rows + null_rows
    for row, adjusted in zip(rows, bonferroni([row["p_value"] for row in rows], m)):
        row["p_adjusted"] = float(adjusted)
        row["flagged"] = bool(adjusted < false_positive_rate)
    n_null = len(null_rows)
    false_flags = sum(row["flagged"] for row in null_rows)
    per_test = sum(row["p_value"] < false_positive_rate for row in null_rows)
    fpr_low, fpr_high = wilson_interval(false_flags / n_null, n_null)
    summary = {
        "false_positive_rate": false_positive_rate,
        "suspects": m,
        "null_encoders": n_null,
        "null_mean": float(null_accuracy.mean()),
        "null_std": float(null_accuracy.std(ddof=1)),
        "null_min": float(null_accuracy.min()),
        "null_max": float(null_accuracy.max()),
        "flag_above": null_threshold(null_accuracy, false_positive_rate / m),
        "measured_fpr": false_flags / n_null,
        "measured_fpr_low": fpr_low,
        "measured_fpr_high": fpr_high,
        "uncorrected_flags": int(per_test),
    }
    if plain_probe:
        # The watermark's cost, paired over the two probes' test images (same seed).
        from .stats import decode_correct, difference_interval

        plain, marked = (read_json(path) for path in (plain_probe, watermarked_probe))
        summary["cost"] = difference_interval(
            decode_correct(plain["correct"], plain["n_test"])[None, :], decode_correct(marked["correct"], marked["n_test"])[None, :]
        )
    for kind, path in (("probe accuracy: watermarked victim", watermarked_probe), ("probe accuracy: plain twin", plain_probe)):
        if path:
            probe = read_json(path)
            low, high = wilson_interval(probe["accuracy"], probe["n_test"])
            rows.append({"kind": kind, "suspect": probe["victim"], "images": probe["n_test"], "accuracy": probe["accuracy"], "ci_low": low, "ci_high": high})
    table = pd.DataFrame(rows)
    table["queries"] = pd.to_numeric(table["queries"]).astype("Int64")
    order = {"watermarked victim": 0, "stolen copy": 1}
    table["_order"] = table["kind"].map(lambda k: order.get(k, 2 if k.startswith("null") else 3))
    table = table.sort_values(["_order", "kind", "suspect", "queries"]).drop(columns="_order").reset_index(drop=True)
    return table, summary


def wilson_interval(accuracy: float, n: int) -> tuple[float, float]:
    """The 95% Wilson score interval of a proportion (scipy's binomtest)."""
    from scipy.stats import binomtest

    interval = binomtest(int(round(accuracy * n)), int(n)).proportion_ci(0.95, method="wilson")
    return interval.low, interval.high


def write_watermark(table: pd.DataFrame, summary: dict, csv_path, markdown_path, figure_path, title: str, style: dict) -> None:
    with atomic_path(csv_path) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")
    verified = table[~table["kind"].str.startswith("probe accuracy")].copy()
    verified["accuracy"] = [_interval_text(*v) for v in zip(verified["accuracy"], verified["ci_low"], verified["ci_high"])]
    verified = verified.drop(columns=["ci_low", "ci_high"])
    for column in ("p_value", "p_adjusted"):
        verified[column] = verified[column].map(lambda p: f"{p:.2g}")
    verified["flagged"] = verified["flagged"].map(lambda f: "yes" if f else "no")
    verified = verified.astype(object).where(verified.notna(), "").rename(
        columns={"accuracy": "watermark accuracy (%) [95% CI]", "p_value": "p vs null", "p_adjusted": "p x suspects"}
    )
    cost = table[table["kind"].str.startswith("probe accuracy")].set_index("kind")
    cost_text = "No plain twin (same config without the watermark) in the config: cost not measured.\n"
    if "cost" in summary:
        shown = {k: _interval_text(*cost.loc[k, ["accuracy", "ci_low", "ci_high"]]) for k in cost.index}
        paid = summary["cost"]
        cost_text = (
            f"Linear-probe accuracy: watermarked victim {shown['probe accuracy: watermarked victim']}%, the same "
            f"victim trained without the watermark ({cost.loc['probe accuracy: plain twin', 'suspect']}) "
            f"{shown['probe accuracy: plain twin']}%: the watermark costs "
            f"{_interval_text(paid.estimate, paid.low, paid.high)} points (paired over the test images; one seed each).\n"
        )
    alpha = summary["false_positive_rate"]
    text = (
        f"# {title}\n\nThe watermarked victim's secret head (rotation in [0, 180) vs [180, 360)) "
        "applied to each encoder's representations of rotated held-out images. Innocent encoders "
        "do not score exactly 50%: their features carry some rotation information, and a test "
        "against chance can accuse them. So the test is "
        f"against a null of {summary['null_encoders']} encoders that never saw the victim (rows "
        f"'null: ...'; mean {summary['null_mean'] * 100:.1f}%, standard deviation "
        f"{summary['null_std'] * 100:.1f} points, range {summary['null_min'] * 100:.1f} to "
        f"{summary['null_max'] * 100:.1f}%): p vs null is the one-sided Student's t prediction "
        "test of a new draw from that null (each null encoder against the others); p x suspects "
        f"is its Bonferroni correction over the {summary['suspects']} suspects tested (the victim and "
        f"its stolen copies). A suspect is flagged when that is below {alpha:g}, i.e. its watermark "
        f"accuracy is above {summary['flag_above'] * 100:.1f}%.\n\n"
        f"**Measured false-positive rate of the procedure**: {int(round(summary['measured_fpr'] * summary['null_encoders']))} "
        f"of {summary['null_encoders']} innocent encoders flagged when held out "
        f"({summary['measured_fpr'] * 100:.0f}% [{summary['measured_fpr_low'] * 100:.0f}, "
        f"{summary['measured_fpr_high'] * 100:.0f}], Wilson 95%); without the correction "
        f"{summary['uncorrected_flags']} would be flagged at p < {alpha:g}.\n\n"
        f"{verified.to_markdown(index=False)}\n\n## Cost\n\n{cost_text}"
    )
    _write_text(markdown_path, text)
    fig, ax = _figure(style)
    null_rows = table[table["kind"].str.startswith("null")]
    ax.axhspan(null_rows["accuracy"].min() * 100, null_rows["accuracy"].max() * 100, color="grey", alpha=0.2,
               label=f"null: {len(null_rows)} innocent encoders (range)")
    ax.axhline(summary["flag_above"] * 100, linestyle="--", color="grey", linewidth=1.2,
               label=f"flagged above (family-wise FPR {alpha:g})")
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
    for _, row in table[table["kind"] == "watermarked victim"].iterrows():
        ax.axhline(row["accuracy"] * 100, linestyle="-", color="black", linewidth=1.2, label=f"watermarked victim: {row['suspect']}")
    ax.axhline(50, linestyle=":", color="grey", label="chance", linewidth=1.2)
    _finish(fig, ax, ("attacker's queries (distinct images)", "watermark accuracy (%)", title), figure_path, style)


# ------------------------------------------------------------------ attack vs defense
ATTACK_VS_DEFENSE_COLUMNS = [
    "victim", "defense", "party", "approach", "loss", "api_calls", "accuracy", "ci_low", "ci_high",
    "drop_points", "drop_low", "drop_high", "cka", "cka_low", "cka_high", "b4b_mean_sigma",
    "watermark_accuracy", "watermark_p", "watermark_flagged", "inference_p", "inference_flagged",
]


def _party_label(cell: dict) -> str:
    return USER if cell["party"] == "user" else f"{cell['approach']} {cell['loss']}"


def attack_vs_defense_table(cells: list[dict], watermark_null: dict, watermark_fpr: float = 0.05) -> pd.DataFrame:
    """One row per (victim, defense, party) of the attack-vs-defense table
    (``targets.attack_vs_defense_cells``): the party's probe accuracy with its 95%
    t-interval over test images (one seed: ``stats``), its drop from the undefended
    API (paired by test image), a copy's linear CKA to the victim with its interval,
    the B4B noise it met, and its ownership verification: the watermark head's accuracy on it with the
    p-value against the null of innocent encoders (``watermark_null``: victim -> their
    records), Bonferroni-corrected over the victim's copies in the table and flagged at
    ``watermark_fpr``; dataset inference's p-value and verdict as its record gives them."""
    from .stats import accuracy_interval, bonferroni, correct_matrix, difference_interval, null_p_value

    records = [read_json(cell["probe"]) for cell in cells]
    correct = [correct_matrix(pd.DataFrame([record])) for record in records]
    undefended = {
        (cell["victim"], _party_label(cell)): matrix for cell, matrix in zip(cells, correct) if cell["defense"] == "none"
    }
    rows = []
    for cell, record, matrix in zip(cells, records, correct):
        label = _party_label(cell)
        accuracy = accuracy_interval(matrix)
        row = {
            "victim": cell["victim"], "defense": cell["defense"], "party": label,
            "approach": cell.get("approach"), "loss": cell.get("loss"), "api_calls": record.get("api_calls"),
            "accuracy": accuracy.estimate, "ci_low": accuracy.low, "ci_high": accuracy.high,
            "cka": record.get("cka"), "cka_low": record.get("cka_low"), "cka_high": record.get("cka_high"),
            "b4b_mean_sigma": record.get("b4b_mean_sigma"),
        }
        clear = undefended.get((cell["victim"], label))
        if cell["defense"] != "none" and clear is not None:
            drop = difference_interval(clear, matrix)
            row.update(drop_points=drop.estimate * 100, drop_low=drop.low * 100, drop_high=drop.high * 100)
        if cell.get("dataset_inference"):
            inference = read_json(cell["dataset_inference"])
            row.update(inference_p=inference.get("p_value"), inference_flagged=bool(inference.get("flagged")))
        if cell.get("watermark"):
            row["watermark_accuracy"] = read_json(cell["watermark"])["accuracy"]
        rows.append(row)
    table = pd.DataFrame(rows).reindex(columns=ATTACK_VS_DEFENSE_COLUMNS)
    table[["watermark_flagged", "inference_flagged"]] = table[["watermark_flagged", "inference_flagged"]].astype(object)
    for victim, null_paths in watermark_null.items():
        null = np.array([read_json(path)["accuracy"] for path in null_paths])
        mine = (table["victim"] == victim) & table["watermark_accuracy"].notna()
        p_values = [null_p_value(value, null) for value in table.loc[mine, "watermark_accuracy"]]
        table.loc[mine, "watermark_p"] = p_values
        table.loc[mine, "watermark_flagged"] = list(bonferroni(p_values, len(p_values)) < watermark_fpr)
    return table


def _verdict_text(flagged, p_value) -> str:
    if flagged is None or pd.isna(flagged):
        return "—"
    p_text = "n/a" if p_value is None or pd.isna(p_value) else f"{p_value:.2g}"
    return f"{'flagged' if flagged else 'not flagged'} (p {p_text})"


def write_attack_vs_defense(table: pd.DataFrame, csv_path, markdown_path, figure_path, style: dict) -> None:
    with atomic_path(csv_path) as tmp:
        table.to_csv(tmp, index=False, float_format="%.4f")
    defenses = list(dict.fromkeys(table["defense"]))
    parties = list(dict.fromkeys(table["party"]))
    text = [
        "# Which attack beats which defense",
        "",
        "Each column is a defense at the API (none = undefended), each row the legitimate user "
        "(its linear probe trained and tested on the answers it gets) or an attack's stolen copy "
        "(probed like the victim), all at one query set and budget and the first seed. "
        "Accuracy with 95% t-intervals over test images only (one seed: training randomness is "
        "not in them); drops from the undefended API with paired intervals (same test images); "
        "fidelity is linear CKA to the victim on held-out images. "
        "Ownership: the watermark (for a watermarked victim; p against the null of encoders that "
        "never saw it, Bonferroni over the copies) and dataset inference (p of the one-sided test "
        "that the copy's training-image log-likelihoods exceed unseen ones); — = not run.",
        "",
    ]

    def matrix(rows: pd.DataFrame, shown: list[str]) -> pd.DataFrame:
        frame = rows.assign(shown=shown).pivot_table(index="party", columns="defense", values="shown", aggfunc="first")
        return frame.reindex(index=[p for p in parties if p in frame.index], columns=defenses).fillna("—")

    for victim, rows in table.groupby("victim", sort=False):
        attacks = rows[rows["party"] != USER]
        accuracy = [_interval_text(*v) for v in zip(rows["accuracy"], rows["ci_low"], rows["ci_high"])]
        drops = [
            "—" if pd.isna(d) else f"{d:.1f} [{lo:.1f}, {hi:.1f}]"
            for d, lo, hi in zip(rows["drop_points"], rows["drop_low"], rows["drop_high"])
        ]
        fidelity = [_interval_text(*v, scale=1.0, digits=3) for v in zip(attacks["cka"], attacks["cka_low"], attacks["cka_high"])]
        text += [
            f"## Victim {victim}", "",
            "### Accuracy (%) [95% CI]", "", matrix(rows, accuracy).to_markdown(), "",
            "### Drop from the undefended API (points) [paired 95% CI]", "", matrix(rows, drops).to_markdown(), "",
            "### Fidelity: linear CKA to the victim [95% CI]", "", matrix(attacks, fidelity).to_markdown(), "",
        ]
        for column, flag, heading in (
            ("watermark_p", "watermark_flagged", "Ownership: watermark"),
            ("inference_p", "inference_flagged", "Ownership: dataset inference"),
        ):
            verdicts = [_verdict_text(f, p) for f, p in zip(attacks[flag], attacks[column])]
            if any(v != "—" for v in verdicts):
                text += [f"### {heading}", "", matrix(attacks, verdicts).to_markdown(), ""]
            else:
                text += [f"### {heading}", "", "Not run for this victim (not configured).", ""]
    _write_text(markdown_path, "\n".join(text))

    victims = list(dict.fromkeys(table["victim"]))
    sns.set_theme(style=style.get("theme", "whitegrid"), context=style.get("context", "paper"))
    width, height = style.get("size", (6.0, 3.6))
    fig, axes = plt.subplots(len(victims), 1, figsize=(width, height * len(victims)), squeeze=False)
    for ax, victim in zip(axes[:, 0], victims):
        rows = table[table["victim"] == victim]
        grid = rows.pivot_table(index="party", columns="defense", values="accuracy", aggfunc="first") * 100
        grid = grid.reindex(index=[p for p in parties if p in grid.index], columns=defenses)
        sns.heatmap(grid, annot=True, fmt=".1f", cmap="viridis", cbar_kws={"label": "linear-probe accuracy (%)"}, ax=ax)
        ax.set_title(f"Attack vs defense: victim {victim}")
        ax.set_xlabel("defense at the API")
        ax.set_ylabel("")
    fig.tight_layout()
    with atomic_path(figure_path) as tmp:
        fig.savefig(tmp, dpi=style.get("dpi", 150), format=Path(figure_path).suffix.lstrip("."))
    plt.close(fig)
