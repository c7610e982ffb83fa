"""Dataset inference (sslsteal.dataset_inference): the density model's log-likelihood
against scikit-learn's, the test's p-value against scipy's, its power and false-positive
rate on synthetic representations, the config's checks and the jobs a config plans."""

import copy
import json
import math
import re
import tempfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from scipy import stats

from sslsteal import config as cfg
from sslsteal import dataset_inference as di
from sslsteal import targets
from sslsteal.errors import ConfigError

from dry_run import planned

ROOT = Path(__file__).resolve().parents[1]
TINY = yaml.safe_load((ROOT / "configs" / "tiny.yaml").read_text())
FULL = yaml.safe_load((ROOT / "configs" / "full.yaml").read_text())
VICTIM = "simclr_synthetic"
EMPTY = Path(tempfile.mkdtemp(prefix="sslsteal-di-"))


def test_log_likelihood_is_sklearns_score_samples_after_the_same_transforms():
    from sklearn.decomposition import PCA
    from sklearn.mixture import GaussianMixture
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 12)) @ rng.normal(size=(12, 12)) + rng.normal(size=12) * 5
    model = di.fit(x, components=3, pca_dim=5, seed=0)
    # The same pipeline with the same seeds, fitted independently by scikit-learn.
    scaler = StandardScaler().fit(x)
    pca = PCA(n_components=5, random_state=0).fit(scaler.transform(x))
    gmm = GaussianMixture(3, covariance_type="diag", random_state=0, reg_covar=1e-6).fit(pca.transform(scaler.transform(x)))
    new = rng.normal(size=(50, 12)) * 2
    expected = gmm.score_samples(pca.transform(scaler.transform(new)))
    assert di.log_likelihood(model, new) == pytest.approx(expected, rel=1e-9, abs=1e-9)
    # Stored as JSON (no pickle) and read back, the same numbers.
    stored = di.model_from_json(json.loads(json.dumps(di.model_to_json(model))))
    assert di.log_likelihood(stored, new) == pytest.approx(expected, rel=1e-9, abs=1e-9)


def test_another_width_is_refused_by_the_model():
    model = di.fit(np.random.default_rng(0).normal(size=(100, 8)), 2, 3, 0)
    with pytest.raises(ValueError, match="8-d"):
        di.log_likelihood(model, np.zeros((5, 6)))


def test_a_suspect_of_another_width_is_recorded_as_not_testable():
    rng = np.random.default_rng(0)
    model = di.fit(rng.normal(size=(200, 8)), 2, 3, 0)
    never = lambda: pytest.fail("the unseen images of an untestable suspect are not computed")  # noqa: E731
    result = di.verify(model, rng.normal(size=(50, 16)), never, 0.05)
    assert result["testable"] is False and result["flagged"] is False and result["p_value"] is None
    assert "16-d" in result["reason"] and "8-d" in result["reason"]
    same = di.verify(model, rng.normal(size=(50, 8)), rng.normal(size=(60, 8)), 0.05)
    assert same["testable"] and same["n_unseen"] == 60 and 0 <= same["p_value"] <= 1


def test_welch_p_value_and_interval_on_hand_made_numbers():
    a, b = [3.0, 4.0, 5.0, 6.0, 7.0], [1.0, 2.5, 3.0, 2.0]
    result = di.test(a, b, significance=0.05)
    # Welch by hand: means 5 and 2.125, variances 2.5 and 0.729167.
    va, vb = 2.5 / 5, (np.var(b, ddof=1)) / 4
    t = (5 - 2.125) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / 4 + vb**2 / 3)
    assert result["statistic"] == pytest.approx(t) and result["df"] == pytest.approx(df)
    assert result["p_value"] == pytest.approx(stats.t.sf(t, df))
    assert result["p_value"] == pytest.approx(stats.ttest_ind(a, b, equal_var=False, alternative="greater").pvalue)
    half = stats.t.ppf(0.975, df) * math.sqrt(va + vb)
    assert (result["difference_low"], result["difference_high"]) == pytest.approx((2.875 - half, 2.875 + half))
    assert result["flagged"] and (result["n_train"], result["n_unseen"]) == (5, 4)
    assert not di.test(b, a)["flagged"]  # one-sided: lower training scores are never flagged


