"""`evaluate_trajectories`, its report, and `trm eval` with test-time scaling options."""

import json
from pathlib import Path

import numpy as np
import pytest

import trm
from tests.eval.fixtures import tiny_model, write_arc_dataset
from trm.cli import main
from trm.data.build import build_dataset
from trm.data.sudoku import SudokuSource
from trm.eval.adaptive import network_calls_per_step
from trm.eval.scaling import evaluate_trajectories, read_examples
from trm.eval.trajectories import Plan, run_trajectories
from trm.model import load_model, save_model
from trm.tasks import SUDOKU

SUDOKU_MODEL = Path(trm.__file__).parent / "pretrained" / "sudoku-9x9"


@pytest.fixture(scope="module")
def sudoku_data(tmp_path_factory):
    """20 generated minimal Sudokus (test split), built as `trm data sudoku --source generate` builds them."""
    out = tmp_path_factory.mktemp("data") / "sudoku-tiny"
    build_dataset(SudokuSource(source="generate", output=out, train_size=1, test_size=20, givens=None, seed=7), False)
    return out


@pytest.fixture(scope="module")
def model():
    return load_model(SUDOKU_MODEL)


@pytest.fixture(scope="module")
def verify_report(model, sudoku_data):
    return evaluate_trajectories(model, sudoku_data, Plan(trajectories=4, max_steps=5), progress=False)


def test_the_report_counts_what_the_run_did(model, sudoku_data, verify_report):
    report = verify_report.to_json()
    json.loads(json.dumps(report))  # plain JSON
    assert report["num_puzzles"] == 20 and report["task"] == "sudoku"
    assert report["plan"]["trajectories"] == 4 and report["plan"]["select"] == "verify"
    assert report["pass_at_k"] >= report["exact_accuracy"]
    # Unique solutions: a valid answer is the label.
    assert report["valid_rate"] == report["exact_accuracy"] and report["valid_not_label_rate"] == 0
    by_k = report["accuracy_at_k"]["verify"]
    assert list(by_k) == ["1", "2", "4"] and list(report["accuracy_at_k"]) == ["verify"]
    assert by_k["4"] == report["exact_accuracy"]
    assert all(a <= b for a, b in zip(list(by_k.values()), list(by_k.values())[1:]))  # verify never loses
    calls = network_calls_per_step(model.config)
    assert report["network_calls_per_step"] == calls == model.config.T * (model.config.n + 1)
    assert report["network_calls"] == round(report["mean_steps"] * 20 * calls)
    assert 1 <= report["mean_trajectories"] <= 4
    times = report["time_per_puzzle_s"]
    assert 0 < times["median"] <= times["p90"] <= times["max"]
    assert times["mean"] * 20 <= report["wall_time_s"]

    # The chosen answers are what the engine chooses on the same puzzles (an independent count).
    _, inputs, labels, _ = read_examples(sudoku_data, "test", None)
    outcomes = run_trajectories(model, SUDOKU, inputs, Plan(trajectories=4, max_steps=5))
    assert report["exact_accuracy"] == np.mean([(o.chosen.answer == y).all() for o, y in zip(outcomes, labels)])
    assert report["mean_steps"] == np.mean([o.sample_steps for o in outcomes])


def test_halt_reports_both_rules_at_every_k_and_the_model_s_step_limit_by_default(model, sudoku_data):
    plan = Plan(trajectories=2, select="halt", noise=0.2, max_steps=None)
    report = evaluate_trajectories(model, sudoku_data, plan, limit=3, progress=False)
    assert report.plan["max_steps"] == model.config.N_sup and report.num_puzzles == 3
    assert set(report.accuracy_at_k) == {"halt", "vote"}
    assert report.accuracy_at_k["halt"][2] == report.exact_accuracy
    assert report.mean_trajectories == 2


