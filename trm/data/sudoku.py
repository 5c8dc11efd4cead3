"""Sudoku 9x9: encoding, parsing, augmentation and the dataset builder (trm-spec sections 1, 6, 7).

A puzzle is a flat array of 81 digits, row by row, 0 = blank. On disk every digit d becomes
token d + 1, so the vocabulary is 11 (0 = PAD, which is also the ignored label) and every
example has puzzle identifier 0, exactly as the reference builder writes Sudoku-Extreme.

Sources of puzzles: the Sudoku-Extreme CSV files (from the Hugging Face hub or local), a text
file of puzzles such as Gordon Royle's 49,151 17-clue puzzles (solved here), or our generator.
"""

from __future__ import annotations

import argparse
import csv
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from trm.data.format import SPLITS, PuzzleSet, SetBuilder, Split, check_output, make_metadata, write_dataset
from trm.errors import ConfigError, DataError

SEQ_LEN = 81
VOCAB_SIZE = 11  # PAD + digits 0..9
IGNORE_LABEL_ID = 0
IDENTIFIERS = ["<blank>"]

CSV_HEADER = ["source", "question", "answer", "rating"]
HF_REPO = "sapientinc/sudoku-extreme"
SOURCES = ("hf", "csv", "royle17", "generate")
DEFAULT_GENERATED = 1000  # puzzles per split for `generate` when no size is given
DEFAULT_HELD_OUT = 1000  # test puzzles split off a single-file source when no size is given


def encode(digits: np.ndarray) -> np.ndarray:
    """Digits 0..9 (0 = blank) -> tokens 1..10; token 0 stays free for PAD."""
    return np.asarray(digits).astype(np.uint8) + 1


def decode(tokens: np.ndarray) -> np.ndarray:
    """Tokens -> digits; a PAD token (never a valid prediction) reads as a blank."""
    return np.maximum(np.asarray(tokens).astype(np.int16) - 1, 0).astype(np.int8)


# ---------------------------------------------------------------------------------------------
# Parsing


def _grids_from_strings(
    strings: list[str], where: Callable[[int], str], field: str, blanks: bool
) -> np.ndarray:
    """Turn 81-character strings into an N x 81 digit array; `where(i)` names string i in errors."""
    expected = "digits 1-9 and '.' or '0' for blanks" if blanks else "digits 1-9"
    for i, text in enumerate(strings):
        if len(text) != SEQ_LEN:
            raise DataError(f"{where(i)}: {field} has {len(text)} characters, expected 81 ({expected})")
    if not strings:
        return np.zeros((0, SEQ_LEN), dtype=np.int8)
    # Non-ASCII characters become '?' one for one, so positions still match the text.
    raw = np.frombuffer("".join(strings).encode("ascii", errors="replace"), dtype=np.uint8).reshape(
        -1, SEQ_LEN
    )
    digits = np.where(raw == ord("."), ord("0"), raw).astype(np.int16) - ord("0")
    bad = (digits < 0) | (digits > 9) | ((digits == 0) & (not blanks))
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise DataError(f"{where(i)}: {field} has {strings[i][j]!r} at position {j + 1}, expected {expected}")
    return digits.astype(np.int8)


def parse_puzzle(text: str, where: str = "puzzle") -> np.ndarray:
    """One puzzle string of 81 characters ('.' or '0' = blank) -> 81 digits."""
    return _grids_from_strings([text.strip()], lambda _: where, "puzzle", blanks=True)[0]