def test_samples_are_seeded_and_disjoint():
    fit_idx, score_idx = di.samples(1000, 300, 200, seed=3)
    assert len(set(fit_idx) | set(score_idx)) == 500 and len(set(fit_idx) & set(score_idx)) == 0
    assert (di.samples(1000, 300, 200, seed=3)[1] == score_idx).all()
    with pytest.raises(ValueError, match="exceed the 400"):
        di.samples(400, 300, 200, seed=0)


def synthetic_draw(rng, shift: float, n: int = 300, dim: int = 10):
    """A victim's fit sample, and a suspect's training and unseen representations: the
    training ones pulled ``shift`` towards the mixture's centres (what a model that fits
    its training data better does)."""
    centres = np.array([np.full(dim, -2.0), np.full(dim, 2.0)])

    def draw(m, spread):
        return centres[rng.integers(0, 2, m)] + rng.normal(scale=spread, size=(m, dim))

    return draw(2000, 1.0), draw(n, 1.0 - shift), draw(n, 1.0)


def test_a_suspect_whose_training_representations_fit_better_is_flagged():
    rng = np.random.default_rng(1)
    fit_x, train_x, unseen_x = synthetic_draw(rng, shift=0.2)
    model = di.fit(fit_x, 2, 4, 0)
    result = di.test(di.log_likelihood(model, train_x), di.log_likelihood(model, unseen_x))
    assert result["flagged"] and result["p_value"] < 1e-6 and result["difference_low"] > 0


def test_identical_distributions_are_flagged_at_about_the_significance():
    """200 draws with no train/unseen difference: flagged share within the binomial's
    99.9% range around 5% (observed: see the assertion's numbers)."""
    rng = np.random.default_rng(2)
    fit_x = synthetic_draw(rng, 0.0)[0]
    model = di.fit(fit_x, 2, 4, 0)
    draws = 200
    flagged = 0
    for _ in range(draws):
        _, train_x, unseen_x = synthetic_draw(rng, shift=0.0, n=100)
        flagged += di.test(di.log_likelihood(model, train_x), di.log_likelihood(model, unseen_x), 0.05)["flagged"]
    low, high = stats.binom.ppf([0.0005, 0.9995], draws, 0.05)
    assert low <= flagged <= high, flagged


# --- config ---------------------------------------------------------------------------------


def refused(config):
    with pytest.raises(ConfigError) as error:
        cfg.load(config, workdir=EMPTY)
    assert "\n" not in str(error.value)
    return error.value


def edited(edit, base=TINY):
    config = copy.deepcopy(base)
    edit(config["defenses"]["dataset_inference"])
    return config


