"""README is the front door: short, opening with the two commands, and every command, path,
link and Python snippet in it works as pasted."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

import trm
from trm.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
INSTALL_AND_DEMO = (
    "python3 -m venv .venv && . .venv/bin/activate && pip install torch==2.13.0 && pip install -e . && trm demo"
)
INSTALL_AND_TEST = (
    'python3 -m venv .venv && . .venv/bin/activate && pip install torch==2.13.0 && pip install -e ".[test]" && pytest'
)
# Folders of the repository: a path in README that starts with one of them must exist.
REPOSITORY_PATH = re.compile(r"^(?:configs|trm|bench|docs|experiments|tests|\.ci)/[\w./-]*$")


def code_blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", text, re.S | re.M)


def commands(text: str) -> list[str]:
    """`trm ...` command lines of the markdown's bash blocks (comments dropped), as `trm` argv strings;
    `python -m torch.distributed.run ... -m trm ARGS` counts as `trm ARGS`."""
    found = []
    for block in code_blocks(text, "bash"):
        for line in block.replace("\\\n", " ").splitlines():
            line = re.sub(r"^\$ ", "", line.split(" # ")[0].strip())
            if line.startswith("trm "):
                found.append(line)
            elif " -m trm " in line:
                found.append("trm " + line.split(" -m trm ", 1)[1])
    return found


def inline_code(text: str) -> list[str]:
    prose = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    return re.findall(r"`([^`\n]+)`", prose)


def heading_anchors(markdown: Path) -> set[str]:
    """GitHub's anchors for the headings of a markdown file."""
    anchors = set()
    for heading in re.findall(r"^#+ (.+)$", markdown.read_text(), re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        anchors.add(slug)
    return anchors


def broken_links(markdown: Path) -> list[str]:
    """Relative links (and their #anchors) of a markdown file that lead nowhere."""
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", markdown.read_text()):
        if re.match(r"^[a-z]+://", target):
            continue
        path, _, anchor = target.partition("#")
        resolved = (markdown.parent / path).resolve() if path else markdown
        if not resolved.exists():
            broken.append(f"{target}: no such file")
        elif anchor and resolved.suffix == ".md" and anchor not in heading_anchors(resolved):
            broken.append(f"{target}: no heading #{anchor} in {resolved.name}")
    return broken


def parse_error(command: str) -> str | None:
    """None if `trm`'s argparse accepts the command line (nothing runs), else what it said."""
    try:
        build_parser().parse_args(shlex.split(command)[1:])
    except SystemExit as exit:
        return f"{command!r}: argparse exits with {exit.code}"
    return None


def test_readme_is_at_most_200_lines():
    assert len(README.read_text().splitlines()) <= 200


def test_readme_opens_with_the_two_commands():
    text = README.read_text()
    first_block = code_blocks(text, "bash")[0]
    assert text.index("```bash") < text.index("\n## "), "the two commands come before any section"
    assert first_block.splitlines() == [INSTALL_AND_DEMO, INSTALL_AND_TEST]


def test_ci_runs_the_readme_test_command():
    script = (ROOT / ".ci" / "run").read_text()
    assert INSTALL_AND_TEST in script.splitlines()


def test_every_trm_command_in_readme_parses():
    found = commands(README.read_text())
    assert len(found) >= 10 and {c.split()[1] for c in found} >= {"solve", "data", "train", "eval", "bench"}
    assert [error for error in map(parse_error, found) if error] == []


def test_parse_error_names_a_command_that_does_not_parse():
    assert parse_error("trm eval --no-such-flag") is not None
    assert parse_error("trm eval trm/pretrained/sudoku-9x9 --data data/sudoku-40") is None


def test_every_path_and_link_in_readme_exists():
    text = README.read_text()
    assert broken_links(README) == []
    named = [word.rstrip(".,:;") for block in code_blocks(text, "bash") for word in block.split()]
    named += inline_code(text)
    paths = {p for p in named if REPOSITORY_PATH.match(p)}
    assert len(paths) >= 5
    assert sorted(p for p in paths if not (ROOT / p).exists()) == []


def test_a_broken_link_is_reported(tmp_path):
    page = tmp_path / "page.md"
    (tmp_path / "other.md").write_text("# Other page\n")
    page.write_text("[a](other.md#other-page) [b](missing.md) [c](other.md#nowhere) [d](https://x.org/y)\n")
    assert broken_links(page) == ["missing.md: no such file", "other.md#nowhere: no heading #nowhere in other.md"]


@pytest.mark.parametrize("snippet", code_blocks(README.read_text(), "python"), ids=lambda s: s.splitlines()[0])
def test_readme_python_snippets_run_as_pasted(snippet, tmp_path, monkeypatch):
    # As pasted in a checkout's root: the shipped models are at trm/pretrained/.
    (tmp_path / "trm").mkdir()
    (tmp_path / "trm" / "pretrained").symlink_to(Path(trm.__file__).parent / "pretrained")
    monkeypatch.chdir(tmp_path)
    exec(compile(snippet, "README.md", "exec"), {"__name__": "readme"})


def test_readme_has_python_snippets():
    assert len(code_blocks(README.read_text(), "python")) >= 2
