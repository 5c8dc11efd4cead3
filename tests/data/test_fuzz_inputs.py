"""Fuzzed data files: whatever a file holds, a reader returns a valid result or raises a
TRMError (which the command line prints as one line, without a traceback), never any other
exception. Inputs are tiny and examples few, so that the module runs in seconds."""

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trm.data import arc, arc_files, maze, sudoku
from trm.data.build import write_encoded
from trm.data.format import read_dataset, read_identifiers
from trm.data.maze_generator import generate_mazes
from trm.errors import TRMError
from trm.solve import read_puzzles
from trm.tasks import MAZE, SUDOKU
from trm.tasks.maze import GOAL, START, path_errors, tokens_to_text
from trm.tasks.sudoku import to_tokens, validity

FUZZ = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large],
)

PUZZLE = "530070000600195000098000060800060003400803001700020006060000280000419005000080079"
SOLUTION = "534678912672195348198342567859761423426853791713924856961537284287419635345286179"


def read_or_refuse(read, *args, **kwargs):
    """`read(...)`, or None when it refuses the input with a TRMError; any other exception fails the test."""
    try:
        return read(*args, **kwargs)
    except TRMError as e:
        assert str(e), "an error must say what is wrong"
        return None


def huge_digits(low: int = 19, high: int = 5000) -> st.SearchStrategy[str]:
    """Integers as text, beyond int64 and beyond Python's 4300-digit conversion limit."""
    return st.integers(low, high).map(lambda n: "9" * n)


def mutated(text: str, alphabet: str) -> st.SearchStrategy[str]:
    """`text` with a few characters replaced, dropped or added."""

    def apply(edits: list[tuple[int, str, int]]) -> str:
        chars = list(text)
        for position, char, kind in edits:
            at = position % (len(chars) + 1)
            if kind == 0 and at < len(chars):
                chars[at] = char
            elif kind == 1 and at < len(chars):
                del chars[at]
            else:
                chars.insert(at, char)
        return "".join(chars)

    edit = st.tuples(st.integers(0, 10_000), st.sampled_from(alphabet), st.integers(0, 2))
    return st.lists(edit, max_size=3).map(apply)


# --- Sudoku ------------------------------------------------------------------------------

SUDOKU_HEADER = ",".join(sudoku.CSV_HEADER)
sudoku_fields = st.one_of(
    st.just(PUZZLE),
    st.just(SOLUTION),
    mutated(PUZZLE, '0123456789.x é\n,"'),
    mutated(SOLUTION, "0123456789"),
    st.text(max_size=12),
    st.integers(-(10**30), 10**30).map(str),
    huge_digits(),
)
GOOD_ROW = ["x", PUZZLE, SOLUTION, "3"]
sudoku_rows = st.lists(
    st.one_of(
        st.just(GOOD_ROW),
        st.tuples(st.integers(0, 3), sudoku_fields).map(lambda e: [*GOOD_ROW[: e[0]], e[1], *GOOD_ROW[e[0] + 1 :]]),
        st.lists(sudoku_fields, max_size=6),
    ),
    max_size=4,
)


def csv_text(header: str, rows: list[list[str]]) -> str:
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return header + "\n" + out.getvalue()


@FUZZ
@given(
    header=st.sampled_from([SUDOKU_HEADER, "", "question,answer,rating", "source,question,answer,rating,extra"]),
    rows=sudoku_rows,
    raw=st.none() | st.binary(max_size=200),
)
def test_sudoku_csv_reads_or_refuses(tmp_path, header, rows, raw):
    path = tmp_path / "test.csv"
    if raw is None:
        path.write_text(csv_text(header, rows), encoding="utf-8")
    else:
        path.write_bytes(SUDOKU_HEADER.encode() + b"\n" + raw)
    puzzles = read_or_refuse(sudoku.read_sudoku_csv, path, progress=False)
    if puzzles is not None:
        assert puzzles.questions.shape == puzzles.answers.shape == (len(puzzles), 81)
        assert validity(to_tokens(puzzles.questions), to_tokens(puzzles.answers)).all()


@FUZZ
@given(lines=st.lists(st.one_of(sudoku_fields, st.just(""), st.just("# comment")), max_size=5))
def test_sudoku_puzzle_files_read_or_refuse(tmp_path, lines):
    path = tmp_path / "puzzles.txt"
    path.write_text("\n".join(lines), encoding="utf-8")
    result = read_or_refuse(sudoku.read_puzzle_file, path)
    if result is not None:
        puzzles, numbers = result
        assert puzzles.shape == (len(numbers), 81) and puzzles.min() >= 0 and puzzles.max() <= 9
    for line in lines:
        read_or_refuse(SUDOKU.parse, line, "line")


