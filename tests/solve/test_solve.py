"""`solve` and `trm solve`: answers, steps and confidence; every kind of bad input refused cleanly."""

import json

import numpy as np
import pytest
import torch

from tests.eval.fixtures import MAZE, PUZZLE, arc_tasks, tiny_model, write_arc_dataset
from trm.cli import main
from trm.data import sudoku
from trm.errors import CheckpointError, DataError
from trm.model import save_model
from trm.solve import Puzzle, read_puzzles, solve
from trm.solve.solve import parse_maze


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    return {
        "sudoku": save_model(tiny_model(11, 81), root / "sudoku"),
        "maze": save_model(tiny_model(6, 25), root / "maze"),
        "arc": save_model(
            tiny_model(12, 900, puzzle_emb_ndim=32, puzzle_emb_len=1, num_puzzle_identifiers=20, hidden_size=32),
            root / "arc",
        ),
        "other": save_model(tiny_model(7, 10), root / "other"),
    }


@pytest.fixture
def maze_file(tmp_path):
    path = tmp_path / "maze.txt"
    path.write_text("\n".join(MAZE) + "\n")
    return path


def test_a_sudoku_is_solved_with_adaptive_halting():
    model = tiny_model(11, 81)
    [solution] = solve(model, PUZZLE, max_steps=6)
    assert solution.answer.shape == (9, 9) and 1 <= solution.steps <= 6
    assert len(solution.trajectory) == solution.steps
    assert np.array_equal(solution.trajectory[-1].answer, solution.answer)
    assert 0 <= solution.confidence <= 1 and solution.trajectory[-1].confidence == solution.confidence
    assert solution.valid is False and solution.problem  # a random model does not solve Sudoku
    # The answer is the rollout's at the step the sample halted.
    batch = {
        "inputs": torch.from_numpy(sudoku.encode(solution.puzzle.grid).reshape(1, 81).astype(np.int64)),
        "puzzle_identifiers": torch.zeros(1, dtype=torch.int32),
    }
    preds = model.rollout(batch, 6)["preds"][solution.steps - 1, 0].numpy()
    assert np.array_equal(sudoku.decode(preds).reshape(9, 9), solution.answer)


def test_fixed_halting_runs_every_step_even_beyond_n_sup():
    [solution] = solve(tiny_model(11, 81), PUZZLE, halt="fixed", max_steps=7)
    assert solution.steps == 7 and len(solution.trajectory) == 7


def test_mazes_are_read_from_text_files(maze_file, runs):
    [solution] = solve(runs["maze"], maze_file)
    assert solution.answer.shape == (5, 5) and solution.puzzle.task == "maze"
    assert solution.valid is (solution.problem is None)
    one_line = maze_file.with_name("line.txt")
    one_line.write_text("".join(MAZE))
    assert np.array_equal(read_puzzles(one_line)[0].grid, solution.puzzle.grid)


def test_arc_tasks_solve_every_test_input_and_vote_over_the_variants(tmp_path, runs):
    data = write_arc_dataset(tmp_path / "arc", num_aug=2)
    task_file = tmp_path / "task_b.json"
    task_file.write_text(json.dumps(arc_tasks()["task_b"]))
    solutions = solve(runs["arc"], task_file, data_dir=data, max_steps=2)
    assert len(solutions) == 2
    for solution, pair in zip(solutions, arc_tasks()["task_b"]["test"]):
        assert solution.variants == 3 and 1 <= solution.votes <= 3 and 1 <= len(solution.attempts) <= 2
        assert solution.correct is (np.array_equal(solution.answer, pair["output"]))
        assert solution.trajectory and not solution.notes
    [alone] = solve(runs["arc"], task_file, max_steps=1, task_id="task_b")[:1]
    assert alone.variants == 1 and "no --data" in alone.notes[0]


def test_a_challenges_file_needs_a_task_id(tmp_path, runs):
    path = tmp_path / "arc-agi_evaluation_challenges.json"
    path.write_text(json.dumps(arc_tasks()))
    with pytest.raises(DataError, match="holds 2 tasks; choose one with --task"):
        solve(runs["arc"], path)
    assert len(read_puzzles(path, task_id="task_b")) == 2


BAD_SUDOKUS = [
    (PUZZLE[:80], "has 80 characters, expected 81"),
    ("x" + PUZZLE[1:], "has 'x' at position 1"),
    ("5" + PUZZLE[1:].replace("3", "5", 1), "row 1 repeats the given 5"),
]


@pytest.mark.parametrize("text, message", BAD_SUDOKUS)
def test_bad_sudokus_are_refused(text, message):
    with pytest.raises(DataError, match=message):
        read_puzzles(text)