def read_puzzle_file(path: str | Path) -> tuple[np.ndarray, list[int]]:
    """Read a text file of puzzles, one per line: the puzzles (N x 81) and each one's line number.

    Blank lines and lines starting with '#' are skipped, and so is a first line that does not
    start like a puzzle (a title, as in Royle's 17-clue file).
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as e:
        raise DataError(f"{path}: cannot be read ({e.strerror or e})") from None
    texts, numbers = [], []
    for number, line in enumerate(lines, start=1):
        line = line.strip()
        if not line or line.startswith("#") or (number == 1 and line[0] not in "0123456789."):
            continue
        texts.append(line)
        numbers.append(number)
    if not texts:
        raise DataError(f"{path}: holds no puzzles (expected lines of 81 characters, '.' or '0' = blank)")
    return _grids_from_strings(texts, lambda i: f"{path}: line {numbers[i]}", "puzzle", blanks=True), numbers


# ---------------------------------------------------------------------------------------------
# Validity


def _valid_solutions(grids: np.ndarray) -> np.ndarray:
    """For N x 81 grids of digits 1..9: does every row, column and box hold each digit once?"""
    rows = np.left_shift(1, grids.astype(np.int32) - 1).reshape(-1, 9, 9)
    cols = rows.transpose(0, 2, 1)
    boxes = rows.reshape(-1, 3, 3, 3, 3).transpose(0, 1, 3, 2, 4).reshape(-1, 9, 9)
    # Nine one-hot digits cover all nine bits only if they are all different.
    return np.all([np.bitwise_or.reduce(unit, axis=2) == 0x1FF for unit in (rows, cols, boxes)], axis=(0, 2))


def is_valid_solution(grid: np.ndarray, puzzle: np.ndarray | None = None) -> bool:
    """True if `grid` is a complete Sudoku solution (and keeps the givens of `puzzle`, if given)."""
    grid = np.asarray(grid)
    if grid.size != SEQ_LEN or not np.issubdtype(grid.dtype, np.integer):
        return False
    grid = grid.reshape(SEQ_LEN)
    if grid.min() < 1 or grid.max() > 9 or not _valid_solutions(grid[None])[0]:
        return False
    if puzzle is None:
        return True
    puzzle = np.asarray(puzzle)
    if puzzle.size != SEQ_LEN:
        return False
    puzzle = puzzle.reshape(SEQ_LEN)
    return bool(np.all((puzzle == 0) | (puzzle == grid)))


# ---------------------------------------------------------------------------------------------
# Augmentation (trm-spec section 7)


@dataclass(frozen=True, eq=False)
class SudokuTransform:
    """One symmetry of Sudoku, kept so that it can be undone (for example on a prediction).

    Applied in the reference's order: transpose if `transpose`, then move cells so that
    new[r, c] = old[row_perm[r], col_perm[c]], then relabel digits d -> digit_map[d].
    `row_perm` permutes the three bands and the rows inside each band, `col_perm` likewise
    stacks and columns; `digit_map` permutes 1..9 and keeps 0 (blank). Every such transform
    maps valid Sudokus to valid Sudokus.
    """

    digit_map: np.ndarray
    row_perm: np.ndarray
    col_perm: np.ndarray
    transpose: bool

    def apply(self, grids: np.ndarray) -> np.ndarray:
        """Transform grids of shape (..., 81) or (..., 9, 9); the result has the input's shape."""
        grids = np.asarray(grids)
        boards = grids.reshape(*grids.shape[:-1], 9, 9) if grids.shape[-1] == SEQ_LEN else grids
        if boards.shape[-2:] != (9, 9):
            raise DataError(f"expected Sudoku grids of shape (..., 81) or (..., 9, 9), got {grids.shape}")
        if self.transpose:
            boards = boards.swapaxes(-1, -2)
        boards = boards[..., self.row_perm[:, None], self.col_perm[None, :]]
        return self.digit_map.astype(grids.dtype)[boards].reshape(grids.shape)

    def invert(self) -> SudokuTransform:
        """The transform that undoes this one.

        Undoing "transpose, then permute rows by r and columns by c" is "permute by the
        inverses, then transpose", which is again of our form with the two inverses swapped.
        """
        rows, cols = np.argsort(self.row_perm), np.argsort(self.col_perm)
        if self.transpose:
            rows, cols = cols, rows
        return SudokuTransform(np.argsort(self.digit_map), rows, cols, self.transpose)

    def apply_inverse(self, grids: np.ndarray) -> np.ndarray:
        return self.invert().apply(grids)