# --- Mazes -------------------------------------------------------------------------------

MAZES, LABELS = generate_mazes(2, size=5, min_path_length=3, seed=0)
MAZE_TEXTS = [tokens_to_text(m) for m in MAZES] + [tokens_to_text(y) for y in LABELS]
maze_fields = st.one_of(
    st.sampled_from(MAZE_TEXTS),
    st.sampled_from(MAZE_TEXTS).flatmap(lambda t: mutated(t, '# SGox,"\n')),
    st.text(alphabet="# SGo", max_size=30),
    st.text(max_size=8),
)


@FUZZ
@given(
    header=st.sampled_from([",".join(maze.CSV_COLUMNS), "", "source,question,answer"]),
    rows=st.lists(st.lists(maze_fields, max_size=5), max_size=4),
    good=st.lists(st.integers(0, 1), max_size=3),
)
def test_maze_csv_reads_or_refuses(tmp_path, header, rows, good):
    good = [["gen", MAZE_TEXTS[k], MAZE_TEXTS[k + 2], "1"] for k in good]  # valid rows among the fuzz
    path = tmp_path / "mazes.csv"
    path.write_text(csv_text(header, good + rows), encoding="utf-8")
    result = read_or_refuse(maze.read_maze_csv, path)
    if result is not None:
        mazes, labels = result
        assert mazes.shape == labels.shape and mazes.shape[1] == mazes.shape[2]
        assert path_errors(mazes, labels) == [None] * len(mazes)


def maze_lines(text: str) -> list[str]:
    return [text[r * 5 : (r + 1) * 5] for r in range(5)]


@FUZZ
@given(
    lines=st.one_of(
        st.sampled_from(MAZE_TEXTS[:2]).map(maze_lines),
        st.lists(st.text(alphabet="# SG.o\t", max_size=7), max_size=7),
    ),
    edits=st.lists(st.tuples(st.integers(0, 10), st.text(alphabet="# SGx", max_size=6)), max_size=2),
    blank_before=st.integers(0, 2),
    blank_after=st.integers(0, 2),
    newline=st.sampled_from(["\n", "\r\n"]),
)
def test_maze_text_files_read_or_refuse(tmp_path, lines, edits, blank_before, blank_after, newline):
    lines = list(lines)
    for at, text in edits:
        if lines:
            lines[at % len(lines)] = text
    text = newline.join([""] * blank_before + lines + [""] * blank_after) + newline
    path = tmp_path / "maze.txt"
    path.write_bytes(text.encode())
    puzzles = read_or_refuse(read_puzzles, path)
    for puzzle in puzzles or []:
        if puzzle.task is MAZE:
            grid = puzzle.grid
            assert grid.shape[0] == grid.shape[1] and (grid == START).sum() == (grid == GOAL).sum() == 1


def test_blank_rows_around_a_maze_are_stripped():
    rows = maze_lines(tokens_to_text(MAZES[0]))
    plain = MAZE.parse("\n".join(rows))
    assert np.array_equal(MAZE.parse("\n\n" + "\r\n".join(rows) + "\r\n\n  \n", "padded").grid, plain.grid)


# --- ARC ---------------------------------------------------------------------------------

json_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 12),
    st.integers(-(10**40), 10**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=4),
)
json_values = st.recursive(
    json_leaves,
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.sampled_from(["train", "test", "input", "output", "x"]), children, max_size=4)
    ),
    max_leaves=12,
)
odd_cells = st.one_of(st.integers(0, 9), json_leaves)
valid_grids = st.integers(1, 3).flatmap(
    lambda w: st.lists(st.lists(st.integers(0, 9), min_size=w, max_size=w), min_size=1, max_size=3)
)
grids = st.one_of(
    valid_grids,
    st.integers(1, 3).flatmap(lambda w: st.lists(st.lists(odd_cells, min_size=w, max_size=w), min_size=1, max_size=3)),
    json_values,
)
valid_pairs = st.fixed_dictionaries({"input": valid_grids, "output": valid_grids})
valid_tasks = st.fixed_dictionaries(
    {"train": st.lists(valid_pairs, min_size=1, max_size=3), "test": st.lists(valid_pairs, min_size=1, max_size=2)}
)


def paths_in(value: object, path: tuple = ()) -> list[tuple]:
    """Every place in a JSON value, as the keys and indices leading to it."""
    children = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else []
    return [path] + [p for key, child in children for p in paths_in(child, (*path, key))]


def replaced(value: object, path: tuple, new: object) -> object:
    if not path:
        return new
    copy = dict(value) if isinstance(value, dict) else list(value)
    copy[path[0]] = replaced(copy[path[0]], path[1:], new)
    return copy