@pytest.mark.parametrize(
    "rows, message",
    [
        (["    #", "### #", "#   #", "# ###", "#   G"], "0 start 'S' cells"),
        (["S   #", "### #", "#   #", "# ###", "#    "], "0 goal 'G' cells"),
        (["S G #", "### #", "#   #", "# ###", "#   G"], "2 goal 'G' cells"),
        (["S   #", "###", "#   #", "# ###", "#   G"], "line 2 has 3 characters but line 1 has 5"),
        (["S   #", "### #", "#  x#", "# ###", "#   G"], "line 3, column 4 holds 'x'"),
        (["S   #", "### G"], "2 lines of 5 characters, expected a square"),
    ],
)
def test_bad_mazes_are_refused(rows, message):
    with pytest.raises(DataError, match=message):
        parse_maze("\n".join(rows))


@pytest.mark.parametrize(
    "content, message",
    [
        ("{not json", "not valid JSON"),
        (json.dumps({"train": [], "test": [{"input": [[1, 2], [3]]}]}), "row 1 has 1 cells but row 0 has 2"),
        (
            json.dumps({"train": [{"input": [[1]], "output": [[1, 2], [3]]}], "test": [{"input": [[1]]}]}),
            "train pair 0, output: row 1 has 1 cells",
        ),
        (json.dumps({"train": [], "test": [{"input": [[1, 12]]}]}), "expected a colour 0..9"),
        (json.dumps({"train": [], "test": []}), "'test' must be a non-empty list"),
        (json.dumps([1, 2]), "expected an ARC task"),
    ],
)
def test_bad_arc_files_are_refused(tmp_path, content, message):
    path = tmp_path / "task.json"
    path.write_text(content)
    with pytest.raises(DataError, match=message):
        read_puzzles(path)


def test_checkpoints_for_another_task_or_size_are_refused(runs, maze_file, tmp_path):
    with pytest.raises(CheckpointError, match=r"solves Sudoku 9x9 puzzles .* is a Maze puzzle"):
        solve(runs["sudoku"], maze_file)
    with pytest.raises(CheckpointError, match=r"solves Maze puzzles .* is a Sudoku 9x9 puzzle"):
        solve(runs["maze"], PUZZLE)
    big = tmp_path / "big.txt"
    big.write_text("\n".join(["S" + " " * 8] + [" " * 9] * 7 + [" " * 8 + "G"]))
    with pytest.raises(CheckpointError, match=r"solves 5x5 mazes .* is 9x9"):
        solve(runs["maze"], big)
    with pytest.raises(CheckpointError, match="vocab_size 7 and seq_len 10 match no puzzle"):
        solve(runs["other"], PUZZLE)


def test_puzzle_objects_are_accepted():
    grid = sudoku.parse_puzzle(PUZZLE).reshape(9, 9)
    [solution] = solve(tiny_model(11, 81), Puzzle("sudoku", grid, "mine"), max_steps=2)
    assert solution.puzzle.name == "mine"


def test_command_line_prints_answer_steps_and_confidence(runs, tmp_path, capsys):
    image = tmp_path / "steps.gif"
    assert main(["solve", str(runs["sudoku"]), PUZZLE, "--show", "--image", str(image), "--max-steps", "3"]) == 0
    out = capsys.readouterr().out
    assert "step 1 (" in out and "steps used:" in out and "halting confidence:" in out and "answer: " in out
    assert "\x1b[" not in out  # not a terminal: no colour codes
    assert image.exists()


@pytest.mark.parametrize(
    "which, puzzle, message",
    [
        ("sudoku", PUZZLE[:80], "has 80 characters, expected 81"),
        ("sudoku", "x" + PUZZLE[1:], "expected digits 1-9"),
        ("sudoku", "missing.json", "missing.json: file not found"),
        ("maze", PUZZLE, "is a Sudoku 9x9 puzzle"),
        ("other", PUZZLE, "match no puzzle"),
    ],
)
def test_command_line_errors_exit_2_without_a_traceback(runs, which, puzzle, message, capsys):
    assert main(["solve", str(runs[which]), puzzle]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.startswith("trm solve: error:")


def test_command_line_refuses_unknown_picture_formats(runs, capsys):
    assert main(["solve", str(runs["sudoku"]), PUZZLE, "--image", "steps.jpg"]) == 2
    assert ".png (steps side by side) or .gif" in capsys.readouterr().err


def test_help_has_examples(capsys):
    with pytest.raises(SystemExit):
        main(["solve", "--help"])
    out = capsys.readouterr().out
    assert "examples:" in out and "--show" in out and "--image" in out
