import dataclasses
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from trm import cli
from trm.data.build import build_dataset
from trm.data.format import read_dataset, read_identifiers
from trm.data.sudoku import (
    SudokuPuzzles,
    SudokuSource,
    download_sudoku_extreme,
    read_puzzle_file,
    read_sudoku_csv,
    solve_puzzle_file,
)
from trm.data.sudoku_solver import generate_puzzle, random_full_grid, solve, solve_many
from trm.errors import ConfigError, DataError
from trm.tasks.sudoku import (
    SudokuTransform,
    parse_digits,
    random_transforms,
    to_digits,
    to_tokens,
    valid_solutions,
    validity,
)

# A classic puzzle and its solution, written the way Sudoku-Extreme writes them ('.' = blank).
PUZZLE = "53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79"
SOLUTION = "534678912672195348198342567859761423426853791713924856961537284287419635345286179"


def is_valid_solution(grid: np.ndarray, puzzle: np.ndarray | None = None) -> bool:
    """Whether `grid` (digits) is a solution keeping the givens of `puzzle` (none by default)."""
    givens = np.zeros(81, dtype=np.int8) if puzzle is None else np.asarray(puzzle).ravel()
    return bool(validity(to_tokens(givens)[None], to_tokens(np.asarray(grid).ravel())[None])[0])


@pytest.fixture(scope="module")
def generated() -> SudokuPuzzles:
    rng = np.random.default_rng(0)
    made = [generate_puzzle(rng, givens=30) for _ in range(24)]
    return SudokuPuzzles(
        np.stack([g.puzzle for g in made]),
        np.stack([g.solution for g in made]),
        np.array([g.backtracks for g in made]),
    )


def puzzle_text(digits: np.ndarray) -> str:
    return "".join(str(d) if d else "." for d in digits)


def write_csv(path: Path, puzzles: SudokuPuzzles, ratings: np.ndarray | None = None) -> Path:
    ratings = puzzles.ratings if ratings is None else ratings
    lines = ["source,question,answer,rating"] + [
        f"gen,{puzzle_text(q)},{puzzle_text(a)},{r}"
        for q, a, r in zip(puzzles.questions, puzzles.answers, ratings)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


# --- encoding and parsing --------------------------------------------------------------------


def test_tokens_are_digit_plus_one_with_pad_free():
    digits = parse_digits(PUZZLE)
    tokens = to_tokens(digits)
    assert tokens.dtype == np.uint8
    assert tokens[2] == 1 and tokens[0] == 6  # blank -> 1, digit 5 -> 6
    assert tokens.min() >= 1 and tokens.max() <= 10
    np.testing.assert_array_equal(to_digits(tokens), digits)
    assert to_digits(np.array([0]))[0] == 0  # a PAD prediction reads as a blank


def test_parse_accepts_dots_and_zeros():
    np.testing.assert_array_equal(parse_digits(PUZZLE), parse_digits(PUZZLE.replace(".", "0")))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (PUZZLE[:80], "has 80 characters, expected 81"),
        (PUZZLE[:40] + "x" + PUZZLE[41:], "'x' at position 41"),
    ],
)
def test_parse_errors_say_what_was_expected(text, message):
    with pytest.raises(DataError, match=message):
        parse_digits(text, where="my puzzle")


def test_puzzle_file_skips_title_and_comments_and_names_bad_lines(tmp_path):
    path = tmp_path / "puzzles.txt"
    path.write_text(f"A title line\n{PUZZLE}\n\n# a comment\n{PUZZLE.replace('.', '0')}\n")
    puzzles, lines = read_puzzle_file(path)
    assert puzzles.shape == (2, 81) and lines == [2, 5]
    path.write_text(f"{PUZZLE}\n{PUZZLE}\n{PUZZLE}9\n")
    with pytest.raises(DataError, match=rf"{path}: line 3: puzzle has 82 characters"):
        read_puzzle_file(path)


# --- solver and validity ---------------------------------------------------------------------


def test_solver_finds_the_unique_solution():
    solved = solve(parse_digits(PUZZLE))
    assert solved.count == 1
    np.testing.assert_array_equal(solved.solution, parse_digits(SOLUTION))
    assert solve(parse_digits(PUZZLE)).backtracks == solved.backtracks


