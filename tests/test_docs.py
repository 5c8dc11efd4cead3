"""The docs' result tables are what `python bench/results_tables.py` makes of the committed
numbers, and the docs' commands and links still work."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from tests.test_readme import broken_links, commands, parse_error

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted((ROOT / "docs").glob("*.md"))


def load_generator():
    spec = importlib.util.spec_from_file_location("results_tables", ROOT / "bench" / "results_tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("document", ["docs/results.md", "README.md"])
def test_committed_tables_equal_the_regenerated_ones(document):
    text = (ROOT / document).read_text()
    assert load_generator().regenerate(text) == text, f"run: python bench/results_tables.py ({document} is stale)"


def test_every_shipped_model_and_the_sweep_have_a_table():
    text = (ROOT / "docs" / "results.md").read_text()
    models = [card.parent.name for card in (ROOT / "trm" / "pretrained").glob("*/card.json")]
    assert models
    for name in [*models, "paper-comparisons"]:
        assert f"<!-- table: {name} -->" in text, name


def test_a_changed_number_changes_its_table(tmp_path, monkeypatch):
    generator = load_generator()
    model = tmp_path / "sudoku-9x9"
    model.mkdir()
    card = json.loads((ROOT / "trm" / "pretrained" / "sudoku-9x9" / "card.json").read_text())
    text = "before\n<!-- table: sudoku-9x9 -->\n<!-- /table -->\nafter\n"
    monkeypatch.setattr(generator, "PRETRAINED", tmp_path)
    (model / "card.json").write_text(json.dumps(card))
    committed = generator.regenerate(text)
    card["data"]["data/sudoku-test-40"]["fixed_exact_per_step"][15] = 0.5
    (model / "card.json").write_text(json.dumps(card))
    assert generator.regenerate(committed) != committed
    assert "| 50.0% |" in generator.regenerate(committed)
    assert committed.startswith("before\n") and committed.endswith("\nafter\n")


@pytest.mark.parametrize("backend", [None, "onednn"])
def test_a_cards_commands_name_the_kernels_it_was_measured_with(tmp_path, monkeypatch, backend):
    generator = load_generator()
    model = tmp_path / "sudoku-9x9"
    model.mkdir()
    card = json.loads((ROOT / "trm" / "pretrained" / "sudoku-9x9" / "card.json").read_text())
    card.pop("backend", None)
    if backend:
        card["backend"] = backend
    (model / "card.json").write_text(json.dumps(card))
    monkeypatch.setattr(generator, "PRETRAINED", tmp_path)
    evals = [line for line in generator.data_commands("sudoku-9x9") if line.startswith("trm eval")]
    assert len(evals) == len(card["datasets"])
    assert all(("--backend onednn" in line) == bool(backend) for line in evals)


def test_an_unknown_table_is_refused():
    with pytest.raises(SystemExit, match="unknown table"):
        load_generator().regenerate("<!-- table: no-such-table -->\n<!-- /table -->\n")


@pytest.mark.parametrize("document", DOCS, ids=lambda p: p.name)
def test_every_link_in_the_docs_leads_somewhere(document):
    assert broken_links(document) == []


@pytest.mark.parametrize("document", DOCS, ids=lambda p: p.name)
def test_every_trm_command_in_the_docs_parses(document):
    assert [error for error in map(parse_error, commands(document.read_text())) if error] == []
