"""bench/sudoku_hard.py, the sudoku-hard card's measurement: the held-out sets it builds, the
numbers it writes and the commands it prints for each."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.bench_scripts import load_bench
from trm.cli import build_parser

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
