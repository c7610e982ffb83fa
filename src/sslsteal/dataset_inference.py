"""Dataset inference for self-supervised encoders (Dziedzic, Duan, Kaleem, Dhawan, Guan,
Cattan, Boenisch and Papernot, "Dataset Inference for Self-Supervised Models", NeurIPS
2022): an ownership test the defender runs with its private training data.

1. :func:`fit`: a density model of the victim's representations of part of its
   training data (our choice: standardise, PCA to ``pca_dim`` dimensions, a
   diagonal-covariance Gaussian mixture of ``components``; scikit-learn fits it).
2. :func:`log_likelihood`: a suspect's representations of another part of the training
   data and of unseen images from the same distribution, scored under that model by
   our own function (the model is plain arrays, stored as JSON: no pickle).
3. :func:`test`: Welch's one-sided t-test of "training log-likelihoods are higher than
   unseen ones"; the suspect is flagged when p < significance. A stolen copy mimics the
   victim's representations and inherits its train/unseen gap.

Torch-free: numpy, scipy and scikit-learn (the table parts import pandas lazily).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

MODEL_ARRAYS = ("scaler_mean", "scaler_scale", "pca_mean", "pca_components", "weights", "means", "variances")


def samples(n_train: int, fit_images: int, score_images: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded disjoint samples of the victim's ``n_train`` training images: indices to
    fit the density model on and indices to score suspects on (each sorted)."""
    if fit_images + score_images > n_train:
        raise ValueError(f"fit_images {fit_images} + score_images {score_images} exceed the {n_train} training images")
    order = np.random.default_rng(seed).permutation(n_train)
    return np.sort(order[:fit_images]), np.sort(order[fit_images : fit_images + score_images])


def fit(representations: np.ndarray, components: int, pca_dim: int, seed: int) -> dict:
    """The density model of the victim's ``representations`` (N x d) as plain arrays:
    the standardisation (mean, scale), the PCA (mean, components: pca_dim x d) and the
    diagonal Gaussian mixture (weights, means and variances in PCA space)."""
    from sklearn.decomposition import PCA
    from sklearn.mixture import GaussianMixture
    from sklearn.preprocessing import StandardScaler

    x = np.asarray(representations, dtype=np.float64)
    if pca_dim > min(x.shape):
        raise ValueError(f"pca_dim {pca_dim} exceeds min(images, width) = {min(x.shape)} of the representations")
    scaler = StandardScaler().fit(x)
    z = scaler.transform(x)
    pca = PCA(n_components=pca_dim, random_state=seed).fit(z)
    gmm = GaussianMixture(n_components=components, covariance_type="diag", random_state=seed, reg_covar=1e-6).fit(
        pca.transform(z)
    )
    return {
        "dim": int(x.shape[1]),
        "scaler_mean": scaler.mean_,
        "scaler_scale": scaler.scale_,
        "pca_mean": pca.mean_,
        "pca_components": pca.components_,
        "weights": gmm.weights_,
        "means": gmm.means_,
        "variances": gmm.covariances_,
        "converged": bool(gmm.converged_),
    }