def test_solver_counts_up_to_the_limit_and_detects_clashes():
    assert solve(np.zeros(81, dtype=np.int8), limit=3).count == 3
    clash = parse_digits(PUZZLE)
    clash[2] = 5  # a second 5 in the first row
    assert solve(clash).count == 0 and solve(clash).solution is None


def test_solver_solves_sampled_royle_puzzles(shared):
    puzzles, _ = read_puzzle_file(shared("data", "sudoku", "royle-17-clue.txt"))
    assert len(puzzles) == 49_151 and np.all((puzzles != 0).sum(axis=1) == 17)
    sample = puzzles[np.random.default_rng(0).choice(len(puzzles), size=300, replace=False)]
    counts, _, solutions = solve_many(sample)
    assert np.all(counts == 1)
    assert all(is_valid_solution(s, p) for s, p in zip(solutions, sample))


def test_random_full_grids_are_valid_and_differ():
    rng = np.random.default_rng(0)
    grids = [random_full_grid(rng) for _ in range(10)]
    assert all(is_valid_solution(g) for g in grids)
    assert len({g.tobytes() for g in grids}) == 10


def swapped(grid: np.ndarray, a: tuple[int, int], b: tuple[int, int]) -> np.ndarray:
    board = grid.reshape(9, 9).copy()
    board[a], board[b] = board[b], board[a]
    return board.reshape(81)


@pytest.mark.parametrize(
    "broken",
    [
        # Two cells of one column in one box: columns and boxes stay valid, rows 1 and 2 repeat.
        lambda g: swapped(g, (0, 0), (1, 0)),
        # Two cells of one row in one box: only columns repeat.
        lambda g: swapped(g, (0, 0), (0, 1)),
        # Two whole rows of different bands: rows and columns stay valid, only boxes repeat.
        lambda g: g.reshape(9, 9)[[3, 1, 2, 0, 4, 5, 6, 7, 8]].reshape(81),
        lambda g: np.where(np.arange(81) == 5, 0, g),
    ],
    ids=["row-duplicate", "column-duplicate", "box-duplicate", "blank"],
)
def test_valid_solutions_rejects_broken_grids(broken):
    solution = parse_digits(SOLUTION)
    assert valid_solutions(solution[None]).tolist() == [True]
    assert valid_solutions(broken(solution)[None]).tolist() == [False]
    assert not is_valid_solution(broken(solution))


def test_is_valid_solution_checks_the_givens():
    puzzle, solution = parse_digits(PUZZLE), parse_digits(SOLUTION)
    assert is_valid_solution(solution, puzzle)
    wrong_given = puzzle.copy()
    wrong_given[0] = 4  # the solution has 5 there
    assert not is_valid_solution(solution, wrong_given)


def reference_apply(t: SudokuTransform, grid: np.ndarray) -> np.ndarray:
    """Spec section 7 written out cell by cell, as an independent check of `apply`."""
    board = grid.reshape(9, 9)
    board = board.T if t.transpose else board
    out = np.zeros((9, 9), dtype=grid.dtype)
    for r in range(9):
        for c in range(9):
            out[r, c] = t.digit_map[board[t.row_perm[r], t.col_perm[c]]]
    return out.reshape(81)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("transpose", [False, True])
