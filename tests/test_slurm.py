"""The workflow through a real SLURM: a one-node cluster started on this machine
(tests/slurm/local_slurm.sh: slurmctld, slurmd, munged; two fake GPUs), the tiny config
cut to one victim and one extraction cell, run to paper_figures with profiles/slurm
(CI-specific bits from tests/slurm/profile). Needs root (it installs SLURM with apt-get
when absent and starts its daemons); skipped otherwise, with the reason.

The cluster's config lives under its base folder, found through SLURM_CONF (set for
this test's duration only): /etc is left as it was found, which the fixture checks
after stopping the daemons. A slurm.conf left in /etc/slurm would make every later
snakemake call on the machine wait 9 s for a controller that is gone (the SLURM
executor plugin runs `scontrol show config` at start-up)."""

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from sslsteal.backbones import load_encoder

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "configs" / "tiny.yaml"
SCRIPT = ROOT / "tests" / "slurm" / "local_slurm.sh"
SLURM_PROFILE = ROOT / "profiles" / "slurm" / "config.yaml"
CI_PROFILE = ROOT / "tests" / "slurm" / "profile" / "config.yaml"
# Not pytest's tmp_path: slurmctld runs as user slurm and must reach its state folder,
# and pytest's base folder is root-only.
SLURM_BASE = Path("/tmp/sslsteal-test-slurm")
SLURM_CONF = SLURM_BASE / "etc" / "slurm.conf"  # written by local_slurm.sh start
# slurmd runs configless: its cached copy of the config, found there by the commands
# inside jobs (local_slurm.sh); removed by `stop`.
CONFIGLESS_CACHE = Path("/run/slurm/conf/slurm.conf")
# No accounting database (so no MariaDB to install), two fake GPUs.
CLUSTER_OPTIONS = {"WITH_DBD": "0", "FAKE_GPUS": "2"}
VICTIM, DOWNSTREAM, CELL = "simclr_synthetic", "synthetic", "direct/mse/synthetic_test/100"
# The jobs of paper_figures for one victim and one cell that go through sbatch; the
# data, table and figure rules are local rules and run beside snakemake.
REMOTE_RULES = {
    "train_victim",
    "dump_victim",
    "extract",
    "probe_stolen",
    "probe_victim",
    "probe_random_init",
    "probe_raw_pixels",
}
GPU_RULES = REMOTE_RULES  # every remote rule here runs an encoder or a probe
SNAKEMAKE_TIMEOUT_S = 420

pytestmark = pytest.mark.integration


def skip_reason() -> str | None:
    if not sys.platform.startswith("linux"):
        return "a local SLURM needs Linux"
    if os.geteuid() != 0:
        return "starting slurmctld, slurmd and munged needs root (CI runs this test as root)"
    have_slurm = all(shutil.which(tool) for tool in ("slurmctld", "slurmd", "munged", "sbatch"))
    if not have_slurm and not shutil.which("apt-get"):
        return "SLURM is not installed and apt-get is not available to install it"
    conf = Path("/etc/slurm/slurm.conf")
    if conf.exists() and "ClusterName=localcluster" not in conf.read_text():
        # A real cluster's node: its daemons and ours would want the same ports.
        return f"{conf} belongs to another SLURM installation; not starting a second one beside it"
    return None


def slurm_script(action: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(SCRIPT), action],
        env={**os.environ, "SLURM_BASE": str(SLURM_BASE), **env},
        capture_output=True,
        text=True,
        timeout=900,  # apt-get on a fresh machine
    )


def stop_local_slurm() -> None:
    """Cancel the jobs still on our one-node cluster (a failed or timed-out run leaves
    them), then stop the daemons the script started (by their PID files)."""
    if shutil.which("squeue") and SLURM_CONF.exists() and (SLURM_BASE / "run" / "slurmctld.pid").exists():
        ours = {**os.environ, "SLURM_CONF": str(SLURM_CONF)}
        queued = subprocess.run(["squeue", "-h", "-o", "%i"], capture_output=True, text=True, timeout=30, env=ours)
        ids = queued.stdout.split()
        if ids:
            subprocess.run(["scancel", *ids], capture_output=True, timeout=30, env=ours)
    slurm_script("stop")
    shutil.rmtree(SLURM_BASE, ignore_errors=True)


