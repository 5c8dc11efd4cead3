import json
import re
import sys
from collections import deque

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trm.cli import main
from trm.data import maze
from trm.data.format import read_dataset, read_identifiers
from trm.data.maze_generator import generate_mazes
from trm.errors import DataError
from trm.tasks import maze as maze_task
from trm.tasks.grids import dihedral, inverse_dihedral

SIZE, MIN_LENGTH = 11, 30


def path_error(maze_grid: np.ndarray, prediction: np.ndarray) -> str | None:
    return maze_task.path_errors(np.asarray(maze_grid)[None], np.asarray(prediction)[None])[0]


def is_valid_path(maze_grid: np.ndarray, prediction: np.ndarray) -> bool:
    return path_error(maze_grid, prediction) is None


def grid(text: str) -> np.ndarray:
    """A maze drawn row by row ('.' stands for an open cell, to keep the rows visible)."""
    rows = [row.strip().replace(".", " ") for row in text.strip().splitlines()]
    return maze_task.text_to_tokens("".join(rows))


def count_shortest_paths(tokens: np.ndarray) -> tuple[int, int, set]:
    """(length, number of shortest S->G paths, cells on any of them), by plain BFS and layer DP."""
    n = tokens.shape[0]
    s, g = (tuple(np.argwhere(tokens == t)[0]) for t in (maze_task.START, maze_task.GOAL))
    dist, count, queue = {s: 0}, {s: 1}, deque([s])
    while queue:
        r, c = queue.popleft()
        for nxt in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1)):
            if 0 <= nxt[0] < n and 0 <= nxt[1] < n and tokens[nxt] != maze_task.WALL:
                if nxt not in dist:
                    dist[nxt], count[nxt] = dist[(r, c)] + 1, 0
                    queue.append(nxt)
                if dist[nxt] == dist[(r, c)] + 1:
                    count[nxt] += count[(r, c)]
    cells, frontier = {g}, [g]
    while frontier:  # walk back along every shortest path
        r, c = frontier.pop()
        for prev in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1)):
            if dist.get(prev) == dist[(r, c)] - 1 and prev not in cells:
                cells.add(prev)
                frontier.append(prev)
    return dist[g], count[g], cells


@pytest.fixture(scope="module")
def generated():
    return generate_mazes(40, size=SIZE, min_path_length=MIN_LENGTH, seed=0)


def test_generated_mazes_have_one_shortest_path_which_is_the_label(generated):
    mazes, labels = generated
    assert mazes.shape == labels.shape == (40, SIZE, SIZE)
    assert len({m.tobytes() for m in mazes}) == 40
    for m, label in zip(mazes, labels):
        length, count, cells = count_shortest_paths(m)
        assert count == 1 and length >= MIN_LENGTH
        path = {tuple(rc) for rc in np.argwhere(np.isin(label, (maze_task.PATH, maze_task.START, maze_task.GOAL)))}
        assert path == cells
        assert np.array_equal(np.where(label == maze_task.PATH, maze_task.OPEN, label), m)
    assert (maze.path_lengths(labels) >= MIN_LENGTH).all()


def test_generation_is_deterministic_and_prefix_stable():
    a = generate_mazes(6, size=9, min_path_length=20, seed=4)
    b = generate_mazes(9, size=9, min_path_length=20, seed=4)
    c = generate_mazes(6, size=9, min_path_length=20, seed=5)
    assert np.array_equal(a[0], b[0][:6]) and np.array_equal(a[1], b[1][:6])
    assert not np.array_equal(a[0], c[0])


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), size=st.integers(4, 10), share=st.floats(0.1, 1.0))
def test_any_generated_maze_has_a_unique_long_enough_path(seed, size, share):
    min_length = max(1, int(share * size))
    mazes, labels = generate_mazes(3, size=size, min_path_length=min_length, seed=seed)
    for m, label in zip(mazes, labels):
        length, count, _ = count_shortest_paths(m)
        assert count == 1 and length >= min_length
        assert is_valid_path(m, label)


