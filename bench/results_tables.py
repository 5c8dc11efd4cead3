"""Rewrite the result tables of docs/results.md and README.md from the committed numbers.

    python bench/results_tables.py           # rewrite the tables in place
    python bench/results_tables.py --check   # exit 1 if a committed table differs from its numbers

The numbers come from the shipped models' cards (`trm/pretrained/*/card.json`, written by
`python bench/model_card.py ... --json`) and from the sweep of the paper's comparisons
(`experiments/paper-comparisons/results.json`, written by `python experiments/paper_comparisons.py`).
A table sits between `<!-- table: NAME -->` and `<!-- /table -->`; text outside the markers is
left alone. tests/test_docs.py runs the check.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PRETRAINED = ROOT / "trm" / "pretrained"
COMPARISONS = ROOT / "experiments" / "paper-comparisons" / "results.json"
DOCUMENTS = ("docs/results.md", "README.md")
STEPS = (1, 2, 4, 8, 16)
BLOCK = re.compile(r"(<!-- table: (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /table -->)", re.S)


def pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def card(model: str) -> dict:
    return json.loads((PRETRAINED / model / "card.json").read_text())


def model_table(model: str) -> list[str]:
    """Held-out exact accuracy after k supervision steps and with adaptive halting, per test set."""
    numbers = card(model)
    sets = numbers["data"]
    thresholds = sorted({t for s in sets.values() for t in s["adaptive"]}, key=float)
    header = ["test set", "puzzles", *(f"{k} step{'s' * (k > 1)}" for k in STEPS),
              *(f"adaptive q>{t} (mean steps)" for t in thresholds)]
    rows = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for data, s in sets.items():
        cells = [f"`{data}`", f"{s['examples']:,}", *(pct(s["fixed_exact_per_step"][k - 1]) for k in STEPS)]
        cells += [f"{pct(s['adaptive'][t]['exact_accuracy'])} ({s['adaptive'][t]['mean_steps']:.2f})"
                  if t in s["adaptive"] else "-" for t in thresholds]
        rows.append("| " + " | ".join(cells) + " |")
    return rows


def data_commands(model: str) -> list[str]:
    """The commands that rebuild a card's test sets and re-evaluate the model on them."""
    numbers = card(model)
    lines = []
    for data, spec in numbers["datasets"].items():
        options = " ".join(f"--{key.replace('_', '-')} {value}" for key, value in spec.items())
        task = "maze" if "size" in spec else "sudoku"
        if spec.get("source") == "royle17":  # held out from the user's copy of Royle's file
            options += " --input royle-17-clue.txt"
        out = "--output" if task == "maze" else "-o"
        lines.append(f"trm data {task} {options} {out} {data}")
    limit = f" --limit {numbers['limit']}" if numbers.get("limit") else ""  # the card's first N puzzles
    backend = f" --backend {numbers['backend']}" if numbers.get("backend") else ""  # the kernels it was measured with
    for data in numbers["datasets"]:
        lines.append(f"trm eval {numbers['checkpoint']} --data {data}{backend}{limit}")
    return ["```bash", *lines, "```"]


def summary_table() -> list[str]:
    """README's one line per shipped model: its hardest test set after 16 steps."""
    rows = ["| model | held-out exact accuracy after 16 supervision steps |", "|---|---|"]
    for path in sorted(PRETRAINED.glob("*/card.json"), reverse=True):  # Sudoku first
        sets = json.loads(path.read_text())["data"]
        cells = ", ".join(f"{pct(s['fixed_exact_per_step'][-1])} on `{data}`" for data, s in sets.items())
        rows.append(f"| [`{path.parent.name}`](trm/pretrained/{path.parent.name}/README.md) | {cells} |")
    return rows


def comparisons_table() -> list[str]:
    """The paper's comparisons at CPU scale: final exact accuracy per seed, the mean, the paper's figure."""
    results = json.loads(COMPARISONS.read_text())
    seeds = [str(s) for s in results["seeds"]]
    header = ["row", *(f"seed {s}" for s in seeds), "mean", "train minutes (mean)", "paper (Sudoku-Extreme)"]
    rows = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in results["results"].values():
        runs = [row["seeds"].get(s) for s in seeds]
        if any(run is None for run in runs):
            rows.append("| " + " | ".join([row["name"], *("not run" for _ in header[1:-1]), row["paper"]]) + " |")
            continue
        mean = sum(run["final_exact"] for run in runs) / len(runs)
        minutes = sum(run["train_minutes"] for run in runs) / len(runs)
        cells = [row["name"], *(pct(run["final_exact"]) for run in runs), f"**{pct(mean)}**", f"{minutes:.1f}",
                 row["paper"]]
        rows.append("| " + " | ".join(cells) + " |")
    return rows


TABLES: dict[str, Callable[[], list[str]]] = {
    "sudoku-9x9": lambda: model_table("sudoku-9x9"),
    "sudoku-9x9-commands": lambda: data_commands("sudoku-9x9"),
    "sudoku-hard": lambda: model_table("sudoku-hard"),
    "sudoku-hard-commands": lambda: data_commands("sudoku-hard"),
    "maze-11x11": lambda: model_table("maze-11x11"),
    "maze-11x11-commands": lambda: data_commands("maze-11x11"),
    "pretrained-summary": summary_table,
    "paper-comparisons": comparisons_table,
}


def regenerate(text: str) -> str:
    """The document with every marked table rebuilt; an unknown table name is an error."""

    def rebuild(match: re.Match) -> str:
        name = match["name"]
        if name not in TABLES:
            raise SystemExit(f"unknown table {name!r}; known: {', '.join(TABLES)}")
        return match[1] + "\n".join(TABLES[name]()) + "\n" + match[4]

    return BLOCK.sub(rebuild, text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a table is out of date")
    args = parser.parse_args()
    stale = []
    for name in DOCUMENTS:
        path = ROOT / name
        text = path.read_text()
        new = regenerate(text)
        if new != text:
            stale.append(name)
            if not args.check:
                path.write_text(new)
    verb = "out of date" if args.check else "rewritten"
    print(f"{verb}: {', '.join(stale)}" if stale else "every table matches its numbers")
    return 1 if stale and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