def tree_state(root: Path) -> dict[str, tuple]:
    """Every entry under ``root`` (itself included, symbolic links not followed) with
    its type, permissions, owner, size and modification time: metadata only, no file
    is read. A file written, created, removed or re-owned shows."""

    def metadata(path) -> tuple:
        entry = os.lstat(path)
        mode = entry.st_mode
        return stat.S_IFMT(mode), stat.S_IMODE(mode), entry.st_uid, entry.st_gid, entry.st_size, entry.st_mtime_ns

    state = {str(root): metadata(root)}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(folder, name)
            try:
                state[path] = metadata(path)
            except FileNotFoundError:  # removed while we walked
                continue
    return state


def tree_changes(before: dict[str, tuple], after: dict[str, tuple]) -> list[str]:
    return sorted(
        [f"created {p}" for p in after.keys() - before.keys()]
        + [f"removed {p}" for p in before.keys() - after.keys()]
        + [f"changed {p}" for p in before.keys() & after.keys() if before[p] != after[p]]
    )


def test_tree_state_sees_a_created_a_changed_and_a_removed_file(tmp_path):
    (tmp_path / "kept").write_text("a")
    (tmp_path / "edited").write_text("a")
    (tmp_path / "removed").write_text("a")
    before = tree_state(tmp_path)
    assert tree_changes(before, tree_state(tmp_path)) == []
    os.utime(tmp_path / "edited", ns=(0, 1))
    (tmp_path / "removed").unlink()
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "created").write_text("b")
    assert tree_changes(before, tree_state(tmp_path)) == [
        f"changed {tmp_path}",  # the folder itself: an entry was added and one removed
        f"changed {tmp_path / 'edited'}",
        f"created {tmp_path / 'sub'}",
        f"created {tmp_path / 'sub' / 'created'}",
        f"removed {tmp_path / 'removed'}",
    ]


@pytest.fixture
def local_slurm(monkeypatch):
    """A one-node SLURM for one test; on the way out (also when the test fails) its
    jobs are cancelled, its daemons stopped, its base folder removed, and /etc is
    checked to be as it was before the cluster was configured and started (and no
    cached config left in /run for SLURM's commands to find)."""
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    # Installing the packages (when absent) is the one change to /etc this test makes.
    installed = slurm_script("install", **CLUSTER_OPTIONS)
    if installed.returncode != 0:
        pytest.fail(f"SLURM's packages did not install:\n{installed.stdout[-3000:]}\n{installed.stderr[-3000:]}")
    etc_before = tree_state(Path("/etc"))
    assert "/etc/passwd" in etc_before  # the snapshot did see /etc
    cache_before = CONFIGLESS_CACHE.exists()
    # Our cluster's config, for this test's commands and snakemake (tests/conftest.py
    # points every other test at an empty one); restored by monkeypatch afterwards.
    monkeypatch.setenv("SLURM_CONF", str(SLURM_CONF))
    # A fresh state folder: a node state saved by an earlier run (e.g. drained) would
    # otherwise come back.
    stop_local_slurm()
    try:
        started = slurm_script("start", **CLUSTER_OPTIONS)
        if started.returncode != 0:
            pytest.fail(f"local SLURM did not start:\n{started.stdout[-3000:]}\n{started.stderr[-3000:]}")
        yield
    finally:
        stop_local_slurm()
        changed = tree_changes(etc_before, tree_state(Path("/etc")))
        assert not changed, "the local SLURM left /etc changed:\n" + "\n".join(changed[:50])
        assert cache_before or not CONFIGLESS_CACHE.exists(), f"the local SLURM left {CONFIGLESS_CACHE}"


def one_cell_config(path: Path) -> Path:
    """configs/tiny.yaml with one victim and one extraction cell: every rule of the
    workflow, 7 sbatch jobs."""
    config = yaml.safe_load(TINY.read_text())
    config["victims"] = {VICTIM: config["victims"][VICTIM]}
    config["defenses"] = {}  # tested locally (tests/test_workflow.py); here: one chain
    config["baselines"] = {}  # likewise
    config["paper_figures"].pop("attack_vs_defense")  # likewise (it attacks the watermarked victim)
    approach, loss, query_set, budget = CELL.split("/")
    config["extraction"]["grid"] = [
        {"approaches": [approach], "losses": [loss], "query_sets": [query_set], "budgets": [int(budget)]}
    ]
    path.write_text(yaml.safe_dump(config))
    return path