def test_an_impossible_minimum_length_is_reported():
    with pytest.raises(DataError, match="lower --min-path-length"):
        generate_mazes(1, size=4, min_path_length=40, seed=0)


@pytest.mark.parametrize("tid", range(8))
def test_every_dihedral_transform_keeps_mazes_valid_and_inverts_exactly(generated, tid):
    for m, label in zip(*generated):
        turned, turned_label = dihedral(m, tid), dihedral(label, tid)
        assert path_error(turned, turned_label) is None
        assert count_shortest_paths(turned)[1] == 1
        assert np.array_equal(inverse_dihedral(turned, tid), m)
        assert np.array_equal(inverse_dihedral(turned_label, tid), label)


OPEN_MAZE = """
S...
....
....
...G
"""


def test_the_label_and_any_other_shortest_path_are_valid():
    m = grid(OPEN_MAZE)
    along_the_edges = grid("Sooo\n...o\n...o\n...G")
    staircase = grid("So..\n.oo.\n..oo\n...G")
    assert is_valid_path(m, along_the_edges)
    assert is_valid_path(m, staircase)
    assert is_valid_path(m.ravel(), staircase.ravel())  # flat sequences, as the model sees them


WALLED = """
S.#..
..#..
.....
##.#.
G....
"""
WALLED_ANSWER = """
S.#..
o.#..
ooo..
##o#.
Goo..
"""


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ("S.#..\no.#..\no....\n##o#.\nGoo..", "do not connect S to G"),  # a gap
        ("S.#..\no.#..\noo...\n#oo#.\nGo...", "goes through the wall at \\(3, 1\\)"),
        ("S....\no.#..\nooo..\n##o#.\nGoo..", "cell \\(0, 2\\) is '#' in the maze but ' '"),
        ("S.#.o\no.#..\nooo..\n##o#.\nGoo..", "1 marked cell\\(s\\) lie off the path"),
        (".S#..\no.#..\nooo..\n##o#.\nGoo..", "cell \\(0, 0\\) is 'S' in the maze but ' '"),  # moved S
        ("S.#..\no.#..\nooooo\n##.#o\nGoooo", "takes 12 steps, the shortest takes 8"),  # a detour
    ],
)
def test_broken_answers_are_rejected_with_the_reason(answer, reason):
    m, label = grid(WALLED), grid(WALLED_ANSWER)
    assert is_valid_path(m, label)
    assert not is_valid_path(m, grid(answer))
    assert re.search(reason, path_error(m, grid(answer)))


def test_padding_tokens_are_not_a_path():
    m, label = grid(WALLED), grid(WALLED_ANSWER)
    padded = label.copy()
    padded[0, 4] = 0
    assert "token 0" in path_error(m, padded)


def trm_maze(*args) -> int:
    """Run `trm data maze ARGS` and return its exit code."""
    return main(["data", "maze", *map(str, args)])


def write_csv(path, rows, header="source,question,answer,rating"):
    path.write_text("\n".join([header] + [",".join(r) for r in rows]) + "\n")
    return path


def csv_row(m: np.ndarray, label: np.ndarray) -> list[str]:
    length = int(maze.path_lengths(label[None])[0])
    return ["gen", maze_task.tokens_to_text(m), maze_task.tokens_to_text(label), str(length)]


