"""`solve` and `trm solve`: answers, steps and confidence; every kind of bad input refused cleanly."""

import importlib
import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import trm
from tests.eval.fixtures import (
    MAZE,
    PUZZLE,
    SOLUTION,
    arc_tasks,
    scripted_sudoku_model,
    tiny_model,
    write_arc_dataset,
)
from trm.cli import main
from trm.errors import CheckpointError, ConfigError, DataError
from trm.model import save_model
from trm.solve import Puzzle, read_puzzles, solve
from trm.tasks import MAZE as MAZE_TASK
from trm.tasks import SUDOKU
from trm.tasks.sudoku import to_digits, to_tokens

SUDOKU_MODEL = Path(trm.__file__).parent / "pretrained" / "sudoku-9x9"
README_PUZZLE = PUZZLE  # README's own example
# trm.solve.solve is also the name of the function trm.solve exports; take the module.
solve_module = importlib.import_module("trm.solve.solve")
puzzles_module = importlib.import_module("trm.solve.puzzles")


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
    [solution] = solve(model, PUZZLE, max_steps=6, halt="adaptive")
    assert solution.answer.shape == (9, 9) and 1 <= solution.steps <= 6
    assert len(solution.trajectory) == solution.steps
    assert np.array_equal(solution.trajectory[-1].answer, solution.answer)
    assert 0 <= solution.confidence <= 1 and solution.trajectory[-1].confidence == solution.confidence
    assert solution.valid is False and solution.problem  # a random model does not solve Sudoku
    # The answer is the rollout's at the step the sample halted.
    batch = {
        "inputs": torch.from_numpy(to_tokens(solution.puzzle.grid).reshape(1, 81).astype(np.int64)),
        "puzzle_identifiers": torch.zeros(1, dtype=torch.int32),
    }
    preds = model.rollout(batch, 6)["preds"][solution.steps - 1, 0].numpy()
    assert np.array_equal(to_digits(preds).reshape(9, 9), solution.answer)


def test_fixed_halting_runs_every_step_even_beyond_n_sup():
    [solution] = solve(tiny_model(11, 81), PUZZLE, halt="fixed", max_steps=7)
    assert solution.steps == 7 and len(solution.trajectory) == 7


def test_a_deeper_t_shows_every_second_step_of_the_models_own():
    # The weights do not depend on T: cycles=4 on a T=2 model computes per step what two steps do.
    model = tiny_model(11, 81)
    assert model.config.T == 2
    [deeper] = solve(model, PUZZLE, halt="fixed", max_steps=4, cycles=4)
    assert model.config.T == 2  # the caller's model is left as it was
    [own] = solve(model, PUZZLE, halt="fixed", max_steps=8)
    assert deeper.steps == 4
    for step, twice in zip(deeper.trajectory, own.trajectory[1::2], strict=True):
        assert np.array_equal(step.answer, twice.answer) and step.confidence == pytest.approx(twice.confidence)


def test_mazes_are_read_from_text_files(maze_file, runs):
    [solution] = solve(runs["maze"], maze_file)
    assert solution.answer.shape == (5, 5) and solution.puzzle.task is MAZE_TASK
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
        MAZE_TASK.parse("\n".join(rows))


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
    with pytest.raises(CheckpointError, match=r"solves Maze puzzles of 25 tokens .* is 9x9"):
        solve(runs["maze"], big)
    with pytest.raises(CheckpointError, match="vocab_size 7 and seq_len 10 match no puzzle"):
        solve(runs["other"], PUZZLE)


def test_puzzle_objects_are_accepted():
    grid = SUDOKU.parse(PUZZLE).grid
    [solution] = solve(tiny_model(11, 81), Puzzle(SUDOKU, grid, "mine"), max_steps=2)
    assert solution.puzzle.name == "mine"


def test_command_line_prints_answer_steps_and_confidence(runs, tmp_path, capsys):
    image = tmp_path / "steps.gif"
    # A random model breaks the rules: the answer is printed as NOT a solution, and the exit status is 1.
    assert main(["solve", str(runs["sudoku"]), PUZZLE, "--show", "--image", str(image), "--max-steps", "3"]) == 1
    out = capsys.readouterr().out
    assert "step 1 (" in out and "steps used:" in out and "halting confidence:" in out
    assert "NOT a solution: " in out and "last answer (NOT a solution): " in out
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


