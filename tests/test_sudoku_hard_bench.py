"""bench/sudoku_hard.py, the sudoku-hard card's measurement: the held-out sets it builds, the
numbers it writes and the commands it prints for each."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.bench_scripts import load_bench
from trm.cli import build_parser
from trm.data.build import build_dataset
from trm.data.format import read_dataset
from trm.data.sudoku import SudokuSource

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def bench():
    yield from load_bench("sudoku_hard")


def test_the_build_commands_are_trm_commands_with_seeds_used_nowhere_else(bench):
    seeds = [spec["seed"] for spec in bench.SETS.values()]
    assert len(set(seeds)) == len(seeds)
    for path, spec in bench.SETS.items():
        command = bench.build_command(path, spec, "royle.txt")
        args = build_parser().parse_args(command[1:])
        assert args.seed == spec["seed"] and str(args.output) == path
    for other in (ROOT / "bench" / "test_time_scaling.py", ROOT / "bench" / "scaling_laws.py"):
        text = other.read_text()
        assert not any(str(seed) in text for seed in seeds), other


@pytest.mark.slow
def test_a_card_of_the_9x9_model_on_a_few_puzzles(bench, tmp_path, shared):
    royle = shared("data", "sudoku", "royle-17-clue.txt")
    model = tmp_path / "model"
    model.mkdir()
    for name in ("model.safetensors", "config.json"):
        (model / name).write_bytes((ROOT / "trm" / "pretrained" / "sudoku-9x9" / name).read_bytes())
    assert bench.main([str(model), "--royle", str(royle), "--root", str(tmp_path), "--limit", "8",
                       "--trajectories", "2", "--trajectory-steps", "8", "--card"]) == 0  # fmt: skip
    card = json.loads((model / "card.json").read_text())
    assert list(card["data"]) == list(bench.SETS)
    for numbers in card["data"].values():
        assert numbers["examples"] == 8 and len(numbers["fixed_exact_per_step"]) == 16
        t = numbers["trajectories"]
        assert t["max_steps"] == 8
        assert list(t["accuracy_at_k"]) == ["1", "2"] and t["accuracy_at_k"]["2"] == t["exact_accuracy"]
        assert t["accuracy_at_k"]["1"] <= t["accuracy_at_k"]["2"]
    assert card["data"]["data/sudoku-test-28-40"]["fixed_exact_per_step"][15] >= 7 / 8


def test_the_shipped_cards_table_is_what_its_card_json_gives(bench):
    model = ROOT / "trm" / "pretrained" / "sudoku-hard"
    card = json.loads((model / "card.json").read_text())
    lines = bench.table(card["checkpoint"], card["data"], card["limit"], card["backend"])
    rows = lines[: lines.index("")]
    assert len(rows) == 2 + len(bench.SETS)
    text = (model / "README.md").read_text()
    assert all(row in text for row in rows), "run: python bench/sudoku_hard.py ... and copy its table into the card"
    first = next(iter(card["data"].values()))["trajectories"]
    assert (first["K"], first["max_steps"], card["backend"]) == (bench.TRAJECTORIES, bench.TRAJECTORY_STEPS, "onednn")


@pytest.mark.parametrize("backend", ["default", "onednn"])
def test_the_printed_commands_name_the_kernels_the_numbers_were_measured_with(bench, backend):
    # The kernels' rounding can change a few answers over deep recursion; `trm eval` alone would
    # time them and might pick the other.
    numbers = {path: {"examples": 10, "fixed_exact_per_step": [0.5] * 16,
                      "adaptive": {"0": {"exact_accuracy": 0.5, "mean_steps": 3.0}},
                      "trajectories": {"K": 4, "max_steps": 8, "exact_accuracy": 0.9, "mean_trajectories": 1.5}}
               for path in bench.SETS}  # fmt: skip
    commands = [line for line in bench.table("MODEL", numbers, 10, backend) if line.startswith("trm eval")]
    assert len(commands) == 3 * len(bench.SETS)
    for command in commands:
        args = build_parser().parse_args(command.split()[1:])
        assert args.backend == backend and args.limit == 10


def test_mixing_datasets_writes_one_set_holding_every_puzzle_in_order(tmp_path, capsys, monkeypatch):
    spec = importlib.util.spec_from_file_location("mix", ROOT / "experiments" / "sudoku-hard" / "mix_datasets.py")
    mix = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mix)
    parts = []
    for seed, size in ((1, 6), (2, 4)):
        parts.append(tmp_path / f"part{seed}")
        build_dataset(SudokuSource(source="generate", output=parts[-1], givens=40, train_size=size, test_size=2,
                                   seed=seed), progress=False)  # fmt: skip
    out = tmp_path / "mixed"
    monkeypatch.setattr(sys, "argv", ["mix", *map(str, parts), "--test", str(parts[1]), "-o", str(out)])
    assert mix.main() == 0
    assert mix.main() == 2 and "exists" in capsys.readouterr().err  # never over an earlier directory
    joined = read_dataset(out, "train")  # read_dataset checks the offsets against the arrays
    assert list(joined.sets) == ["all"] and joined.metadata.total_puzzles == 10
    originals = [read_dataset(p, "train").sets["all"] for p in parts]
    assert (joined.sets["all"].inputs == np.concatenate([s.inputs for s in originals])).all()
    assert (read_dataset(out, "test").sets["all"].labels == read_dataset(parts[1], "test").sets["all"].labels).all()