def test_augmentation_keeps_sudokus_valid_and_inverts_exactly(generated, seed, transpose):
    rng = np.random.default_rng(seed)
    for t, q, a in zip(random_transforms(rng, len(generated)), generated.questions, generated.answers):
        t = dataclasses.replace(t, transpose=transpose)
        assert t.digit_map[0] == 0 and sorted(t.digit_map[1:]) == list(range(1, 10))
        for perm in (t.row_perm, t.col_perm):  # bands (stacks) move as wholes
            assert all(len(set(perm[3 * b : 3 * b + 3] // 3)) == 1 for b in range(3))
        new_q, new_a = t.apply(q), t.apply(a)
        np.testing.assert_array_equal(new_a, reference_apply(t, a))
        assert is_valid_solution(new_a, new_q)
        assert (new_q != 0).sum() == (q != 0).sum()
        assert solve(new_q).count == 1
        np.testing.assert_array_equal(t.invert().apply(new_q), q)
        np.testing.assert_array_equal(t.invert().apply(new_a), a)
        np.testing.assert_array_equal(t.invert().invert().apply(q), new_q)


def test_augmentation_keeps_shapes_and_works_on_batches(generated):
    t = random_transforms(np.random.default_rng(1), 1)[0]
    batch = generated.answers
    np.testing.assert_array_equal(t.apply(batch), np.stack([t.apply(a) for a in batch]))
    boards = batch.reshape(-1, 9, 9)
    assert t.apply(boards).shape == boards.shape
    np.testing.assert_array_equal(t.apply(boards).reshape(-1, 81), t.apply(batch))


def test_random_transforms_draw_both_transpose_settings():
    flags = {t.transpose for t in random_transforms(np.random.default_rng(0), 64)}
    assert flags == {False, True}


# --- generator -------------------------------------------------------------------------------


@pytest.mark.parametrize("givens", [40, 30, 24])
def test_generated_puzzles_are_unique_with_the_asked_givens(givens):
    rng = np.random.default_rng(givens)
    for _ in range(10):
        made = generate_puzzle(rng, givens=givens)
        assert (made.puzzle != 0).sum() == givens
        solved = solve(made.puzzle)
        assert solved.count == 1
        np.testing.assert_array_equal(solved.solution, made.solution)
        assert solved.backtracks == made.backtracks


def test_generator_is_deterministic_for_a_seed():
    first = [generate_puzzle(np.random.default_rng(7)).puzzle for _ in range(2)]
    assert np.array_equal(first[0], first[1])
    assert not np.array_equal(first[0], generate_puzzle(np.random.default_rng(8)).puzzle)


def test_generator_meets_a_minimum_difficulty():
    made = generate_puzzle(np.random.default_rng(0), givens=None, min_difficulty=3)
    assert made.backtracks >= 3 and solve(made.puzzle).backtracks == made.backtracks
    assert solve(made.puzzle).count == 1


def test_generator_gives_up_with_a_clear_error():
    with pytest.raises(DataError, match="between 17 and 81"):
        generate_puzzle(np.random.default_rng(0), givens=16)
    with pytest.raises(DataError, match="in 3 attempts"):
        generate_puzzle(np.random.default_rng(0), givens=17, max_attempts=3)


# --- CSV and puzzle-file sources -------------------------------------------------------------


def test_csv_reads_back_what_was_written(tmp_path, generated):
    read = read_sudoku_csv(write_csv(tmp_path / "train.csv", generated), progress=False)
    np.testing.assert_array_equal(read.questions, generated.questions)
    np.testing.assert_array_equal(read.answers, generated.answers)
    np.testing.assert_array_equal(read.ratings, generated.ratings)


def break_question_length(q, a):
    return q[:-1], a


def break_question_character(q, a):
    return "x" + q[1:], a


def break_answer_blank(q, a):
    return q, "." + a[1:]


def break_answer_given(q, a):
    cell = q.index(next(ch for ch in q if ch != "."))
    wrong = "1" if q[cell] != "1" else "2"
    return q, a[:cell] + wrong + a[cell + 1 :]


def break_answer_validity(q, a):
    board = [a[9 * r : 9 * r + 9] for r in range(9)]
    board[0], board[3] = board[3], board[0]  # rows stay valid, boxes do not
    return "." * 81, "".join(board)


@pytest.mark.parametrize(
    ("breaker", "message"),
    [
        (break_question_length, "question has 80 characters, expected 81"),
        (break_question_character, "question has 'x' at position 1"),
        (break_answer_blank, "answer has '.' at position 1, expected digits 1-9"),
        (break_answer_given, "where the question gives"),
        (break_answer_validity, "not a valid Sudoku"),
    ],
)
def test_csv_errors_name_file_and_line(tmp_path, generated, breaker, message):
    path = write_csv(tmp_path / "train.csv", generated)
    lines = path.read_text().splitlines()
    source, q, a, rating = lines[2].split(",")  # line 3 of the file
    lines[2] = ",".join([source, *breaker(q, a), rating])
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=rf"{path}: line 3: .*{message}"):
        read_sudoku_csv(path, progress=False)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("a,b\n", "line 2: expected 4 fields"),
        (f"x,{PUZZLE},{SOLUTION},hard\n", "line 2: rating 'hard'"),
        (f"\nx,{PUZZLE},{SOLUTION},{'9' * 30}\n", "line 3: rating '9{30}' is not an integer"),  # int64 overflow
        (f"x,{PUZZLE},{SOLUTION},{'9' * 5000}\n", "line 2: rating '9{40}...' is not an integer"),
    ],
)
def test_csv_row_errors(tmp_path, line, message):
    path = tmp_path / "test.csv"
    path.write_text("source,question,answer,rating\n" + line)
    with pytest.raises(DataError, match=rf"{path}: {message}"):
        read_sudoku_csv(path, progress=False)