def test_csv_round_trips(tmp_path, generated):
    mazes, labels = generated
    path = write_csv(tmp_path / "train.csv", [csv_row(m, y) for m, y in zip(mazes[:5], labels[:5])])
    read_mazes, read_labels = maze.read_maze_csv(path)
    assert np.array_equal(read_mazes, mazes[:5]) and np.array_equal(read_labels, labels[:5])


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda q, a: [q[:-1], a], "question has 120 characters, expected 121"),
        (lambda q, a: [q, a[:-1]], "answer has 120 characters, expected 121"),
        (lambda q, a: [q.replace(" ", "x", 1), a], "question has 'x' at row"),
        (lambda q, a: [q.replace("S", " "), a], "question has 0 start 'S' cells"),
        (lambda q, a: [q.replace(" ", "G", 1), a], "question has 2 goal 'G' cells"),
        (lambda q, a: [q, a.replace("o", " ", 1)], "answer is not a shortest path"),
    ],
)
def test_csv_errors_name_the_file_and_line(tmp_path, generated, edit, message):
    mazes, labels = generated
    good = csv_row(mazes[0], labels[0])
    bad = csv_row(mazes[1], labels[1])
    bad[1:3] = edit(bad[1], bad[2])
    path = write_csv(tmp_path / "mazes.csv", [good, bad])
    with pytest.raises(DataError, match=f"mazes.csv, line 3: .*{message}"):
        maze.read_maze_csv(path)


def test_csv_with_wrong_columns_or_no_rows(tmp_path):
    with pytest.raises(DataError, match="line 2: expected 4 columns"):
        maze.read_maze_csv(write_csv(tmp_path / "a.csv", [["only", "three", "cols"]]))
    with pytest.raises(DataError, match=r"b\.csv: no mazes"):
        maze.read_maze_csv(write_csv(tmp_path / "b.csv", []))
    with pytest.raises(DataError, match=r"c\.csv: not found"):
        maze.read_maze_csv(tmp_path / "c.csv")


def test_csv_header_is_checked_and_blank_lines_are_skipped(tmp_path, generated):
    mazes, labels = generated
    rows = [csv_row(m, y) for m, y in zip(mazes[:3], labels[:3])]
    headless = tmp_path / "headless.csv"
    headless.write_text("\n".join(",".join(r) for r in rows) + "\n")
    # Without the check the first maze would be taken for the header and lost without a word.
    with pytest.raises(DataError, match=r"headless\.csv, line 1: expected the header 'source,question,answer,rating'"):
        maze.read_maze_csv(headless)
    spaced = write_csv(tmp_path / "spaced.csv", [*rows, []])
    spaced.write_text(spaced.read_text() + "\n\n")
    assert len(maze.read_maze_csv(spaced)[0]) == 3
    (tmp_path / "binary.csv").write_bytes(b"source,question,answer,rating\n\xff\xfe,\x00\n")
    with pytest.raises(DataError, match=r"binary\.csv: cannot be read as CSV"):
        maze.read_maze_csv(tmp_path / "binary.csv")
    with pytest.raises(DataError, match=rf"{tmp_path}: cannot be read as CSV"):
        maze.read_maze_csv(tmp_path)


def test_source_is_required_as_for_sudoku(tmp_path, capsys):
    # No default: a default of hf would reach for the network when the option was forgotten.
    with pytest.raises(SystemExit) as exit:
        trm_maze("--output", tmp_path / "ds")
    assert exit.value.code == 2 and "the following arguments are required: --source" in capsys.readouterr().err
    assert not (tmp_path / "ds").exists()


def test_cli_generates_a_dataset_that_reads_back(tmp_path, capsys):
    out = tmp_path / "maze9"
    options = ("--source", "generate", "--size", 9, "--min-path-length", 20, "--output", out)
    assert trm_maze(*options, "--train-count", 12, "--test-count", 5) == 0
    summary = capsys.readouterr().out
    assert "train  12 mazes, 12 puzzles (augmentation off)" in summary and "seq_len 81, vocab 6" in summary
    assert read_identifiers(out) == ["<blank>"]
    for split, count in (("train", 12), ("test", 5)):
        data = read_dataset(out, split)
        meta = data.metadata
        assert (meta.vocab_size, meta.seq_len, meta.ignore_label_id, meta.pad_id) == (6, 81, 0, 0)
        assert (meta.num_puzzle_identifiers, meta.total_groups, meta.total_puzzles) == (1, count, count)
        arrays = data.sets["all"]
        assert arrays.inputs.shape == (count, 81) and (arrays.puzzle_identifiers == 0).all()
        assert all(is_valid_path(x, y) for x, y in zip(arrays.inputs, arrays.labels))
    train, test = (read_dataset(out, s).sets["all"].inputs for s in ("train", "test"))
    assert not {r.tobytes() for r in train} & {r.tobytes() for r in test}

    assert trm_maze(*options) == 2
    assert "already exists" in capsys.readouterr().err