# --- Valid halting ----------------------------------------------------------------------------


def test_valid_halting_is_the_default_for_sudoku_and_waits_for_an_answer_that_keeps_the_rules():
    # The halting head says "halt" from step 1, but the answer keeps the rules only from step 3.
    [valid] = solve(scripted_sudoku_model([3], [5.0]), PUZZLE, max_steps=6)
    assert valid.halt == "valid" and valid.steps == 3 and valid.valid and valid.problem is None
    assert "".join(str(d) for d in valid.answer.ravel()) == SOLUTION
    assert [step.answer is not None for step in valid.trajectory] == [True] * 3
    [adaptive] = solve(scripted_sudoku_model([3], [5.0]), PUZZLE, max_steps=6, halt="adaptive")
    assert adaptive.steps == 1 and adaptive.valid is False and adaptive.problem.startswith("row 1 repeats 3")
    [fixed] = solve(scripted_sudoku_model([3], [5.0]), PUZZLE, max_steps=6, halt="fixed")
    assert fixed.steps == 6 and fixed.valid


def test_valid_halting_is_the_default_for_mazes_but_not_for_arc(runs, maze_file, tmp_path):
    [solution] = solve(runs["maze"], maze_file, max_steps=2)
    assert solution.halt == "valid"
    task_file = tmp_path / "task_b.json"
    task_file.write_text(json.dumps(arc_tasks()["task_b"]))
    assert solve(runs["arc"], task_file, max_steps=1)[0].halt == "adaptive"
    with pytest.raises(ConfigError, match="ARC has no verifier"):
        solve(runs["arc"], task_file, max_steps=1, halt="valid")


def test_an_answer_that_breaks_a_rule_at_the_cap_is_labelled_and_exits_1(runs, monkeypatch, capsys):
    never_valid = scripted_sudoku_model([99], [5.0])
    monkeypatch.setattr(solve_module, "resolve_model", lambda *args: (never_valid, "scripted"))
    assert main(["solve", str(runs["sudoku"]), PUZZLE, "--max-steps", "6"]) == 1
    out = capsys.readouterr().out
    assert "puzzle                  NOT a solution" in out
    assert "NOT a solution: row 1 repeats 3, column 3 repeats 3, box 1 repeats 3 (the last answer: the 6-step " in out
    assert "last answer (NOT a solution): " in out and "valid solution: yes" not in out


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_the_readme_puzzle_is_never_answered_with_a_broken_grid(dtype, capsys):
    # Adaptive halting, the model's own rule, stops this puzzle at step 1 on a grid whose rows repeat
    # digits; valid halting (the default) goes on until the answer keeps the rules, or labels it.
    status = main(["solve", str(SUDOKU_MODEL), README_PUZZLE, "--dtype", dtype])
    out = capsys.readouterr().out
    if status == 0:
        answer = re.search(r"^answer: (\d{81})$", out, re.M).group(1)
        puzzle = SUDOKU.parse(README_PUZZLE)
        assert "valid solution: yes" in out and SUDOKU.verify(puzzle, SUDOKU.parse(answer).grid) is None
    else:
        assert status == 1 and re.search(r"NOT a solution: (row|column|box) \d repeats \d|the given", out)
    [valid] = solve(SUDOKU_MODEL, README_PUZZLE, forward_dtype=dtype)
    [adaptive] = solve(SUDOKU_MODEL, README_PUZZLE, forward_dtype=dtype, halt="adaptive")
    assert valid.steps >= adaptive.steps
    assert valid.valid is (status == 0)
    # Adaptive halting is unchanged: the answer of the first step whose halting logit is positive.
    first = next(k for k, step in enumerate(adaptive.trajectory, 1) if step.confidence > 0.5)
    assert adaptive.steps == first


# --- Bad input, cleanly refused ---------------------------------------------------------------


@pytest.mark.parametrize(
    "text, message",
    [
        ("x" * 300, "is neither a file nor a Sudoku string: it has 300 characters, expected 81"),
        ("5" * 256 + ".json", "file not found"),
        ("", "the puzzle is empty; expected a Sudoku string (81 characters"),
        (" \n", "the puzzle is empty"),
        ("hello", "it has 5 characters, expected 81"),
        ("a\0b", "is neither a file nor a Sudoku string"),
    ],
)
def test_strings_that_are_neither_a_file_nor_a_puzzle_are_refused(text, message):
    with pytest.raises(DataError, match=re.escape(message)):
        read_puzzles(text)