def _band_preserving_perms(rng: np.random.Generator, count: int) -> np.ndarray:
    """`count` permutations of 0..8 that shuffle the three blocks of three and each block."""
    blocks = rng.permuted(np.tile(np.arange(3), (count, 1)), axis=1)
    inside = rng.permuted(np.tile(np.arange(3), (count, 3, 1)), axis=2)
    return (3 * blocks[:, :, None] + inside).reshape(count, 9)


def random_transforms(rng: np.random.Generator, count: int) -> list[SudokuTransform]:
    """`count` random transforms, drawn as the reference draws them (transpose with probability 1/2)."""
    digits = rng.permuted(np.tile(np.arange(1, 10), (count, 1)), axis=1)
    digit_maps = np.concatenate([np.zeros((count, 1), dtype=digits.dtype), digits], axis=1)
    rows = _band_preserving_perms(rng, count)
    cols = _band_preserving_perms(rng, count)
    transposes = rng.random(count) < 0.5
    return [SudokuTransform(digit_maps[i], rows[i], cols[i], bool(transposes[i])) for i in range(count)]


# ---------------------------------------------------------------------------------------------
# Puzzle sources


@dataclass(frozen=True)
class SudokuPuzzles:
    """Questions and answers (N x 81 digits, 0 = blank) and a difficulty rating for each."""

    questions: np.ndarray
    answers: np.ndarray
    ratings: np.ndarray

    def __len__(self) -> int:
        return len(self.questions)

    def take(self, index: np.ndarray) -> SudokuPuzzles:
        return SudokuPuzzles(self.questions[index], self.answers[index], self.ratings[index])

    @staticmethod
    def concat(parts: list[SudokuPuzzles]) -> SudokuPuzzles:
        return SudokuPuzzles(
            *(np.concatenate([getattr(p, f) for p in parts]) for f in ("questions", "answers", "ratings"))
        )


def _check_answers(questions: np.ndarray, answers: np.ndarray, where: Callable[[int], str]) -> None:
    clash = (questions != 0) & (questions != answers)
    if clash.any():
        i, cell = np.argwhere(clash)[0]
        raise DataError(
            f"{where(i)}: the answer has {answers[i, cell]} at row {cell // 9 + 1}, column {cell % 9 + 1} "
            f"where the question gives {questions[i, cell]}"
        )
    invalid = np.flatnonzero(~_valid_solutions(answers))
    if invalid.size:
        raise DataError(
            f"{where(invalid[0])}: the answer is not a valid Sudoku (a row, column or box repeats a digit)"
        )


def _parse_csv_rows(path: Path, rows: list[list[str]], lines: list[int]) -> SudokuPuzzles:
    def where(i: int) -> str:
        return f"{path}: line {lines[i]}"

    questions = _grids_from_strings([r[1] for r in rows], where, "question", blanks=True)
    answers = _grids_from_strings([r[2] for r in rows], where, "answer", blanks=False)
    _check_answers(questions, answers, where)
    ratings = np.zeros(len(rows), dtype=np.int64)
    for i, row in enumerate(rows):
        try:
            ratings[i] = int(row[3])
        except (ValueError, OverflowError):
            shown = row[3] if len(row[3]) <= 40 else row[3][:40] + "..."
            raise DataError(f"{where(i)}: rating {shown!r} is not an integer of at most 18 digits") from None
    return SudokuPuzzles(questions, answers, ratings)


