"""Every `snakemake` command in README.md and docs/*.md works as written: each one is
dry-run. And every relative link in those files points to a file of the checkout.

The commands are taken from the documents themselves: every line of a fenced code block
that starts with `snakemake` (backslash continuations joined), and every inline code span
that is a snakemake command. Each is first parsed with Snakemake's own argument parser
(a target written after `--configfile` is read as a second config file: the mistake
this test exists for), then run with `--dry-run` added, in a sandbox folder that holds
the workflow's files (symlinks into the checkout) and no outputs, so the dry run
schedules the command's whole chain and needs no dataset.

configs/paper.yaml demands an ImageNet folder and the SimSiam checkpoint before any
job; as in tests/test_paper_config.py, the sandbox holds empty placeholders (the
checkpoint at the config's relative path, the ImageNet folder given with `--config`).

`--report` ignores `--dry-run` and builds the report from the run's outputs, which a
dry run never has: those commands must get as far as creating the report and stop only
at the first missing output ("marked for report but does not exist").
"""

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
# The README and the pages it points to: every command and link in them is checked.
DOCS = [README, *sorted((ROOT / "docs").glob("*.md"))]
PAPER = "configs/paper.yaml"
# Outputs of a run (and local leftovers) that the sandbox must not see; everything else
# in the checkout is linked into it. paper_figures/ holds committed outputs beside an
# input (published.yaml), which alone is linked.
OUTPUTS = {".git", ".snakemake", ".venv", ".pytest_cache", "data", "results", "logs", "paper_figures", "runs",
           "checkpoints", "report.html"}
# Placeholders a README command may use, and what the test puts in their place.
PLACEHOLDERS = {"<victim>": "simclr_fashion_mnist", "<query_set>": "fashion_mnist_test"}


def fenced_commands(text: str) -> list[str]:
    commands = []
    for block in re.findall(r"^[ \t]*```[^\n]*\n(.*?)^[ \t]*```", text, re.M | re.S):
        for line in re.sub(r"\\\n", " ", block).splitlines():
            if line.strip().startswith("snakemake "):
                commands.append(" ".join(line.split()))
    return commands


def inline_commands(text: str) -> list[str]:
    prose = re.sub(r"^[ \t]*```.*?^[ \t]*```", "", text, flags=re.M | re.S)
    spans = (" ".join(span.split()) for span in re.findall(r"`([^`]+)`", prose))
    # A bare `snakemake` names the tool, it is no command.
    return [span for span in spans if span.startswith("snakemake ")]


def readme_commands() -> list[str]:
    commands = []
    for doc in DOCS:
        text = doc.read_text()
        commands += fenced_commands(text) + inline_commands(text)
    return list(dict.fromkeys(commands))  # each distinct command once, in document order


COMMANDS = readme_commands()
# Test ids: the command's arguments, long paths cut to their last parts.
IDS = [f"{i:02d}:" + " ".join(a if len(a) < 40 else ".../" + "/".join(a.split("/")[-3:]) for a in c.split()[1:])
       for i, c in enumerate(COMMANDS)]


def test_the_readme_has_the_commands_it_documents():
    # The front door keeps the quick start, the test command and one cell.
    readme = README.read_text()
    assert "make paper_figures" in readme and "make test" in readme
    assert "snakemake --cores all paper_figures" in fenced_commands(readme)
    assert any(command.startswith("snakemake --cores all results/probes/") for command in fenced_commands(readme))
    assert len(DOCS) > 1, "docs/*.md not found"
    # The extraction itself, over README.md and docs/*.md: the quick start, one cell, the
    # paper run (SLURM and one GPU machine), its one-cell commands, the report, the tiny
    # and full configs.
    assert "snakemake --cores all paper_figures" in COMMANDS
    assert "snakemake --cores 2 --configfile configs/tiny.yaml" in COMMANDS
    assert sum(PAPER in command for command in COMMANDS) >= 5
    assert sum("--workflow-profile profiles/slurm" in command for command in COMMANDS) >= 4
    assert any("--report" in command for command in COMMANDS)
    assert any("configs/full.yaml" in command for command in COMMANDS)
    assert len(COMMANDS) >= 12


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory) -> Path:
    """A folder that looks like a fresh clone before its first run: the workflow's files
    (linked), no data, no results, no committed tables; placeholders for ImageNet."""
    folder = tmp_path_factory.mktemp("readme")
    for entry in ROOT.iterdir():
        if entry.name not in OUTPUTS and not entry.name.startswith("."):
            (folder / entry.name).symlink_to(entry)
    (folder / "paper_figures").mkdir()
    (folder / "paper_figures" / "published.yaml").symlink_to(ROOT / "paper_figures" / "published.yaml")
    paper = yaml.safe_load((ROOT / PAPER).read_text())
    for sub in ("train", "val"):
        (folder / "imagenet" / sub).mkdir(parents=True)
    for victim in paper["victims"].values():
        if "external" in victim:
            checkpoint = folder / victim["external"]["path"]
            checkpoint.parent.mkdir(parents=True, exist_ok=True)
            checkpoint.touch()
    return folder