def test_cli_augments_training_mazes_with_invertible_transforms(tmp_path, generated):
    mazes, labels = generated
    rows = [csv_row(m, y) for m, y in zip(mazes, labels)]
    write_csv(tmp_path / "train.csv", rows[:6])
    write_csv(tmp_path / "test.csv", rows[6:9])
    out = tmp_path / "ds"
    assert trm_maze("--source", "csv", "--input", tmp_path, "--augment", "--output", out) == 0
    train = read_dataset(out, "train")
    assert (train.metadata.total_groups, train.metadata.total_puzzles) == (6, 48)
    assert read_dataset(out, "test").metadata.total_puzzles == 3  # test mazes are never augmented
    record = json.loads((out / "maze.json").read_text())
    assert record["transforms"]["train"] == list(range(8)) * 6
    arrays = train.sets["all"]
    for puzzle, tid in enumerate(record["transforms"]["train"]):
        original = inverse_dihedral(arrays.inputs[puzzle].reshape(SIZE, SIZE), tid)
        assert np.array_equal(original, mazes[puzzle // 8])
        undo = record["dihedral_inverse"][tid]
        assert np.array_equal(dihedral(arrays.labels[puzzle].reshape(SIZE, SIZE), undo), labels[puzzle // 8])


def test_cli_splits_a_single_csv_and_rejects_misplaced_options(tmp_path, generated, capsys):
    mazes, labels = generated
    path = write_csv(tmp_path / "all.csv", [csv_row(m, y) for m, y in zip(mazes[:10], labels[:10])])
    out = tmp_path / "ds"
    assert trm_maze("--source", "csv", "--input", path, "--test-count", 3, "--output", out) == 0
    assert read_dataset(out, "test").metadata.total_groups == 3
    assert read_dataset(out, "train").metadata.total_groups == 7

    assert trm_maze("--source", "csv", "--input", path, "--size", 9, "--output", out) == 2
    assert "--size applies to --source generate only" in capsys.readouterr().err
    assert trm_maze("--source", "csv", "--input", tmp_path, "--output", tmp_path / "x") == 2
    assert "missing train.csv, test.csv" in capsys.readouterr().err


def test_hf_source_without_huggingface_hub_explains_what_to_do(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # import fails as if not installed
    assert trm_maze("--source", "hf", "--output", tmp_path / "ds") == 2
    err = capsys.readouterr().err
    assert "pip install 'trm[hf]'" in err and "--source csv" in err and "Traceback" not in err
    assert not (tmp_path / "ds").exists()


def test_help_describes_every_option_with_an_example(capsys):
    with pytest.raises(SystemExit):
        trm_maze("--help")
    text = capsys.readouterr().out
    for option in (
        "--source",
        "--input",
        "--output",
        "--size",
        "--min-path-length",
        "--train-count",
        "--test-count",
        "--augment",
        "--seed",
        "--overwrite",
    ):
        assert option in text
    assert text.count("Example:") >= 10


def test_hf_source_when_the_hub_is_unreachable(tmp_path, monkeypatch, capsys):
    def unreachable(*args, **kwargs):
        raise ConnectionError("no route to huggingface.co")

    monkeypatch.setitem(sys.modules, "huggingface_hub", type(sys)("huggingface_hub"))
    monkeypatch.setattr(sys.modules["huggingface_hub"], "hf_hub_download", unreachable, raising=False)
    assert trm_maze("--source", "hf", "--output", tmp_path / "ds") == 2
    err = capsys.readouterr().err
    assert "cannot fetch sapientinc/maze-30x30-hard-1k" in err and "no route" in err