def read_sudoku_csv(path: str | Path, progress: bool = True) -> SudokuPuzzles:
    """Read a CSV in the Sudoku-Extreme format: header `source,question,answer,rating`."""
    path = Path(path)
    chunk_rows = 1 << 16  # parse in chunks: the full train split has millions of rows
    parts, rows, lines = [], [], []
    try:
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header != CSV_HEADER:
                got = "an empty file" if header is None else repr(",".join(header)[:80])
                raise DataError(f"{path}: line 1: expected the header {','.join(CSV_HEADER)!r}, got {got}")
            for row in tqdm(reader, desc=f"reading {path.name}", unit=" rows", disable=not progress):
                if not row:  # a blank line, such as one at the end of the file
                    continue
                if len(row) != len(CSV_HEADER):
                    raise DataError(
                        f"{path}: line {reader.line_num}: expected 4 fields ({','.join(CSV_HEADER)}), got {len(row)}"
                    )
                rows.append(row)
                lines.append(reader.line_num)
                if len(rows) == chunk_rows:
                    parts.append(_parse_csv_rows(path, rows, lines))
                    rows, lines = [], []
    except FileNotFoundError:
        raise DataError(f"{path}: not found") from None
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DataError(f"{path}: cannot be read as CSV ({e})") from None
    parts.append(_parse_csv_rows(path, rows, lines))
    return SudokuPuzzles.concat(parts)


def download_sudoku_extreme(repo: str = HF_REPO) -> dict[str, Path]:
    """Fetch train.csv and test.csv of Sudoku-Extreme from the Hugging Face hub (cached there)."""
    offline_hint = (
        f"download train.csv and test.csv of {repo} on a machine that can, copy them here and use "
        "--source csv --input DIR"
    )
    try:
        from huggingface_hub import hf_hub_download
    except ImportError:
        raise DataError(
            f"--source hf needs the huggingface_hub package: pip install 'trm[hf]'; or {offline_hint}"
        ) from None
    paths = {}
    for split in SPLITS:
        try:
            paths[split] = Path(hf_hub_download(repo, f"{split}.csv", repo_type="dataset"))
        except Exception as e:  # the hub client raises many kinds (HTTP, offline, unknown repo)
            raise DataError(
                f"cannot download {split}.csv of {repo} ({type(e).__name__}: {e}); {offline_hint}"
            ) from None
    return paths


def solve_puzzle_file(path: str | Path, progress: bool = True) -> SudokuPuzzles:
    """Read a text file of puzzles and solve each; every puzzle must have exactly one solution."""
    from trm.data.sudoku_solver import solve_many  # numba takes ~0.5 s to load: only when solving

    questions, lines = read_puzzle_file(path)
    chunk = 2048
    counts, ratings, answers = [], [], []
    with tqdm(
        total=len(questions), desc=f"solving {Path(path).name}", unit=" puzzles", disable=not progress
    ) as bar:
        for start in range(0, len(questions), chunk):
            count, rating, answer = solve_many(questions[start : start + chunk], limit=2)
            counts.append(count)
            ratings.append(rating)
            answers.append(answer)
            bar.update(len(count))
    counts = np.concatenate(counts)
    not_unique = np.flatnonzero(counts != 1)
    if not_unique.size:
        i = not_unique[0]
        problem = "has no solution" if counts[i] == 0 else "has more than one solution"
        raise DataError(f"{path}: line {lines[i]}: the puzzle {problem}")
    return SudokuPuzzles(questions, np.concatenate(answers), np.concatenate(ratings))


def generate_puzzles(
    count: int,
    rng: np.random.Generator,
    givens: int | tuple[int, int] | None,
    min_difficulty: int = 0,
    progress: bool = True,
) -> SudokuPuzzles:
    """`count` unique-solution puzzles from our generator (see `sudoku_solver.generate_puzzle`).

    `givens` is the number of givens of every puzzle, a (low, high) range from which each
    puzzle draws its number uniformly, or None for minimal puzzles.
    """
    from trm.data.sudoku_solver import generate_puzzle  # numba takes ~0.5 s to load: only when solving

    def draw() -> int | None:
        return int(rng.integers(givens[0], givens[1] + 1)) if isinstance(givens, tuple) else givens

    made = [
        generate_puzzle(rng, draw(), min_difficulty)
        for _ in tqdm(range(count), desc="generating", unit=" puzzles", disable=not progress)
    ]
    return SudokuPuzzles(
        np.array([g.puzzle for g in made], dtype=np.int8).reshape(-1, SEQ_LEN),
        np.array([g.solution for g in made], dtype=np.int8).reshape(-1, SEQ_LEN),
        np.array([g.backtracks for g in made], dtype=np.int64),
    )


