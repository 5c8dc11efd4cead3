"""Fuzzing the puzzle readers and `trm solve`: any text gives a puzzle or a clean TRMError, never a crash."""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.eval.fixtures import MAZE, PUZZLE, tiny_model
from trm.cli import main
from trm.errors import TRMError
from trm.model import save_model
from trm.solve import read_puzzles
from trm.tasks import ARC, SUDOKU, Puzzle, maze
from trm.tasks import MAZE as MAZE_TASK

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

SUDOKU_CHARACTERS = "0123456789.x /\n#SG"
MAZE_CHARACTERS = "# .SGo\tx\r\n"

any_text = st.text(max_size=400)
sudoku_like = st.text(alphabet=SUDOKU_CHARACTERS, min_size=81, max_size=81) | st.text(min_size=81, max_size=81)
# Mostly blanks and a few digits: some strings are puzzles whose givens do not clash.
sparse_sudoku = st.lists(st.sampled_from("." * 12 + "123456789"), min_size=81, max_size=81).map("".join)
maze_text = st.lists(st.text(alphabet=MAZE_CHARACTERS, max_size=8), max_size=8).map("\n".join)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(["train", "test", "input", "output", "x"]), inner, max_size=4)
    ),
    max_leaves=30,
)


def check_puzzle(puzzle: Puzzle) -> None:
    """What a reader promises about the puzzles it returns."""
    if puzzle.task is SUDOKU:
        assert puzzle.grid.shape == (9, 9) and puzzle.grid.min() >= 0 and puzzle.grid.max() <= 9
        for unit in [*puzzle.grid, *puzzle.grid.T]:
            given_digits = unit[unit > 0]
            assert len(set(given_digits.tolist())) == len(given_digits)
    elif puzzle.task is MAZE_TASK:
        assert puzzle.grid.ndim == 2 and puzzle.grid.shape[0] == puzzle.grid.shape[1]
        assert (puzzle.grid == maze.START).sum() == 1 and (puzzle.grid == maze.GOAL).sum() == 1
    else:
        assert puzzle.task is ARC and puzzle.grid.ndim == 2 and puzzle.grid.max() <= 9


def read_or_refuse(source) -> None:
    try:
        puzzles = read_puzzles(source)
    except TRMError as e:
        assert str(e)  # a message, no traceback
        return
    assert puzzles
    for puzzle in puzzles:
        check_puzzle(puzzle)


@FAST
@given(text=any_text | sudoku_like | sparse_sudoku)
def test_any_puzzle_string_is_read_or_refused_cleanly(text, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # random text never names one of the repository's files
    read_or_refuse(text)


@FAST
@given(text=maze_text | any_text)
def test_any_maze_text_is_read_or_refused_cleanly(text):
    try:
        puzzle = MAZE_TASK.parse(text)
    except TRMError:
        return
    check_puzzle(puzzle)


@FAST
@given(content=maze_text | any_text | sudoku_like, blank_lines=st.sampled_from(["", "\n", "\n\n", " \n", "\r\n"]))
def test_any_text_file_is_read_or_refused_cleanly(content, blank_lines, tmp_path):
    path = tmp_path / "puzzle.txt"
    path.write_text(blank_lines + content + blank_lines, encoding="utf-8", errors="surrogatepass")
    read_or_refuse(path)


@FAST
@given(data=st.binary(max_size=300))
def test_any_bytes_in_a_file_are_read_or_refused_cleanly(data, tmp_path):
    path = tmp_path / "puzzle.txt"
    path.write_bytes(data)
    read_or_refuse(path)


@FAST
@given(value=json_values)
def test_any_json_is_read_as_an_arc_task_or_refused_cleanly(value, tmp_path):
    path = tmp_path / "task.json"
    path.write_text(json.dumps(value))
    read_or_refuse(path)


@pytest.fixture(scope="module")
def sudoku_checkpoint(tmp_path_factory):
    return save_model(tiny_model(11, 81), tmp_path_factory.mktemp("fuzz") / "sudoku")


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.sampled_from([PUZZLE, "\n".join(MAZE), "x" * 300, "", "-"]) | sparse_sudoku | any_text)
def test_trm_solve_exits_0_1_or_2_without_a_traceback(text, sudoku_checkpoint, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    try:
        status = main(["solve", str(sudoku_checkpoint), "--max-steps", "1", "--", text])
    except SystemExit as e:  # argparse's usage errors
        status = e.code
    captured = capsys.readouterr()
    assert status in (0, 1, 2) and "Traceback" not in captured.err
    if status == 2:
        assert captured.err.startswith("trm solve: error: ")
    else:
        assert "steps used: 1" in captured.out