def project(model: dict, representations: np.ndarray) -> np.ndarray:
    """The model's transforms (standardise, then PCA) applied to ``representations``."""
    x = np.asarray(representations, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != model["dim"]:
        raise ValueError(f"representations of shape {x.shape}; the density model reads {model['dim']}-d ones")
    z = (x - np.asarray(model["scaler_mean"])) / np.asarray(model["scaler_scale"])
    return (z - np.asarray(model["pca_mean"])) @ np.asarray(model["pca_components"]).T


def log_likelihood(model: dict, representations: np.ndarray) -> np.ndarray:
    """Each representation's log-density under the model's mixture, in PCA space (what
    scikit-learn's ``GaussianMixture.score_samples`` gives after the same transforms)."""
    from scipy.special import logsumexp

    y = project(model, representations)
    weights, means, variances = (np.asarray(model[k], dtype=np.float64) for k in ("weights", "means", "variances"))
    # log N(y | mu_k, diag(var_k)) for every point and component.
    squared = ((y[:, None, :] - means[None]) ** 2 / variances[None]).sum(axis=2)
    log_norm = -0.5 * (y.shape[1] * np.log(2 * np.pi) + np.log(variances).sum(axis=1))
    return logsumexp(np.log(weights)[None] + log_norm[None] - 0.5 * squared, axis=1)


def test(train_ll: np.ndarray, unseen_ll: np.ndarray, significance: float = 0.05) -> dict:
    """Welch's one-sided t-test that the training images' log-likelihoods are higher than
    the unseen images': its statistic and p-value, each side's n, mean and standard
    deviation, the difference of the means with its two-sided 95% Welch interval, and
    whether the suspect is flagged (p < ``significance``)."""
    from scipy import stats

    a, b = (np.asarray(v, dtype=np.float64) for v in (train_ll, unseen_ll))
    result = stats.ttest_ind(a, b, equal_var=False, alternative="greater")
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    difference = float(a.mean() - b.mean())
    half = float(stats.t.ppf(0.975, df) * np.sqrt(va + vb))
    p_value = float(result.pvalue)
    return {
        "n_train": len(a),
        "n_unseen": len(b),
        "train_mean": float(a.mean()),
        "train_std": float(a.std(ddof=1)),
        "unseen_mean": float(b.mean()),
        "unseen_std": float(b.std(ddof=1)),
        "difference": difference,
        "difference_low": difference - half,
        "difference_high": difference + half,
        "statistic": float(result.statistic),
        "df": float(df),
        "p_value": p_value,
        "significance": significance,
        "flagged": bool(p_value < significance),
    }


def verify(model: dict, train_representations: np.ndarray, unseen_representations, significance: float) -> dict:
    """A suspect's verdict: :func:`test` of its representations' log-likelihoods, with
    ``testable`` true; or, when its width differs from the victim's, not testable
    (flagged false, p-value None, the reason) rather than an error: a copy trained
    through a head could have any width. ``unseen_representations`` may be a function
    returning them (not called for an untestable suspect)."""
    width = np.asarray(train_representations).shape[1]
    if width != model["dim"]:
        reason = f"{width}-d representations; the victim's density model reads {model['dim']}-d"
        return {"testable": False, "flagged": False, "p_value": None, "significance": significance, "reason": reason}
    unseen = unseen_representations() if callable(unseen_representations) else unseen_representations
    result = test(log_likelihood(model, train_representations), log_likelihood(model, unseen), significance)
    return {"testable": True, **result}


# --- storing the model (JSON, no pickle) ----------------------------------------------------


def model_to_json(model: dict) -> dict:
    return {k: (np.asarray(v).tolist() if k in MODEL_ARRAYS else v) for k, v in model.items()}


def model_from_json(stored: dict) -> dict:
    return {k: (np.asarray(v, dtype=np.float64) if k in MODEL_ARRAYS else v) for k, v in stored.items()}


# --- the table --------------------------------------------------------------------------------

NULL_KINDS = {
    "victim": "other victim",
    "independent": "independent twin",
    "own_ssl": "attacker's own SSL",
    "random_init": "random init",
}


def _row(record: dict) -> dict:
    kind = record["suspect_kind"]
    cell = f"{record.get('approach')} {record.get('loss')}, {record.get('query_set')}"
    if kind == "victim" and record["suspect"] == record["victim"]:
        kind_text, suspect = "victim", record["suspect"]
    elif kind == "stolen":
        kind_text, suspect = "stolen copy", cell
    elif kind == "defended_stolen":
        kind_text, suspect = f"stolen copy, {record['defense']}", cell
    else:
        kind_text = f"null: {NULL_KINDS[kind]}"
        suspect = record["suspect"] if kind != "random_init" else f"seed {record['seed']}"
        if kind == "own_ssl":
            suspect = f"{record['suspect']} {record['query_set']} {record['budget']} seed {record['seed']}"
    return {
        "kind": kind_text,
        "suspect": suspect,
        "queries": record.get("queries"),
        "testable": record["testable"],
        "n_train": record.get("n_train"),
        "n_unseen": record.get("n_unseen"),
        "train_mean": record.get("train_mean"),
        "unseen_mean": record.get("unseen_mean"),
        "difference": record.get("difference"),
        "difference_low": record.get("difference_low"),
        "difference_high": record.get("difference_high"),
        "statistic": record.get("statistic"),
        "p_value": record.get("p_value"),
        "flagged": bool(record["flagged"]),
        "reason": record.get("reason", ""),
    }


def table(suspects: list[str | Path], null: list[str | Path]) -> tuple["pd.DataFrame", dict]:  # noqa: F821
    """One row per tested encoder (the suspects, then the null of encoders that never saw
    the victim's answers) and a summary: the measured false-positive rate, the flagged
    share of the testable null encoders with its 95% Wilson interval."""
    import pandas as pd

    from .defense_tables import wilson_interval
    from .io import read_json

    records = [read_json(p) for p in suspects], [read_json(p) for p in null]
    suspect_rows, null_rows = ([_row(r) for r in group] for group in records)
    testable = [r for r in null_rows if r["testable"]]
    flagged = sum(r["flagged"] for r in testable)
    significance = records[0][0]["significance"] if records[0] else 0.05
    summary = {
        "significance": significance,
        "null_encoders": len(null_rows),
        "null_testable": len(testable),
        "null_flagged": flagged,
    }
    if testable:
        low, high = wilson_interval(flagged / len(testable), len(testable))
        summary.update(measured_fpr=flagged / len(testable), measured_fpr_low=low, measured_fpr_high=high)
    frame = pd.DataFrame(suspect_rows + null_rows)
    frame["queries"] = pd.to_numeric(frame["queries"]).astype("Int64")
    return frame, summary


def write_table(frame, summary: dict, csv_path, markdown_path, figure_path, title: str, style: dict) -> None:
    """The table as CSV and Markdown, and a figure of each encoder's log-likelihood gap
    (training minus unseen images, 95% interval), flagged ones marked."""
    import pandas as pd

    from .defense_tables import _finish, _figure, _write_text
    from .io import atomic_path
    from .tables import _interval_text

    with atomic_path(csv_path) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.6g")
    shown = frame.copy()
    shown["gap [95% CI]"] = [
        _interval_text(d, lo, hi, scale=1, digits=3) if t else "" for d, lo, hi, t in
        zip(shown["difference"], shown["difference_low"], shown["difference_high"], shown["testable"])
    ]
    shown["p_value"] = shown["p_value"].map(lambda p: "" if p is None or p != p else f"{p:.2g}")
    shown["flagged"] = shown["flagged"].map(lambda f: "yes" if f else "no")
    shown = shown[["kind", "suspect", "queries", "gap [95% CI]", "p_value", "flagged", "reason"]]
    shown = shown.astype(object).where(shown.notna(), "")
    alpha = summary["significance"]
    if "measured_fpr" in summary:
        fpr = (
            f"**Measured false-positive rate**: {summary['null_flagged']} of {summary['null_testable']} testable "
            f"null encoders flagged ({summary['measured_fpr'] * 100:.0f}% [{summary['measured_fpr_low'] * 100:.0f}, "
            f"{summary['measured_fpr_high'] * 100:.0f}], Wilson 95%).\n\n"
        )
    else:
        fpr = "No testable null encoder: the false-positive rate is not measured.\n\n"
    text = (
        f"# {title}\n\nDataset inference (Dziedzic et al., NeurIPS 2022): a Gaussian mixture fitted on the "
        "victim's representations of part of its training data scores each encoder's representations of "
        "other training images and of unseen test images; gap is the mean log-likelihood of the training "
        "images minus the unseen ones' (95% Welch interval), p the one-sided Welch t-test of a positive gap. "
        f"An encoder is flagged when p < {alpha:g} (no correction over suspects). Rows 'null: ...' never saw "
        "the victim's answers (other victims and independent twins did train on the same training images: "
        "a harder null than the paper's). An encoder whose representation width differs from the "
        f"victim's is not testable.\n\n{fpr}{shown.to_markdown(index=False)}\n"
    )
    _write_text(markdown_path, text)
    fig, ax = _figure(style)
    testable = frame[frame["testable"]].reset_index(drop=True)
    labels = [
        f"{k}: {s}" + ("" if pd.isna(q) or not q else f", {int(q):,} queries")
        for k, s, q in zip(testable["kind"], testable["suspect"], testable["queries"])
    ]
    y = np.arange(len(testable))
    for flagged, colour, name in ((True, "tab:red", f"flagged (p < {alpha:g})"), (False, "tab:grey", "not flagged")):
        part = testable["flagged"] == flagged
        if part.any():
            d = testable.loc[part, "difference"]
            error = [d - testable.loc[part, "difference_low"], testable.loc[part, "difference_high"] - d]
            ax.errorbar(d, y[part.to_numpy()], xerr=error, fmt="o", color=colour, capsize=3, markersize=4, label=name)
    ax.axvline(0, color="black", linewidth=1)
    ax.set_yticks(y, labels, fontsize="x-small")
    ax.invert_yaxis()
    _finish(fig, ax, ("log-likelihood gap: training minus unseen images", "", title), figure_path, style)