# ---------------------------------------------------------------------------------------------
# Building a dataset


@dataclass(frozen=True)
class SudokuBuildConfig:
    """Options of the Sudoku builder; `trm data sudoku --help` explains each."""

    source: str
    output: Path
    input: Path | None = None
    repo: str = HF_REPO
    train_size: int | None = None
    test_size: int | None = None
    num_aug: int = 0
    min_difficulty: int | None = None
    givens: int | tuple[int, int] | None = 30
    seed: int = 0
    overwrite: bool = False

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ConfigError(f"source must be one of {', '.join(SOURCES)}, got {self.source!r}")
        if self.source in ("csv", "royle17") and self.input is None:
            raise ConfigError(f"--source {self.source} needs --input PATH")
        for name in ("train_size", "test_size"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"{name} must be at least 1, got {value}")
        if self.num_aug < 0:
            raise ConfigError(f"num_aug must be 0 or more, got {self.num_aug}")


@dataclass(frozen=True)
class BuildSummary:
    config: SudokuBuildConfig
    train: SudokuPuzzles
    test: SudokuPuzzles
    seconds: float

    def __str__(self) -> str:
        c = self.config
        variants = 1 + c.num_aug

        def difficulty(p: SudokuPuzzles) -> str:
            return f"mean {p.ratings.mean():.1f}, max {p.ratings.max()}" if len(p) else "-"

        scale = "the CSV's rating column" if c.source in ("hf", "csv") else "our solver's backtracks"
        return "\n".join(
            [
                f"Sudoku dataset written to {c.output} (source {c.source}, seed {c.seed})",
                f"  train: {len(self.train)} puzzles x {variants} variants "
                + f"(1 + {c.num_aug} augmentations) = {len(self.train) * variants} examples",
                f"  test:  {len(self.test)} puzzles, not augmented",
                f"  seq_len {SEQ_LEN}, vocab {VOCAB_SIZE} (0 = PAD, digit d = token d + 1), "
                + f"{len(IDENTIFIERS)} puzzle identifier",
                f"  difficulty ({scale}): train {difficulty(self.train)}; test {difficulty(self.test)}",
                f"  took {self.seconds:.1f} s",
            ]
        )


def _keep_difficult(puzzles: SudokuPuzzles, min_difficulty: int | None) -> SudokuPuzzles:
    if min_difficulty is None:
        return puzzles
    return puzzles.take(np.flatnonzero(puzzles.ratings >= min_difficulty))


def _subsample(puzzles: SudokuPuzzles, size: int | None, rng: np.random.Generator) -> SudokuPuzzles:
    """A random subset of `size` puzzles, in their original order (all of them if there are fewer)."""
    if size is None or size >= len(puzzles):
        return puzzles
    return puzzles.take(np.sort(rng.choice(len(puzzles), size=size, replace=False)))


def _hold_out(
    puzzles: SudokuPuzzles, test_size: int, rng: np.random.Generator, where: Path
) -> tuple[SudokuPuzzles, SudokuPuzzles]:
    if test_size >= len(puzzles):
        raise DataError(
            f"{where}: has {len(puzzles)} puzzles, too few to hold out {test_size} for test (--test-size)"
        )
    order = rng.permutation(len(puzzles))
    return puzzles.take(np.sort(order[test_size:])), puzzles.take(np.sort(order[:test_size]))