BAD = {
    "unknown key": (lambda b: b.update(gmm=3), "defenses.dataset_inference", "allowed keys"),
    "unknown victim": (lambda b: b.update(victims=["nobody"]), "defenses.dataset_inference.victims", "not under victims"),
    "samples larger than the training split": (
        lambda b: b.update(fit_images=1000, score_images=201),
        "defenses.dataset_inference.score_images",
        "exceed the 1200 images",
    ),
    "unseen images beyond the test split": (lambda b: b.update(unseen_last=601), "defenses.dataset_inference.unseen_last", "exceeds the 600"),
    "unseen images an attacker queried": (lambda b: b.update(unseen_last=201), "defenses.dataset_inference.unseen_last", "overlap query set"),
    "unseen images of another dataset": (lambda b: b.update(dataset="digits"), "defenses.dataset_inference.dataset", "own distribution"),
    "zero components": (lambda b: b.update(components=0), "defenses.dataset_inference.components", "minimum of 1"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_block_is_refused_with_one_line_naming_the_key(case):
    edit, key, says = BAD[case]
    error = refused(edited(edit))
    assert error.key == key and says in str(error), str(error)


def test_defaults_and_targets():
    config = cfg.load(copy.deepcopy(TINY), workdir=EMPTY)
    options = cfg.dataset_inference_options(config, VICTIM)
    assert options["seed"] == 0 and options["significance"] == 0.05 and options["train_images"] == 1200
    assert options["dataset"] == "synthetic" and options["train_split"] == "train"
    suspects = targets.dataset_inference_suspects(config, VICTIM)
    null = targets.dataset_inference_null(config, VICTIM)
    assert suspects[0] == targets.dataset_inference_record(VICTIM, "victim") == f"results/dataset_inference/{VICTIM}/victim/{VICTIM}.json"
    assert targets.dataset_inference_record(VICTIM, "stolen", ("direct", "mse", "synthetic_test", 400, 0)) in suspects
    defended = targets.dataset_inference_record(VICTIM, "stolen", ("direct", "mse", "synthetic_test", 400, 0), defense="poisoning_sigma0.3")
    assert defended == f"results/dataset_inference/{VICTIM}/defended/poisoning_sigma0.3/stolen/direct/mse/synthetic_test/400/seed0.json"
    # The victim, 14 copies at seed 0, poisoning (2 sigmas) and B4B (2 sybil counts) on one attack, detection on two.
    assert defended in suspects and len(suspects) == 1 + 14 + 2 + 2 + 2
    assert len(null) == 3 + 1 + 2 + 2  # other victims, the twin, own SSL, random init
    assert targets.dataset_inference_record(VICTIM, "random_init", (1,)) in null
    assert targets.dataset_inference_record(VICTIM, "own_ssl", ("synthetic_test", 100, 0)) in null
    assert targets.dataset_inference_record(VICTIM, "independent") in null
    pattern = re.compile(
        r"results/dataset_inference/(?P<victim>[a-z_]+)/(?:defended/(?P<defense>[^/]+)/)?stolen/(?P<approach>\w+?)/"
        r"(?P<loss>[a-z]+)/(?P<query_set>\w+)/(?P<budget>\d+)/seed(?P<seed>\d+)\.json"
    )
    for path in suspects[1:]:
        wildcards = {k: v for k, v in pattern.fullmatch(path).groupdict().items() if v is not None}
        targets.check_wildcards(config, wildcards)
    assert f"paper_figures/{VICTIM}/dataset_inference.png" in targets.paper_figure_outputs(config)
    # Only the listed victims get a table; the default config has none.
    assert not [p for p in targets.paper_figure_outputs(cfg.load(copy.deepcopy(FULL), workdir=EMPTY)) if "dataset_inference" in p and VICTIM in p]
    default = cfg.load(yaml.safe_load((ROOT / "config.yaml").read_text()), workdir=EMPTY)
    assert not [p for p in targets.paper_figure_outputs(default) if "dataset_inference" in p]


# --- jobs -----------------------------------------------------------------------------------


def test_the_table_plans_one_job_per_record(tmp_path):
    """configs/tiny.yaml's simclr_synthetic: the fit, the victim and the 3 other victims on
    its data, 14 stolen copies at seed 0, 6 copies stolen from defended answers (2
    poisoning settings x 1 attack, detection x 2 attacks, 2 B4B sybil counts x 1 attack), its independent twin, 2
    own-SSL encoders, 2 random-init encoders, the table."""
    jobs = planned(tmp_path, ROOT / "configs" / "tiny.yaml", f"paper_figures/{VICTIM}/dataset_inference.csv")
    di_jobs = {k: v for k, v in jobs.items() if "dataset_inference" in k}
    assert di_jobs == {
        "fit_dataset_inference": 1,
        "verify_dataset_inference_victim": 4,
        "verify_dataset_inference_stolen": 14,
        "verify_dataset_inference_defended": 6,
        "verify_dataset_inference_independent": 1,
        "verify_dataset_inference_own_ssl": 2,
        "verify_dataset_inference_random_init": 2,
        "dataset_inference_table": 1,
    }
    one = planned(tmp_path, ROOT / "configs" / "tiny.yaml", f"results/dataset_inference/{VICTIM}/random_init/seed7.json")
    assert one == {"prepare_dataset": 1, "train_victim": 1, "fit_dataset_inference": 1, "verify_dataset_inference_random_init": 1}
