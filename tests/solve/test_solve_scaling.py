"""`trm solve` with test-time scaling: several trajectories, several answers, one JSON object."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import trm
from tests.eval.fixtures import PUZZLE, SOLUTION, arc_tasks, tiny_model
from trm.cli import main
from trm.data.maze_generator import generate_mazes
from trm.data.sudoku_solver import solve as exact_solve
from trm.errors import ConfigError
from trm.eval.adaptive import network_calls_per_step, run_steps
from trm.eval.evaluate import resolve_model
from trm.eval.metrics import rules_check
from trm.model import save_model
from trm.solve import solve
from trm.tasks import MAZE, SUDOKU
from trm.tasks.maze import text_to_tokens, tokens_to_text

PRETRAINED = Path(trm.__file__).parent / "pretrained"
SUDOKU_MODEL = PRETRAINED / "sudoku-9x9"
MAZE_MODEL = PRETRAINED / "maze-11x11"

# SOLUTION with 40 givens kept and a "deadly rectangle" blanked: rows 1 and 4, columns 4 and 5 (two
# boxes) hold 6 7 / 7 6, so swapping them gives a second solution; the other blanks keep it at two.
TWO_SOLUTIONS = "530000910000105308000340567009001400026053090710920000901037280200000635305006170"
RECTANGLE = [(0, 3), (0, 4), (3, 3), (3, 4)]
HARD = "000000012980000000000600000100700080402000000000300600070000300050040000000010000"  # 17 givens
JSON_KEYS = {"task", "puzzle", "answers", "trajectories", "network_calls", "wall_time_s"}
ANSWER_KEYS = {"answer", "valid", "steps", "confidence", "trajectory"}


def swapped_solution() -> str:
    grid = SUDOKU.parse(SOLUTION).grid.copy()
    (a, b), (c, d), (e, f), (g, h) = RECTANGLE
    grid[a, b], grid[c, d], grid[e, f], grid[g, h] = grid[c, d], grid[a, b], grid[g, h], grid[e, f]
    return SUDOKU.one_line(grid)


def run_json(argv: list[str], capsys) -> tuple[int, dict, str]:
    status = main(["solve", *argv, "--json"])
    captured = capsys.readouterr()
    return status, json.loads(captured.out), captured.err  # json.loads: stdout is one object and nothing else


def keeps_givens(puzzle: str, answer: str) -> bool:
    return all(p in "0." or p == a for p, a in zip(puzzle, answer))


@pytest.fixture(scope="module")
def maze_file(tmp_path_factory) -> Path:
    mazes, _ = generate_mazes(1, size=11, seed=2027)
    text = tokens_to_text(mazes[0])
    path = tmp_path_factory.mktemp("maze") / "maze.txt"
    path.write_text("\n".join(text[r * 11 : (r + 1) * 11] for r in range(11)) + "\n")
    return path


def test_json_is_one_object_with_valid_answers_in_the_puzzles_own_form(tmp_path, capsys):
    image = tmp_path / "steps.png"
    status, report, err = run_json([str(SUDOKU_MODEL), PUZZLE, "--trajectories", "4", "--image", str(image)], capsys)
    assert status == 0 and set(report) == JSON_KEYS and report["task"] == "sudoku"
    assert SUDOKU.parse(report["puzzle"]).grid.tolist() == SUDOKU.parse(PUZZLE).grid.tolist()
    assert report["answers"] and all(set(a) == ANSWER_KEYS for a in report["answers"])
    first = report["answers"][0]
    assert keeps_givens(PUZZLE, first["answer"]) and first["valid"] is True
    assert SUDOKU.verify(SUDOKU.parse(PUZZLE), SUDOKU.parse(first["answer"]).grid) is None
    assert 1 <= first["steps"] <= 16 and 0 <= first["confidence"] <= 1 and 0 <= first["trajectory"] < 4
    assert 1 <= report["trajectories"] <= 4 and report["wall_time_s"] > 0
    calls = network_calls_per_step(resolve_model(SUDOKU_MODEL, None, None)[0].config)
    assert report["network_calls"] % calls == 0 and report["network_calls"] >= first["steps"] * calls
    assert image.exists() and "steps drawn in" in err


def test_json_without_scaling_gives_the_plain_answer(capsys):
    status, report, _ = run_json([str(SUDOKU_MODEL), PUZZLE], capsys)
    [plain] = solve(SUDOKU_MODEL, PUZZLE)
    [answer] = report["answers"]
    assert status == 0 and report["trajectories"] == 1 and answer["trajectory"] == 0
    assert answer["answer"] == SUDOKU.one_line(plain.answer) and answer["steps"] == plain.steps
    assert report["network_calls"] == plain.steps * network_calls_per_step(
        resolve_model(SUDOKU_MODEL, None, None)[0].config
    )


def test_maze_json_lines_read_back_as_the_maze_and_the_answer(maze_file, capsys):
    status, report, _ = run_json(
        [str(MAZE_MODEL), str(maze_file), "--trajectories", "4", "--select", "vote", "--max-steps", "8"], capsys
    )
    puzzle = MAZE.parse(maze_file.read_text())
    assert report["task"] == "maze" and isinstance(report["puzzle"], list)
    assert np.array_equal(MAZE.parse("\n".join(report["puzzle"])).grid, puzzle.grid)  # a maze file again
    for entry in report["answers"]:
        grid = text_to_tokens("".join(entry["answer"]))
        assert grid.shape == puzzle.grid.shape and len(entry["answer"]) == 11
        assert entry["valid"] is (MAZE.verify(puzzle, grid) is None)
    assert status == (0 if report["answers"][0]["valid"] else 1)


def test_a_sudoku_with_two_solutions_gives_both(capsys):
    assert exact_solve(SUDOKU.parse(TWO_SOLUTIONS).grid.ravel(), limit=3).count == 2
    both = {SOLUTION, swapped_solution()}
    assert len(both) == 2 and all(keeps_givens(TWO_SOLUTIONS, s) for s in both)
    # Trajectories 1 and 2 of seed 0 find the two (float32 and bfloat16 alike); K=8 leaves a margin.
    [solution] = solve(SUDOKU_MODEL, TWO_SOLUTIONS, trajectories=8, answers=2, seed=0)
    assert [SUDOKU.one_line(c.answer) in both for c in solution.answers] == [True, True]
    assert {SUDOKU.one_line(c.answer) for c in solution.answers} == both
    assert all(c.valid for c in solution.answers) and solution.answer is solution.answers[0].answer
    confidences = [c.confidence for c in solution.answers]
    assert confidences == sorted(confidences, reverse=True)  # most confident first

    status, report, _ = run_json([str(SUDOKU_MODEL), TWO_SOLUTIONS, "--trajectories", "8", "--answers", "2"], capsys)
    assert status == 0 and {a["answer"] for a in report["answers"]} == both
    assert main(["solve", str(SUDOKU_MODEL), TWO_SOLUTIONS, "--trajectories", "8", "--answers", "3"]) == 0
    out = capsys.readouterr().out
    assert "answer 2: " in out and "answer 3: " not in out
    assert "found 2 distinct answers that keep the rules (of 3 asked for) among 8 trajectories" in out


def test_default_solve_is_unchanged_by_scaling():
    model = resolve_model(SUDOKU_MODEL, None, None)[0]
    [solution] = solve(model, PUZZLE)
    batch = {
        "inputs": torch.from_numpy(SUDOKU.encode(SUDOKU.parse(PUZZLE).grid)[None].astype(np.int32)),
        "puzzle_identifiers": torch.zeros(1, dtype=torch.int32),
    }
    plain = run_steps(model, batch, model.config.N_sup, adaptive=True, accept=rules_check(SUDOKU))
    assert solution.plan is None and solution.halt == "valid" and solution.trajectories == 1
    assert solution.steps == int(plain.steps[0])
    assert np.array_equal(SUDOKU.encode(solution.answer), plain.preds[0].numpy())
    [choice] = solution.answers
    assert choice.answer is solution.answer and choice.steps == solution.steps and choice.trajectory == 0
    assert solution.network_calls == solution.steps * network_calls_per_step(model.config)


@pytest.mark.parametrize("extra", [["--trajectories", "4"], ["--answers", "2"], ["--select", "vote"]])
def test_halt_is_refused_with_scaling(extra, capsys):
    assert main(["solve", str(SUDOKU_MODEL), PUZZLE, "--halt", "adaptive", *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("trm solve: error: --halt adaptive is the halting rule of one plain run")
    assert "--select chooses the answer" in err and "Traceback" not in err


def test_no_valid_answer_among_the_trajectories_is_labelled_and_exits_1(capsys):
    assert main(["solve", str(SUDOKU_MODEL), HARD, "--trajectories", "2", "--max-steps", "2"]) == 1
    out = capsys.readouterr().out
    assert "NOT a solution: " in out and "last answer (NOT a solution): " in out
    assert "(none of 2 trajectories of at most 2 steps found an answer that keeps the rules)" in out
    assert "trajectories run: 2 of at most 2 (--select verify)" in out


def test_show_is_refused_with_json(capsys):
    assert main(["solve", str(SUDOKU_MODEL), PUZZLE, "--json", "--show"]) == 2
    assert "--json keeps stdout for the JSON object alone" in capsys.readouterr().err


@pytest.fixture(scope="module")
def arc_model(tmp_path_factory):
    model = tiny_model(12, 900, puzzle_emb_ndim=32, puzzle_emb_len=1, num_puzzle_identifiers=20, hidden_size=32)
    return save_model(model, tmp_path_factory.mktemp("arc") / "arc")


@pytest.fixture
def arc_file(tmp_path):
    path = tmp_path / "task_b.json"
    path.write_text(json.dumps(arc_tasks()["task_b"]))
    return path


@pytest.mark.parametrize("extra", [["--trajectories", "4"], ["--noise", "0.1"], ["--answers", "2"]])
def test_arc_refuses_scaling_and_keeps_its_voting(arc_model, arc_file, extra, capsys):
    assert main(["solve", str(arc_model), str(arc_file), *extra]) == 2
    err = capsys.readouterr().err
    assert "ARC has no rules to check answers by and keeps its own voting" in err and "Traceback" not in err
    with pytest.raises(ConfigError, match="are for Sudoku and Maze"):
        solve(arc_model, arc_file, trajectories=2)


def test_arc_json_has_one_question_per_test_input(arc_model, arc_file, capsys):
    status, report, err = run_json([str(arc_model), str(arc_file), "--max-steps", "1"], capsys)
    assert status == 0 and set(report) == {"task", "questions", "network_calls", "wall_time_s"}
    tests = arc_tasks()["task_b"]["test"]
    assert report["task"] == "arc" and len(report["questions"]) == len(tests)
    for question, pair in zip(report["questions"], tests):
        assert set(question) == JSON_KEYS - {"task"} and question["puzzle"] == pair["input"]
        assert 1 <= len(question["answers"]) <= 2 and all(a["valid"] is None for a in question["answers"])
        assert all(isinstance(a["answer"], list) and isinstance(a["answer"][0], list) for a in question["answers"])
    assert report["network_calls"] == sum(q["network_calls"] for q in report["questions"])
    assert "note: no --data given" in err  # notes go to stderr, stdout stays one object


def test_help_documents_answers_and_json(capsys):
    with pytest.raises(SystemExit):
        main(["solve", "--help"])
    out = capsys.readouterr().out
    assert "--answers N" in out and "--json" in out and "--trajectories 64 --json" in out
    assert '"questions"' in out and "with --answers N, the first answer is" in out


def test_more_trajectories_solve_a_hard_17_clue_puzzle(shared):
    lines = shared("data", "sudoku", "royle-17-clue.txt").read_text().splitlines()
    puzzle = [line for line in lines[1:] if len(line) == 81][12]  # K=1 misses it; trajectory 5 finds it
    model = resolve_model(SUDOKU_MODEL, None, None)[0]
    [one] = solve(model, puzzle)
    [many] = solve(model, puzzle, trajectories=32)
    assert one.valid is False
    assert many.valid and SUDOKU.verify(SUDOKU.parse(puzzle), many.answer) is None
    assert keeps_givens(puzzle, SUDOKU.one_line(many.answer))
    assert many.trajectory_index > 0 and 2 <= many.trajectories <= 32
    # --show and --image draw the trajectory that gave the answer, mapped back to the puzzle's frame.
    assert len(many.trajectory) == many.steps and np.array_equal(many.trajectory[-1].answer, many.answer)