def ci_profile(folder: Path) -> Path:
    """tests/slurm/profile with set-resources merged into the real profile's per rule and
    per resource (Snakemake would replace the real profile's set-resources whole)."""
    real = yaml.safe_load(SLURM_PROFILE.read_text())["set-resources"]
    ci = yaml.safe_load(CI_PROFILE.read_text())
    ci["set-resources"] = {
        rule: {**real.get(rule, {}), **ci["set-resources"].get(rule, {})} for rule in real | ci["set-resources"]
    }
    folder.mkdir()
    (folder / "config.yaml").write_text(yaml.safe_dump(ci))
    return folder


def minutes(slurm_time: str) -> int:
    """SLURM's [D-]HH:MM:SS as minutes."""
    days, _, clock = slurm_time.rpartition("-")
    hours, mins, _ = (int(x) for x in clock.split(":"))
    return int(days or 0) * 1440 + hours * 60 + mins


def slurm_job(job_id: str) -> dict[str, str]:
    shown = subprocess.run(["scontrol", "-o", "show", "job", job_id], capture_output=True, text=True, timeout=30)
    assert shown.returncode == 0, shown.stderr
    return dict(re.findall(r"(\w+)=(\S*)", shown.stdout))


def test_paper_figures_through_sbatch(local_slurm, tmp_path):
    config = one_cell_config(tmp_path / "one_cell.yaml")
    profile = ci_profile(tmp_path / "ci_profile")
    workdir = tmp_path / "work"
    command = [
        # Snakemake ignores SIGTERM while it waits on jobs: -k sends SIGKILL after 10 s.
        *("timeout", "-k", "10", str(SNAKEMAKE_TIMEOUT_S)),
        *(sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile")),
        *("--directory", str(workdir), "--configfile", str(config)),
        *("--profile", str(SLURM_PROFILE.parent), "--workflow-profile", str(profile)),
        "paper_figures",
    ]
    start = time.monotonic()
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    seconds = time.monotonic() - start
    log = result.stdout + result.stderr
    (tmp_path / "snakemake.log").write_text(log)
    print(f"snakemake through SLURM: {seconds:.0f} s")
    assert result.returncode == 0, f"rc={result.returncode} after {seconds:.0f} s\n{log[-6000:]}"

    # The outputs exist and load.
    probe = json.loads((workdir / f"results/probes/{DOWNSTREAM}/stolen/{VICTIM}/{CELL}/seed0.json").read_text())
    assert 0.0 <= probe["accuracy"] <= 1.0 and probe["budget"] == 100 and probe["n_test"] == 200
    _, meta = load_encoder(workdir / f"results/stolen/{VICTIM}/{CELL}/seed0/encoder.pt")
    assert (meta["loss"], meta["queries"]) == ("mse", 100)
    table = pd.read_csv(workdir / f"paper_figures/{VICTIM}/{DOWNSTREAM}/stolen_accuracy.csv")
    assert list(table["encoder"]) == ["victim", "random_init", "raw_pixels", "stolen"]
    quality = pd.read_csv(workdir / f"paper_figures/victim_quality_{DOWNSTREAM}.csv")
    assert list(quality["victim"]) == [VICTIM]
    assert (workdir / f"paper_figures/{VICTIM}/{DOWNSTREAM}/accuracy_vs_queries.png").stat().st_size > 0

    # Every encoder job went through sbatch, once, and SLURM ran it to completion with
    # the real profile's per-rule walltime and GPU request; the local rules did not.
    submitted = re.findall(r"has been submitted with SLURM jobid (\d+) \(log: (\S+?)\)\.", log)
    jobs = {job_id: slurm_job(job_id) for job_id, _ in submitted}
    rules = sorted(re.match(r"rule_([a-z_]+?)(_wildcards_|$)", job["Comment"]).group(1) for job in jobs.values())
    assert rules == sorted(REMOTE_RULES), log[-4000:]
    real = yaml.safe_load(SLURM_PROFILE.read_text())["set-resources"]
    for job_id, job in jobs.items():
        rule = re.match(r"rule_([a-z_]+?)(_wildcards_|$)", job["Comment"]).group(1)
        assert job["JobState"] == "COMPLETED", (rule, job)
        assert job["Partition"] == "debug"
        assert minutes(job["TimeLimit"]) == real[rule]["runtime"], (rule, job["TimeLimit"])
        if rule in GPU_RULES:
            assert job.get("TresPerJob") == f"gres:gpu:{real[rule]['gpu']}", (rule, job)
    for _, slurm_log in submitted:
        assert Path(slurm_log).is_file(), slurm_log  # the job's own output, kept by the CI profile


def dry_run_resources(tmp_path: Path, *args: str) -> dict[str, dict[str, str]]:
    """Resources of each rule's jobs in a dry run of the tiny config (no SLURM needed)."""
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), "--directory", str(tmp_path)]
    result = subprocess.run(
        [*command, "--configfile", str(TINY), "--dry-run", *args], capture_output=True, text=True, cwd=ROOT
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    resources = {}
    for rule, listed in re.findall(r"^(?:local)?rule (\w+):\n(?:    .*\n)*?    resources: (.*)$", result.stdout, re.M):
        resources[rule] = dict(item.split("=", 1) for item in listed.split(", "))
    resources.pop("paper_figures")  # the target rule: runs nothing
    return resources


ENCODER_RULES = {"train_victim", "dump_victim", "dump_victim_views", "extract"} | {
    "probe_stolen",
    "probe_victim",
    "probe_random_init",
    "probe_raw_pixels",
    # defenses: the attacks and probes on defended answers, watermark verification
    "extract_defended",
    "probe_defended_stolen",
    "probe_defended_victim",
    "verify_watermark_victim",
    "verify_watermark_stolen",
    "verify_watermark_defended_stolen",
    # dataset inference: the density model and each suspect's test
    "fit_dataset_inference",
    "verify_dataset_inference_victim",
    "verify_dataset_inference_stolen",
    "verify_dataset_inference_defended",
    "verify_dataset_inference_independent",
    "verify_dataset_inference_own_ssl",
    "verify_dataset_inference_random_init",
    # the watermark's null and the detector's calibration
    "verify_watermark_independent",
    "verify_watermark_own_ssl",
    "verify_watermark_random_init",
    "calibrate_detection",
    # baselines: the attacker's own SSL, the independent twin, their probes
    "train_own_ssl",
    "train_independent",
    "probe_own_ssl",
    "probe_independent",
}
CPU_RULES = {"defend_answers"}  # matrix products on the answers; no encoder
LIGHT_RULES = {
    "prepare_dataset",
    "collect_probes",
    "stolen_accuracy_table",
    "accuracy_vs_queries_figure",
    "approach_comparison_table",
    "victim_quality_table",
    "collect_defense_probes",
    "defense_poisoning_table",
    "defense_detection_table",
    "defense_b4b_table",
    "watermark_table",
    "dataset_inference_table",
    "attack_vs_defense_table",
    "paper_comparison",
    "claims",
}


def test_slurm_profile_gives_each_encoder_rule_its_gpu_and_walltime(tmp_path):
    resources = dry_run_resources(tmp_path, "--workflow-profile", str(SLURM_PROFILE.parent))
    real = yaml.safe_load(SLURM_PROFILE.read_text())["set-resources"]
    assert set(resources) == ENCODER_RULES | CPU_RULES | LIGHT_RULES
    for rule in ENCODER_RULES:
        assert resources[rule]["gpu"] == "1" and resources[rule]["runtime"] == str(real[rule]["runtime"]), rule
        assert resources[rule]["mem_mb"] == str(real[rule]["mem_mb"]), rule
    for rule in CPU_RULES:
        assert resources[rule].get("gpu", "0") == "0" and resources[rule]["runtime"] == str(real[rule]["runtime"]), rule
    for rule in LIGHT_RULES:
        assert resources[rule].get("gpu", "0") == "0", rule


@pytest.mark.parametrize("gpu", [False, True])
def test_local_gpu_requests_follow_the_config(tmp_path, gpu):
    # Locally (profiles/default), encoder jobs request a GPU only with `gpu: true`, so
    # the default profile's gpu=1 cap leaves CPU runs parallel.
    resources = dry_run_resources(tmp_path, "--config", f"gpu={gpu}")
    assert set(resources) == ENCODER_RULES | CPU_RULES | LIGHT_RULES
    for rule in ENCODER_RULES:
        assert resources[rule]["gpu"] == str(int(gpu)), rule
    for rule in LIGHT_RULES:
        assert "gpu" not in resources[rule] and int(resources[rule]["mem_mb"]) <= 2000, rule
    for rule in CPU_RULES:
        assert "gpu" not in resources[rule], rule