def load_puzzles(
    config: SudokuBuildConfig, rng: np.random.Generator, progress: bool = True
) -> tuple[SudokuPuzzles, SudokuPuzzles]:
    """The train and test puzzles of the chosen source, filtered by difficulty (not yet subsampled)."""
    if config.source == "generate":
        min_difficulty = config.min_difficulty or 0
        return tuple(
            generate_puzzles(size or DEFAULT_GENERATED, rng, config.givens, min_difficulty, progress)
            for size in (config.train_size, config.test_size)
        )
    if config.source == "hf":
        paths = download_sudoku_extreme(config.repo)
    elif config.source == "csv" and config.input.is_dir():
        paths = {split: config.input / f"{split}.csv" for split in SPLITS}
    else:
        read = read_sudoku_csv if config.source == "csv" else solve_puzzle_file
        pool = _keep_difficult(read(config.input, progress=progress), config.min_difficulty)
        return _hold_out(pool, config.test_size or DEFAULT_HELD_OUT, rng, config.input)
    train, test = (
        _keep_difficult(read_sudoku_csv(paths[s], progress), config.min_difficulty) for s in SPLITS
    )
    return train, _subsample(test, config.test_size, rng)


def to_puzzle_set(
    puzzles: SudokuPuzzles, num_aug: int, rng: np.random.Generator, progress: bool = True, desc: str = ""
) -> PuzzleSet:
    """One group per puzzle: the puzzle itself, then `num_aug` random transforms of it."""
    builder = SetBuilder(seq_len=SEQ_LEN)
    for question, answer in tqdm(
        zip(puzzles.questions, puzzles.answers),
        total=len(puzzles),
        desc=desc,
        unit=" puzzles",
        disable=not progress,
    ):
        pair = np.stack([question, answer])
        variants = [pair] + [t.apply(pair) for t in random_transforms(rng, num_aug)]
        for q, a in variants:
            builder.add_puzzle(encode(q), encode(a), identifier=0)
        builder.end_group()
    return builder.build()


def build_sudoku_dataset(config: SudokuBuildConfig, progress: bool = True) -> BuildSummary:
    """Build train/ and test/ in the reference format; nothing is left at the output on failure."""
    start = time.perf_counter()
    check_output(config.output, config.overwrite)  # a bad output path fails now, not after the build
    # Independent streams, so that e.g. changing --num-aug does not change which puzzles are sampled.
    source_rng, sample_rng, aug_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(config.seed).spawn(3)
    )
    train, test = load_puzzles(config, source_rng, progress)
    if config.source != "generate":
        train = _subsample(train, config.train_size, sample_rng)
    for name, puzzles in (("train", train), ("test", test)):
        if not len(puzzles):
            raise DataError(
                f"no {name} puzzles: the source has none, or --min-difficulty {config.min_difficulty} is too high"
            )
    splits = {}
    for name, puzzles, num_aug in (("train", train, config.num_aug), ("test", test, 0)):
        puzzle_set = to_puzzle_set(puzzles, num_aug, aug_rng, progress, desc=f"building {name}")
        metadata = make_metadata(
            {"all": puzzle_set},
            vocab_size=VOCAB_SIZE,
            seq_len=SEQ_LEN,
            num_puzzle_identifiers=len(IDENTIFIERS),
            ignore_label_id=IGNORE_LABEL_ID,
        )
        splits[name] = Split(metadata=metadata, sets={"all": puzzle_set})
    write_dataset(config.output, splits, IDENTIFIERS, overwrite=config.overwrite)
    return BuildSummary(config, train, test, time.perf_counter() - start)


# ---------------------------------------------------------------------------------------------
# Command line

_DESCRIPTION = """\
Build a 9x9 Sudoku dataset in the reference on-disk format: train/ and test/ with seq_len 81
and vocab 11 (0 = PAD, digit d = token d + 1, blank = digit 0), one puzzle identifier. Train
puzzles can be augmented (digit relabelling, band/row and stack/column permutations,
transpose); test puzzles never are. The same options and seed give the same dataset, and a
failed build leaves nothing at the output path.
"""

_EXAMPLES = """\
examples:
  # the paper's training set: 1000 Sudoku-Extreme puzzles x 1000 augmentations, full test split
  trm data sudoku --source hf --train-size 1000 --num-aug 1000 -o data/sudoku-extreme-1k-aug-1000
  # the same from train.csv and test.csv downloaded elsewhere (no hub access needed)
  trm data sudoku --source csv --input downloads/sudoku-extreme --train-size 1000 --num-aug 1000 \\
      -o data/sudoku-extreme-1k-aug-1000
  # Royle's 17-clue puzzles, solved here, 1000 held out for test
  trm data sudoku --source royle17 --input shared/data/sudoku/royle-17-clue.txt -o data/sudoku-royle17
  # 1000 + 1000 generated 30-given puzzles, 8 augmentations each: seconds, no download
  trm data sudoku --source generate --givens 30 --num-aug 8 -o data/sudoku-gen30
"""