def arguments(command: str) -> list[str]:
    """The command's arguments after `snakemake`, placeholders filled in."""
    for placeholder, value in PLACEHOLDERS.items():
        command = command.replace(placeholder, value)
    assert not re.search(r"<[a-z_]+>", command), f"unknown placeholder in {command!r}: add it to PLACEHOLDERS"
    tokens = shlex.split(command, comments=True)
    assert tokens[0] == "snakemake"
    return tokens[1:]


@pytest.mark.parametrize("command", COMMANDS, ids=IDS)
def test_readme_command_dry_runs(sandbox, command):
    from snakemake.cli import get_argument_parser

    args = arguments(command)
    parsed = get_argument_parser().parse_args(args)
    # Every config file is one (a target after --configfile would be read as one), and
    # every target is a rule or a file path.
    for configfile in parsed.configfile or []:
        assert (sandbox / configfile).is_file(), f"{command!r} reads {configfile!r} as a config file"
    targets = list(parsed.targets or [])

    run = [*args]
    if not parsed.dryrun:
        run.append("--dry-run")
    if any(str(configfile) == PAPER for configfile in parsed.configfile or []):
        run += ["--config", f"datasets={{imagenet: {{path: {sandbox / 'imagenet'}}}}}"]
    result = subprocess.run([sys.executable, "-m", "snakemake", *run], cwd=sandbox, capture_output=True, text=True)
    output = result.stdout + result.stderr

    if parsed.report:
        # The report is built from a finished run's outputs; here there are none.
        assert result.returncode != 0 and "Creating report..." in output, output[-3000:]
        missing = re.findall(r"File (\S+) marked for report but does not exist", output)
        assert missing and all(path.startswith(("paper_figures/", "results/")) for path in missing), output[-3000:]
        return
    assert result.returncode == 0, f"{command!r}:\n{output[-3000:]}"
    if parsed.lint:
        return
    assert "This was a dry-run" in output, f"{command!r} scheduled nothing:\n{output[-3000:]}"
    for target in targets:
        if "/" in target:  # a file: the dry run lists the job that makes it
            assert re.search(rf"^\s*output: (.*, )?{re.escape(target)}(,|$)", output, re.M), (command, target)
        else:
            assert re.search(rf"^(local)?rule {re.escape(target)}:$", output, re.M), (command, target)


# Links to files the documents name but another change adds; remove an entry once the
# file exists.
PENDING = {"docs/paper.md"}  # the paper's text (PAPER.md)


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to '-'."""
    heading = re.sub(r"`|\*|\[([^]]*)\]\([^)]*\)", r"\1", heading.strip()).lower()
    return re.sub(r"[^\w\- ]", "", heading).replace(" ", "-")


def relative_links(doc: Path) -> list[str]:
    """The targets of the document's markdown links that are not URLs (code left out)."""
    text = re.sub(r"^[ \t]*```.*?^[ \t]*```", "", doc.read_text(), flags=re.M | re.S)
    text = re.sub(r"`[^`\n]*`(?!\])", "", text)  # inline code, except a link's text
    targets = re.findall(r"\]\(([^)\s]+)\)", text)
    return [t for t in targets if not re.match(r"[a-z][a-z0-9+.-]*:", t)]


@pytest.mark.parametrize("doc", DOCS, ids=[str(doc.relative_to(ROOT)) for doc in DOCS])
def test_relative_links_resolve(doc):
    links = relative_links(doc)
    assert links or doc != README, "no relative link found in README.md: the check reads nothing"
    broken = []
    for link in links:
        path, _, anchor = link.partition("#")
        target = (doc.parent / path).resolve() if path else doc
        name = target.relative_to(ROOT).as_posix() if target.is_relative_to(ROOT) else str(target)
        if name in PENDING:
            continue
        if not target.is_relative_to(ROOT) or not target.exists():
            broken.append(f"{link}: {name} does not exist")
        elif anchor:
            text = re.sub(r"^[ \t]*```.*?^[ \t]*```", "", target.read_text(), flags=re.M | re.S)
            headings = re.findall(r"^#{1,6}\s+(.+?)\s*#*$", text, re.M) if target.suffix == ".md" else []
            if anchor not in {github_anchor(h) for h in headings}:
                broken.append(f"{link}: no heading #{anchor} in {name}")
    assert not broken, f"{doc.relative_to(ROOT)}: broken links:\n" + "\n".join(broken)