@pytest.mark.parametrize("backend", ["default", "onednn"])
def test_the_report_names_the_kernels_it_ran_on(model, sudoku_data, backend):
    plan = Plan(trajectories=2, max_steps=2)
    report = evaluate_trajectories(model, sudoku_data, plan, limit=3, backend=backend, progress=False)
    assert report.backend == backend and report.to_json()["backend"] == backend
    assert any(line.split()[:2] == ["backend", backend] for line in report.table().splitlines())


def test_the_table_labels_pass_at_k_as_not_an_accuracy(verify_report):
    table = verify_report.table()
    assert "pass@K" in table and "not an accuracy" in table
    assert "exact accuracy (verify)" in table and "K=1:" in table and "K=4:" in table
    assert "4 trajectories" in table and "network calls" in table


# ---------------------------------------------------------------------- the command line


def test_the_command_line_writes_the_report_where_the_plan_names_it(sudoku_data, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # a shipped model reports to ./eval
    argv = ["eval", str(SUDOKU_MODEL), "--data", str(sudoku_data), "--limit", "4", "--quiet", "--max-steps", "4"]
    argv += ["--backend", "default"]  # no timing of kernels: this test is about what is written where
    assert main(argv + ["--trajectories", "2"]) == 0
    out = capsys.readouterr().out
    path = Path("eval") / "sudoku-9x9-sudoku-tiny-test-K2-verify-k4-seed0" / "report.json"
    assert f"report written to {path}" in out and "pass@K" in out
    report = json.loads(path.read_text())
    assert report["num_puzzles"] == 4 and report["plan"]["max_steps"] == 4 and report["plan"]["trajectories"] == 2

    assert main(argv + ["--trajectories", "2", "--noise", "0.1", "--no-views", "--select", "halt", "--seed", "3"]) == 0
    path = Path("eval") / "sudoku-9x9-sudoku-tiny-test-K2-halt-noise0.1-noviews-k4-seed3" / "report.json"
    plan = json.loads(path.read_text())["plan"]
    assert plan["views"] is False and plan["noise"] == 0.1 and plan["select"] == "halt" and plan["seed"] == 3

    # Without a scaling option nothing changes: one plain run, fixed halting, the plain report.
    capsys.readouterr()
    assert main(argv + ["--seed", "5"]) == 0
    assert (Path("eval") / "sudoku-9x9-sudoku-tiny-test-fixed-k4" / "report.json").exists()
    assert "fixed halting" in capsys.readouterr().out


@pytest.mark.parametrize("halt", ["fixed", "valid"])
def test_halt_with_scaling_options_is_refused(sudoku_data, tmp_path, capsys, halt):
    argv = ["eval", str(SUDOKU_MODEL), "--data", str(sudoku_data), "--quiet", "--output", str(tmp_path / "r.json")]
    assert main(argv + ["--trajectories", "4", "--halt", halt]) == 2
    err = capsys.readouterr().err
    assert f"trm eval: error: --halt {halt} does not apply with test-time scaling" in err
    assert "Traceback" not in err and not (tmp_path / "r.json").exists()


def test_arc_with_scaling_options_is_refused(tmp_path, capsys):
    data = write_arc_dataset(tmp_path / "arc", num_aug=1)
    model = save_model(
        tiny_model(12, 900, puzzle_emb_ndim=32, puzzle_emb_len=1, num_puzzle_identifiers=20), tmp_path / "m"
    )
    assert main(["eval", str(model), "--data", str(data), "--quiet", "--trajectories", "4"]) == 2
    err = capsys.readouterr().err
    assert "trm eval: error: ARC" in err and "has no rules to check answers by" in err and "Traceback" not in err
    assert not (model / "eval").exists()


def test_help_shows_scaling_examples(capsys):
    with pytest.raises(SystemExit):
        main(["eval", "--help"])
    out = capsys.readouterr().out
    assert "--trajectories K" in out and "--select {verify,halt,vote}" in out and "--no-views" in out
    assert "--trajectories 16" in out and "not an accuracy" in out
