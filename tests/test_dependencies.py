"""The dependencies are declared once, in pyproject.toml; the rules' conda environment
(envs/sslsteal.yaml) must repeat them exactly, since it cannot install the package."""

import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_conda_environment_has_the_packages_dependencies():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    environment = yaml.safe_load((ROOT / "envs" / "sslsteal.yaml").read_text())
    pip = next(entry["pip"] for entry in environment["dependencies"] if isinstance(entry, dict))
    assert pip == project["dependencies"]
    python = next(entry for entry in environment["dependencies"] if str(entry).startswith("python="))
    assert project["requires-python"] == ">=" + python.removeprefix("python=")