def test_csv_header_is_checked(tmp_path):
    path = tmp_path / "test.csv"
    path.write_text(f"question,answer\n{PUZZLE},{SOLUTION}\n")
    with pytest.raises(DataError, match=rf"{path}: line 1: expected the header"):
        read_sudoku_csv(path, progress=False)


def test_puzzle_file_with_several_solutions_is_named(tmp_path):
    path = tmp_path / "puzzles.txt"
    path.write_text(f"{PUZZLE}\n{'.' * 81}\n")
    with pytest.raises(DataError, match=rf"{path}: line 2: the puzzle has more than one solution"):
        solve_puzzle_file(path, progress=False)


def test_hf_source_without_the_hub_client_explains_the_way_out(monkeypatch):
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # import now fails
    with pytest.raises(DataError, match=r"pip install 'trm\[hf\]'.*--source csv"):
        download_sudoku_extreme()


# --- building datasets -----------------------------------------------------------------------


def csv_dir(tmp_path: Path, generated: SudokuPuzzles) -> Path:
    directory = tmp_path / "extreme"
    directory.mkdir()
    write_csv(directory / "train.csv", generated.take(np.arange(16)), ratings=np.arange(16))
    write_csv(directory / "test.csv", generated.take(np.arange(16, 24)), ratings=2 * np.arange(8))
    return directory


def test_built_dataset_reads_back_in_the_reference_format(tmp_path, generated):
    out = tmp_path / "sudoku"
    config = SudokuSource(
        source="csv", input=csv_dir(tmp_path, generated), output=out, train_size=5, num_aug=3
    )
    summary = build_dataset(config, progress=False)
    assert len(summary.records["train"]) == 5 and len(summary.records["test"]) == 8

    train, test = read_dataset(out, "train"), read_dataset(out, "test")
    for split in (train, test):
        meta = split.metadata
        assert (meta.vocab_size, meta.seq_len, meta.pad_id, meta.ignore_label_id) == (11, 81, 0, 0)
        assert meta.num_puzzle_identifiers == 1 and meta.sets == ["all"]
        arrays = split.sets["all"]
        assert arrays.inputs.dtype == np.uint8 and np.all(arrays.puzzle_identifiers == 0)
        np.testing.assert_array_equal(arrays.puzzle_indices, np.arange(arrays.num_examples + 1))
        questions, answers = to_digits(arrays.inputs), to_digits(arrays.labels)
        assert all(is_valid_solution(a, q) for q, a in zip(questions, answers))
    assert read_identifiers(out) == ["<blank>"]

    augmented = train.sets["all"]
    assert train.metadata.total_groups == 5 and augmented.num_examples == 5 * 4
    np.testing.assert_array_equal(augmented.group_indices, np.arange(0, 21, 4))
    originals = to_digits(augmented.inputs[augmented.group_indices[:-1]])  # each group starts unaugmented
    assert all(any(np.array_equal(o, q) for q in generated.questions[:16]) for o in originals)
    np.testing.assert_array_equal(to_digits(test.sets["all"].inputs), generated.questions[16:])


def test_minimum_difficulty_filters_on_the_rating(tmp_path, generated):
    config = SudokuSource(
        source="csv", input=csv_dir(tmp_path, generated), output=tmp_path / "out", min_difficulty=10
    )
    summary = build_dataset(config, progress=False)
    assert sorted(summary.records["train"].ratings) == list(range(10, 16))
    assert sorted(summary.records["test"].ratings) == [10, 12, 14]


def test_single_puzzle_file_is_split_by_seed(tmp_path, generated):
    path = tmp_path / "puzzles.txt"
    path.write_text("\n".join(puzzle_text(q) for q in generated.questions) + "\n")

    def build(seed: int, name: str) -> SudokuPuzzles:
        config = SudokuSource(
            source="royle17", input=path, output=tmp_path / name, test_size=4, seed=seed
        )
        return build_dataset(config, progress=False).records["test"]

    first, again, other = build(0, "a"), build(0, "b"), build(1, "c")
    assert len(first) == 4
    np.testing.assert_array_equal(first.questions, again.questions)
    assert not np.array_equal(first.questions, other.questions)
    train = to_digits(read_dataset(tmp_path / "a", "train").sets["all"].inputs)
    held_out = {q.tobytes() for q in first.questions}
    assert len(train) == 20 and not held_out & {q.tobytes() for q in train}


