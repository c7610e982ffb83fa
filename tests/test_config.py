"""The config checks of ``sslsteal.config``, called directly (no Snakemake, no torch):
each bad input is refused with one line naming the key."""

import copy
from pathlib import Path

import pytest
import yaml

from sslsteal import config as checks

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = yaml.safe_load((ROOT / "config.yaml").read_text())
SPLITS = {("fashion_mnist", "train"): 60000, ("fashion_mnist", "test"): 10000, ("digits", "train"): 1497}


def split_size(dataset, split):
    return SPLITS[(dataset, split)]


def pool_size(name):
    query_set = DEFAULT["query_sets"][name]
    if "noise" in query_set:
        return query_set["noise"]["n"]
    return split_size(query_set["dataset"], query_set["split"]) - query_set.get("exclude_last", 0)


def check(config):
    checks.check(config, split_size, pool_size)


def edited(**changes):
    config = copy.deepcopy(DEFAULT)
    for path, value in changes.items():
        *parents, last = path.split("__")
        node = config
        for key in parents:
            node = node[int(key)] if key.isdigit() else node[key]
        node[last] = value
    return config


def test_the_default_config_passes():
    check(DEFAULT)


@pytest.mark.parametrize(
    "changes, key, words",
    [
        # The probe would test on images it trained on: every accuracy inflated.
        ({"probe__downstream__fashion_mnist__train_split": "test"}, "probe.downstream.fashion_mnist.train_split", "same split"),
        ({"probe__downstream__fashion_mnist__train_size": 1000}, "probe.downstream.fashion_mnist.labels_per_class", "not both"),
        ({"probe__downstream__fashion_mnist__test_last": 20000}, "probe.downstream.fashion_mnist.test_last", "exceeds"),
        ({"seeds": [0, 1, 1]}, "seeds", "repeats"),
        ({"extraction__grid__0__seeds": [2, 2]}, "extraction.grid[0].seeds", "repeats"),
        ({"baselines__own_ssl__budgets": [1000, 6000]}, "baselines.own_ssl.budgets", "exceed the 5000 images"),
        ({"baselines__own_ssl__query_sets": ["cifar10_test"]}, "baselines.own_ssl.query_sets", "not under query_sets"),
        ({"baselines__own_ssl__victims": ["nobody"]}, "baselines.own_ssl.victims", "not a trained victim"),
        ({"baselines__independent__seed": 0}, "baselines.independent.seed", "must differ"),
        (
            {"extraction__loss_options__softnn": {"lr": 0.001, "batch_size": 128, "temperature": 100.0, "temperature_factor": 1.0}},
            "extraction.loss_options.softnn",
            "exactly one",
        ),
    ],
)
def test_bad_inputs_are_refused_naming_the_key(changes, key, words):
    with pytest.raises(checks.ConfigError) as error:
        check(edited(**changes))
    assert error.value.key == key
    message = str(error.value)
    assert message.startswith(f"config error at {key}: ") and words in message and "\n" not in message


def test_cells_and_seeds():
    cells = checks.extraction_cells(DEFAULT, "simclr_fashion_mnist")
    headline = [c for c in cells if c[0] == "direct" and c[2] == "fashion_mnist_test"]
    assert len(headline) == 4 * 2 * 3 and {c[-1] for c in headline} == {0, 1, 2}
    assert {c[-1] for c in cells if c[0] != "direct"} == {0}
    assert checks.own_ssl_cells(DEFAULT, "simclr_fashion_mnist") == [("fashion_mnist_test", 1000, 0), ("fashion_mnist_test", 5000, 0)]
    assert checks.probe_seeds(DEFAULT) == [0, 1, 2]
    assert checks.independent_victims(DEFAULT) == ["simclr_fashion_mnist"]


FULL = yaml.safe_load((ROOT / "configs" / "full.yaml").read_text())


def test_the_full_config_passes_and_its_watermark_null_is_every_innocent():
    """configs/full.yaml: the watermarked SimCLR's null holds the 3 plain victims, the 4
    independent twins (its own among them), the 6 own-SSL encoders of the plain victims
    (3 victims x 2 budgets, seed 0) and 5 random-init encoders: 18; never a copy of the
    watermarked victim, nor an own-SSL encoder trained with its recipe (and watermark)."""
    checks.check(FULL, split_size, pool_size)
    innocents = checks.watermark_innocents(FULL, "simclr_wm_fashion_mnist")
    assert len(innocents) == 18
    assert sum(name.startswith("victim/") for name in innocents) == 3
    assert "victim/simclr_wm_fashion_mnist" not in innocents
    assert sum(name.startswith("random_init/") for name in innocents) == 5
    assert not any("stolen" in name or name.startswith("own_ssl/simclr_wm") for name in innocents)


@pytest.mark.parametrize(
    "edit, key, words",
    [
        # Calibrating on the attack's own split would set the operating point on attack queries.
        (lambda c: c["defenses"]["detection"].update(calibration={"split": "test"}), "defenses.detection.calibration.split", "legitimate"),
        # Shorter than the head-recreation attacker's 5,000 x 2 calls.
        (lambda c: c["defenses"]["detection"].update(calibration={"queries": 9999}), "defenses.detection.calibration.queries", "10000 calls"),
        # One trained victim, no baselines, 2 random-init encoders: a null of 2.
        (
            lambda c: (
                c["victims"].update({"simclr_wm_fashion_mnist": c["victims"]["simclr_wm_fashion_mnist"]}),
                [c["victims"].pop(v) for v in ("simclr_fashion_mnist", "simsiam_fashion_mnist", "barlow_twins_fashion_mnist")],
                c.pop("baselines"),
                c["defenses"].pop("poisoning"),
                c["defenses"].pop("detection"),
                c["extraction"].update(grid=[g for g in c["extraction"]["grid"] if g["victims"] == ["simclr_wm_fashion_mnist"]]),
                c["defenses"]["watermark"].update(random_init=2),
            ),
            "defenses.watermark.random_init",
            "at least 5",
        ),
    ],
)
def test_defense_inputs_are_refused_naming_the_key(edit, key, words):
    config = copy.deepcopy(FULL)
    edit(config)
    with pytest.raises(checks.ConfigError, match=key.replace(".", r"\.")) as error:
        checks.check(config, split_size, pool_size)
    assert words in str(error.value)