def with_one_fault(task: dict) -> st.SearchStrategy[object]:
    """`task` with one of its parts (a cell, a row, a grid, a list of pairs...) replaced or removed."""
    faults = st.one_of(json_leaves, json_values, grids, st.just("<removed>"))
    return st.tuples(st.sampled_from(paths_in(task)[1:]), faults).map(lambda e: drop_removed(replaced(task, *e)))


def drop_removed(value: object) -> object:
    if isinstance(value, dict):
        return {k: drop_removed(v) for k, v in value.items() if v != "<removed>"}
    if isinstance(value, list):
        return [drop_removed(v) for v in value if v != "<removed>"]
    return value


tasks = st.one_of(valid_tasks, valid_tasks.flatmap(with_one_fault), json_values)


def arc_text(value: object, trick: str) -> str:
    """`value` as JSON text, or text that JSON readers choke on: deep nesting, a 5000-digit number."""
    if trick == "deep":
        return "[" * 100_000 + "]" * 100_000
    text = json.dumps(value)
    if trick == "huge" and "1" in text:
        return text.replace("1", "9" * 5000, 1)
    if trick == "truncated":
        return text[: len(text) // 2]
    return text


@FUZZ
@given(
    challenges=st.dictionaries(st.sampled_from(["t1", "t2", "a|||b"]), tasks, max_size=2) | json_values,
    solutions=st.none() | st.none() | st.dictionaries(st.sampled_from(["t1", "t2"]), st.lists(grids, max_size=2)),
    trick=st.sampled_from(["", "", "", "deep", "huge", "truncated"]),
    placeholders=st.booleans(),
)
def test_arc_kaggle_files_read_or_refuse(tmp_path, challenges, solutions, trick, placeholders):
    (tmp_path / "x_training_challenges.json").write_text(arc_text(challenges, trick))
    solutions_file = tmp_path / "x_training_solutions.json"
    solutions_file.unlink(missing_ok=True)
    if solutions is not None:
        solutions_file.write_text(json.dumps(solutions))
    loaded = read_or_refuse(arc_files.load_subset, tmp_path, "training", placeholders=placeholders)
    if loaded is not None:
        check_builds(tmp_path, loaded)


@FUZZ
@given(task=tasks, trick=st.sampled_from(["", "", "deep", "huge", "truncated", "binary"]))
def test_arc_task_files_read_or_refuse(tmp_path, task, trick):
    path = tmp_path / "training" / "t1.json"
    path.parent.mkdir(exist_ok=True)
    if trick == "binary":
        path.write_bytes(b"\xff\xfe\x00" + json.dumps(task).encode())
    else:
        path.write_text(arc_text(task, trick))
    loaded = read_or_refuse(arc_files.load_subset, tmp_path, "training")
    if loaded is not None:
        check_builds(tmp_path, loaded)


def check_builds(tmp_path: Path, loaded: list[arc_files.ArcTask]) -> None:
    """Tasks that read must build into a dataset that reads back."""
    for task in loaded:
        for grid in (g for pair in task.pairs() for g in pair):
            assert grid.dtype == np.uint8 and grid.max() <= 9 and 1 <= min(grid.shape) <= max(grid.shape) <= 30
    built = arc.encode_tasks({"training": loaded}, ["training"], num_aug=1, seed=0)
    out = tmp_path / "built"
    write_encoded(out, built, overwrite=True)
    assert read_identifiers(out) == built.identifiers
    assert read_dataset(out, "test").metadata.total_groups == len(loaded)


# --- A dataset's own files ---------------------------------------------------------------


@FUZZ
@given(
    metadata=json_values | st.fixed_dictionaries({"seq_len": json_leaves, "vocab_size": json_leaves}),
    trick=st.sampled_from(["", "deep", "huge", "truncated"]),
    array=st.sampled_from([b"", b"\x93NUMPY", None]),
)
def test_dataset_files_read_or_refuse(tmp_path, metadata, trick, array):
    root = tmp_path / "ds"
    (root / "train").mkdir(parents=True, exist_ok=True)
    (root / "identifiers.json").write_text(arc_text(metadata, trick))
    (root / "train" / "dataset.json").write_text(arc_text(metadata, trick))
    if array is not None:
        (root / "train" / "all__inputs.npy").write_bytes(array)
    read_or_refuse(read_identifiers, root)
    read_or_refuse(read_dataset, root, "train")


@pytest.mark.parametrize("reader", [sudoku.read_sudoku_csv, sudoku.read_puzzle_file, maze.read_maze_csv])
def test_a_directory_or_a_missing_file_is_refused_by_name(tmp_path, reader):
    for path in (tmp_path, tmp_path / "missing.csv"):
        with pytest.raises(TRMError, match=str(path)):
            reader(path)
