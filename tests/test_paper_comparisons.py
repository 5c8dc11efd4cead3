"""The comparison runner's verdicts on the paper's orderings (experiments/paper_comparisons.py)."""

import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "experiments" / "paper_comparisons.py"


@pytest.fixture(scope="module")
def runner():
    spec = importlib.util.spec_from_file_location("paper_comparisons", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


def row(*finals: float) -> dict:
    return {"seeds": {seed: {"final_exact": x} for seed, x in enumerate(finals)}}


@pytest.mark.parametrize("better, worse, verdict, cells", [
    (row(0.5, 0.7), row(0.4, 0.6), "holds", ["+10.0", "+10.0"]),
    (row(0.5, 0.9), row(0.6, 0.6), "holds in the mean; the seeds disagree", ["-10.0", "+30.0"]),
    (row(0.4, 0.5), row(0.5, 0.6), "does not hold", ["-10.0", "-10.0"]),
    (row(0.2, 0.6), row(0.5, 0.5), "reversed in the mean; the seeds disagree", ["-30.0", "+10.0"]),
    (row(0.0, 0.0), row(0.0, 0.0), "tie: both at 0%, not decided at this budget", ["+0.0", "+0.0"]),
    (row(0.5, 0.5), row(0.5, 0.5), "tie", ["+0.0", "+0.0"]),
])
def test_an_ordering_is_judged_in_the_mean_and_seed_by_seed(runner, better, worse, verdict, cells):
    assert runner.ordering_verdict(better, worse, [0, 1]) == (verdict, cells)


def test_every_ordering_names_rows_the_runner_trains(runner):
    keys = {r.key for r in runner.ROWS}
    for better, worse, _ in runner.ORDERINGS:
        assert better in keys and worse in keys