def test_generated_build_is_deterministic(tmp_path):
    def build(seed: int, name: str) -> np.ndarray:
        config = SudokuSource(
            source="generate", output=tmp_path / name, train_size=4, test_size=2, num_aug=2, seed=seed
        )
        build_dataset(config, progress=False)
        return np.asarray(read_dataset(tmp_path / name, "train").sets["all"].inputs)

    first = build(3, "a")
    assert first.shape == (4 * 3, 81)
    np.testing.assert_array_equal(first, build(3, "b"))
    assert not np.array_equal(first, build(4, "c"))


def test_a_bad_row_found_late_leaves_no_directory(tmp_path, generated):
    source = csv_dir(tmp_path, generated)
    with (source / "test.csv").open("a") as f:
        f.write("bad,row,with,fields\n")
    out = tmp_path / "built" / "sudoku"
    with pytest.raises(DataError, match=r"test\.csv: line 10"):
        build_dataset(SudokuSource(source="csv", input=source, output=out), progress=False)
    assert not out.exists()


def test_a_failure_while_writing_leaves_no_directory(tmp_path, generated, disk_full_after_train):
    disk_full_after_train()
    out = tmp_path / "built" / "sudoku"
    config = SudokuSource(source="csv", input=csv_dir(tmp_path, generated), output=out)
    with pytest.raises(DataError, match=f"{out}: writing the dataset failed \\(disk full\\)"):
        build_dataset(config, progress=False)
    assert list((tmp_path / "built").iterdir()) == []


def test_existing_output_needs_overwrite(tmp_path, generated):
    out = tmp_path / "sudoku"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    config = SudokuSource(source="csv", input=csv_dir(tmp_path, generated), output=out)
    with pytest.raises(DataError, match="already exists"):
        build_dataset(config, progress=False)
    assert (out / "keep.txt").exists()
    with pytest.raises(DataError, match="not a dataset"):  # --overwrite replaces only our own outputs
        build_dataset(dataclasses.replace(config, overwrite=True), progress=False)
    assert (out / "keep.txt").exists()
    shutil.rmtree(out)
    build_dataset(config, progress=False)
    build_dataset(dataclasses.replace(config, overwrite=True), progress=False)
    assert read_dataset(out, "test").metadata.seq_len == 81


def test_config_rejects_missing_input_and_bad_sizes(tmp_path):
    with pytest.raises(ConfigError, match="needs --input"):
        SudokuSource(source="csv", output=tmp_path)
    with pytest.raises(ConfigError, match="train_size must be at least 1"):
        SudokuSource(source="generate", output=tmp_path, train_size=0)
    with pytest.raises(ConfigError, match="source must be one of"):
        SudokuSource(source="kaggle", output=tmp_path)


def test_command_line_builds_and_prints_a_summary(tmp_path, capsys):
    out = tmp_path / "gen"
    args = ["data", "sudoku", "--source", "generate", "--train-size", "3", "--test-size", "2"]
    assert cli.main([*args, "--num-aug", "2", "--givens", "26", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "3 puzzles x 3 variants" in printed and "seq_len 81, vocab 11" in printed
    assert read_dataset(out, "train").sets["all"].num_examples == 9

    assert cli.main(["data", "sudoku", "--source", "csv", "-o", str(tmp_path / "x")]) == 2
    assert "needs --input PATH" in capsys.readouterr().err


def test_generated_givens_range_draws_every_count_within_it():
    from trm.data.sudoku import generate_puzzles

    made = generate_puzzles(60, np.random.default_rng(3), (38, 40), progress=False)
    counts = (made.questions != 0).sum(axis=1)
    assert set(counts.tolist()) == {38, 39, 40}


@pytest.mark.parametrize("text", ["40-28", "10-30", "30-90", "a-b"])
def test_givens_range_rejects_bad_bounds(text):
    import argparse

    from trm.cli.data import _givens

    with pytest.raises(argparse.ArgumentTypeError, match=r"LOW-HIGH within 17\.\.81"):
        _givens(text)
