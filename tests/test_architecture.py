"""The import direction of docs/architecture.md, read from every module's imports with `ast`.

Every `import` counts, at module level, inside functions and under `if TYPE_CHECKING:`: a
lower layer that reaches up, even lazily, still cannot be understood or tested without the
layer above. Each failure names the file, the line and the import.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

import trm

PACKAGE = Path(trm.__file__).parent
ROOT = PACKAGE.parent

# Layer of each module, by its dotted name (the longest matching prefix wins).
LAYER_OF = {
    "trm": "top",  # the package's __init__: a version string
    "trm.__main__": "top",
    "trm.cli": "top",
    "trm.demo": "top",
    "trm.errors": "base",
    "trm.files": "base",
    "trm.config": "base",
    "trm.tasks": "tasks",
    "trm.data": "data",
    "trm.backends": "backends",
    "trm.model": "model",
    "trm.train": "train",
    "trm.eval": "eval",
    "trm.solve": "solve",
    "trm.pretrained": "base",  # shipped weights and cards, no code
}

# What each layer may import from trm (its own layer always).
MAY_IMPORT = {
    "base": {"base"},
    "tasks": {"base"},
    "data": {"base", "tasks"},
    "backends": {"base"},
    "model": {"base", "backends"},
    "eval": {"base", "tasks", "data", "backends", "model"},
    "train": {"base", "tasks", "data", "backends", "model", "eval"},
    "solve": {"base", "tasks", "data", "model", "eval"},
    "top": set(LAYER_OF.values()),
}

# Outside packages a layer may not use.
MAY_NOT_USE = {"tasks": {"torch"}}
ARGPARSE_ALLOWED = {"top"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(name: str) -> str | None:
    matches = [p for p in LAYER_OF if name == p or (p != "trm" and name.startswith(p + "."))]
    if not matches:
        return None
    return LAYER_OF[max(matches, key=len)]


def imports_of(path: Path) -> list[tuple[int, str]]:
    """(line, imported module) for every import in the file; relative imports made absolute."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            # `from trm import data` imports trm.data: name the modules, not the package.
            names = [f"{base}.{alias.name}" for alias in node.names] if base == "trm" else [base]
            found += [(node.lineno, imported) for imported in names]
    return found


def modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def violations() -> list[str]:
    found = []
    for path in modules():
        where = path.relative_to(ROOT)
        layer = layer_of(module_name(path))
        if layer is None:
            found.append(f"{where}: belongs to no layer of docs/architecture.md")
            continue
        for line, imported in imports_of(path):
            top = imported.split(".")[0]
            if top == "argparse" and layer not in ARGPARSE_ALLOWED:
                found.append(f"{where}:{line}: imports argparse (only trm/cli/ may)")
            if top in MAY_NOT_USE.get(layer, set()):
                found.append(f"{where}:{line}: imports {imported} ({layer} may not use {top})")
            if top != "trm" or imported == "trm":
                continue
            target = layer_of(imported)
            if target is not None and target != layer and target not in MAY_IMPORT[layer]:
                found.append(f"{where}:{line}: {layer} imports {imported} ({target})")
    return found


def test_every_import_goes_down_the_layers():
    found = violations()
    assert not found, "imports against docs/architecture.md:\n" + "\n".join(found)


def test_the_doc_names_every_layer():
    text = (ROOT / "docs" / "architecture.md").read_text()
    for folder in ("trm/tasks/", "trm/data/", "trm/backends/", "trm/model/", "trm/train/", "trm/eval/",
                   "trm/solve/", "trm/cli/"):
        assert folder in text, folder


def test_every_file_the_doc_names_exists():
    text = (ROOT / "docs" / "architecture.md").read_text()
    named = {p.rstrip("/") for p in re.findall(r"`((?:trm|configs)/[\w./]*)`", text)}
    assert len(named) >= 30
    assert sorted(p for p in named if not (ROOT / p).exists()) == []


@pytest.mark.parametrize(
    "module, source, expected",
    [
        ("trm/model/x.py", "def f():\n    from trm.data import format\n", "trm/model/x.py:2: model imports trm.data"),
        ("trm/tasks/x.py", "import torch\n", "trm/tasks/x.py:1: imports torch"),
        ("trm/eval/x.py", "from ..train import loop\n", "trm/eval/x.py:1: eval imports trm.train"),
        ("trm/solve/x.py", "from trm import cli\n", "trm/solve/x.py:1: solve imports trm.cli"),
        ("trm/data/x.py", "import argparse\n", "trm/data/x.py:1: imports argparse"),
        ("trm/model/x.py", "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import trm.tasks\n",
         "trm/model/x.py:3: model imports trm.tasks"),
    ],
)
def test_the_check_catches_each_kind_of_violation(tmp_path, monkeypatch, module, source, expected):
    fake = tmp_path / "trm"
    (fake / module.split("/")[1]).mkdir(parents=True)
    (tmp_path / module).write_text(source)
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", fake)
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert any(v.startswith(expected) for v in violations()), violations()