def _givens(text: str) -> int | tuple[int, int] | None:
    if text == "minimal":
        return None
    try:
        if "-" in text:
            low, high = (int(part) for part in text.split("-"))
            if not 17 <= low <= high <= 81:
                raise ValueError
            return low, high
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number of givens, a range LOW-HIGH within 17..81, or 'minimal', got {text!r}"
        ) from None


def add_command(tasks: argparse._SubParsersAction) -> None:
    """Add `trm data sudoku` to the `trm data` sub-commands."""
    parser = tasks.add_parser(
        "sudoku",
        help="Sudoku 9x9 (Sudoku-Extreme CSV, a puzzle file such as Royle's 17-clue set, or generated)",
        description=_DESCRIPTION,
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--source",
        required=True,
        choices=SOURCES,
        help="hf: download Sudoku-Extreme (train.csv, test.csv) from the Hugging Face hub (needs "
        "pip install 'trm[hf]' and network); csv: local CSV files in that format (header "
        "source,question,answer,rating); royle17: a text file of puzzles, one per line, solved "
        "here; generate: our generator of unique-solution puzzles",
    )
    parser.add_argument(
        "--input",
        type=Path,
        metavar="PATH",
        help="csv: a directory holding train.csv and test.csv, or one CSV file that is split into "
        "train and test; royle17: the puzzle file",
    )
    parser.add_argument(
        "-o", "--output", type=Path, required=True, metavar="DIR", help="dataset directory to create"
    )
    parser.add_argument(
        "--repo", default=HF_REPO, metavar="ID", help="hf: the dataset repository (default %(default)s)"
    )
    parser.add_argument(
        "--train-size",
        type=int,
        metavar="N",
        help="number of train puzzles: a random subset of the source's train puzzles (default all); "
        f"for generate, how many to generate (default {DEFAULT_GENERATED})",
    )
    parser.add_argument(
        "--test-size",
        type=int,
        metavar="N",
        help="number of test puzzles: hf and a csv directory, a random subset of the test split "
        f"(default all); royle17 and one csv file, how many to hold out (default {DEFAULT_HELD_OUT}); "
        f"generate, how many to generate (default {DEFAULT_GENERATED})",
    )
    parser.add_argument(
        "--num-aug",
        type=int,
        default=0,
        metavar="N",
        help="augmented copies added to each train puzzle (default 0; the paper uses 1000)",
    )
    parser.add_argument(
        "--min-difficulty",
        type=int,
        metavar="N",
        help="keep puzzles rated at least this (hf/csv: the rating column, a backtrack count of the "
        "tdoku solver; royle17/generate: the backtrack count of our solver)",
    )
    parser.add_argument(
        "--givens",
        type=_givens,
        default=30,
        metavar="N|LOW-HIGH|minimal",
        help="generate: givens per puzzle, 17..81 (24 and up is fast), a range such as 28-40 (each "
        "puzzle draws its number uniformly), or 'minimal' to remove all a "
        "unique solution allows (default 30)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, metavar="N", help="seed of every random choice (default 0)"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace the output directory if it exists")
    parser.set_defaults(run=run_command)


def run_command(args: argparse.Namespace) -> int:
    config = SudokuBuildConfig(
        source=args.source,
        output=args.output,
        input=args.input,
        repo=args.repo,
        train_size=args.train_size,
        test_size=args.test_size,
        num_aug=args.num_aug,
        min_difficulty=args.min_difficulty,
        givens=args.givens,
        seed=args.seed,
        overwrite=args.overwrite,
    )
    print(build_sudoku_dataset(config))
    return 0