def test_directories_binary_special_and_unreadable_files_are_refused(tmp_path, monkeypatch):
    with pytest.raises(DataError, match="is a directory; expected a puzzle file"):
        read_puzzles(tmp_path)
    binary = tmp_path / "model.bin"
    binary.write_bytes(bytes(range(256)))
    with pytest.raises(DataError, match=r"model.bin: is not a text file \(byte 128 is not UTF-8\)"):
        read_puzzles(binary)
    nul = tmp_path / "nul.txt"
    nul.write_bytes(b"S\0G")
    with pytest.raises(DataError, match="is a binary file"):
        read_puzzles(nul)
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    with pytest.raises(DataError, match="holds no puzzle this command reads"):
        read_puzzles(empty)
    if sys.platform.startswith("linux"):
        with pytest.raises(DataError, match="/dev/null: is a special file"):
            read_puzzles("/dev/null")
    big = tmp_path / "big.json"
    big.write_text("{}" + " " * 2000)
    monkeypatch.setattr(puzzles_module, "MAX_PUZZLE_FILE_BYTES", 1000)
    with pytest.raises(DataError, match=r"big.json: is 0 MiB; a puzzle file .* is expected to be at most 0 MiB"):
        read_puzzles(big)
    locked = tmp_path / "locked.txt"
    locked.write_text(PUZZLE)

    def refuse(self):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", refuse)
    with pytest.raises(DataError, match=r"locked.txt: cannot be read \(Permission denied\)"):
        read_puzzles(locked)


def test_maze_files_may_have_blank_lines_around_the_maze(tmp_path):
    expected = MAZE_TASK.parse("\n".join(MAZE)).grid
    padded = tmp_path / "padded.txt"
    padded.write_text("\n\n  \n" + "\r\n".join(MAZE) + "\r\n\n   \n")
    assert np.array_equal(read_puzzles(padded)[0].grid, expected)
    # A line of spaces as wide as the maze is a row of open cells, not a blank line.
    open_top = ["     ", "S   #", "### #", "#   #", "#   G"]
    assert (MAZE_TASK.parse("\n".join(open_top) + "\n").grid[0] == MAZE_TASK.parse("\n".join(MAZE)).grid[0, 1]).all()


@pytest.mark.parametrize(
    "content, message",
    [
        ('{"train": [], "test": [{"input": ' + "[" * 100_000 + "]" * 100_000 + "}]}", "nests too deeply"),
        ('{"train": [], "test": [{"input": [[' + "9" * 5000 + "]]}]}", "holds an integer of 5000 digits"),
        ('{"train": 5, "test": [{"input": [[1]]}]}', "'train' must be a list"),
        ('{"train": [], "test": {"input": [[1]]}}', "'test' must be a list"),
        ('\ufeff{"train": [], "test": [{"input": [[1, 10]]}]}', "expected a colour 0..9"),
    ],
)
def test_malformed_arc_json_names_the_file(tmp_path, content, message):
    path = tmp_path / "task.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=re.escape(str(path)) + ".*" + re.escape(message)):
        read_puzzles(path)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--device", "tpu"], "device 'tpu' is not a device name (valid here: cpu"),
        (["--device", "cuda:7"], "cuda:7"),
        (["--image", "/dev/null/steps.png"], "--image /dev/null/steps.png: cannot be written"),
        (["--halt-threshold", "nan"], "--halt-threshold: must be a number, got nan"),
    ],
)
def test_command_line_refuses_bad_options_without_a_traceback(runs, argv, message, capsys):
    if argv[0] == "--device" and argv[1] == "cuda:7" and torch.cuda.device_count() > 7:
        pytest.skip("this machine has 8 GPUs")
    try:
        status = main(["solve", str(runs["sudoku"]), PUZZLE, "--max-steps", "1", *argv])
    except SystemExit as e:  # argparse
        status = e.code
    assert status == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_help_documents_the_exit_status(capsys):
    with pytest.raises(SystemExit):
        main(["solve", "--help"])
    out = capsys.readouterr().out
    assert "exit status:" in out and "NOT a solution" in out and "--halt {fixed,adaptive,valid}" in out
