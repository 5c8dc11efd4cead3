"""Sudoku datasets: the sources of puzzles and the task's part of the dataset builder.

Sources: the Sudoku-Extreme CSV files (from the Hugging Face hub or local), a text file of
puzzles such as Gordon Royle's 49,151 17-clue puzzles (solved here), or our generator
(`trm.data.sudoku_solver`). Every example has puzzle identifier 0, exactly as the reference
builder writes Sudoku-Extreme; the tokens and symmetries are the task's (`trm.tasks.sudoku`).
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from trm.data.build import Built, Encoded
from trm.data.format import BLANK_IDENTIFIER, PuzzleSet, SetBuilder
from trm.errors import ConfigError, DataError
from trm.files import SPLITS
from trm.tasks.sudoku import SEQ_LEN, VOCAB_SIZE, grids_from_strings, random_transforms, to_tokens, valid_solutions

IDENTIFIERS = [BLANK_IDENTIFIER]
CSV_HEADER = ["source", "question", "answer", "rating"]
HF_REPO = "sapientinc/sudoku-extreme"
SOURCES = ("hf", "csv", "royle17", "generate")
DEFAULT_GENERATED = 1000  # puzzles per split for `generate` when no size is given
DEFAULT_HELD_OUT = 1000  # test puzzles split off a single-file source when no size is given


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
    return grids_from_strings(texts, lambda i: f"{path}: line {numbers[i]}", "puzzle", blanks=True), numbers


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
    invalid = np.flatnonzero(~valid_solutions(answers))
    if invalid.size:
        raise DataError(f"{where(invalid[0])}: the answer is not a valid Sudoku (a row, column or box repeats a digit)")


def _parse_csv_rows(path: Path, rows: list[list[str]], lines: list[int]) -> SudokuPuzzles:
    def where(i: int) -> str:
        return f"{path}: line {lines[i]}"

    questions = grids_from_strings([r[1] for r in rows], where, "question", blanks=True)
    answers = grids_from_strings([r[2] for r in rows], where, "answer", blanks=False)
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
    with tqdm(total=len(questions), desc=f"solving {Path(path).name}", unit=" puzzles", disable=not progress) as bar:
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
class SudokuSource:
    """Options of the Sudoku builder (`trm.data.build.build_dataset`); `trm data sudoku --help` explains each."""

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

    def encode(self, progress: bool = True) -> Encoded:
        """The puzzles of each split (`records`: SudokuPuzzles), train ones with `num_aug` symmetric copies."""
        # Independent streams, so that e.g. changing --num-aug does not change which puzzles are sampled.
        source_rng, sample_rng, aug_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(self.seed).spawn(3))
        train, test = load_puzzles(self, source_rng, progress)
        if self.source != "generate":
            train = _subsample(train, self.train_size, sample_rng)
        for name, puzzles in (("train", train), ("test", test)):
            if not len(puzzles):
                raise DataError(
                    f"no {name} puzzles: the source has none, or --min-difficulty {self.min_difficulty} is too high"
                )
        sets = {
            name: to_puzzle_set(puzzles, num_aug, aug_rng, progress, desc=f"building {name}")
            for name, puzzles, num_aug in (("train", train, self.num_aug), ("test", test, 0))
        }
        return Encoded(sets, IDENTIFIERS, VOCAB_SIZE, SEQ_LEN, records={"train": train, "test": test})

    def summary(self, built: Built) -> str:
        train, test = built.records["train"], built.records["test"]
        variants = 1 + self.num_aug

        def difficulty(p: SudokuPuzzles) -> str:
            return f"mean {p.ratings.mean():.1f}, max {p.ratings.max()}" if len(p) else "-"

        scale = "the CSV's rating column" if self.source in ("hf", "csv") else "our solver's backtracks"
        return "\n".join(
            [
                f"Sudoku dataset written to {self.output} (source {self.source}, seed {self.seed})",
                f"  train: {len(train)} puzzles x {variants} variants "
                + f"(1 + {self.num_aug} augmentations) = {len(train) * variants} examples",
                f"  test:  {len(test)} puzzles, not augmented",
                f"  seq_len {SEQ_LEN}, vocab {VOCAB_SIZE} (0 = PAD, digit d = token d + 1), "
                + f"{len(IDENTIFIERS)} puzzle identifier",
                f"  difficulty ({scale}): train {difficulty(train)}; test {difficulty(test)}",
                f"  took {built.seconds:.1f} s",
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
        raise DataError(f"{where}: has {len(puzzles)} puzzles, too few to hold out {test_size} for test (--test-size)")
    order = rng.permutation(len(puzzles))
    return puzzles.take(np.sort(order[test_size:])), puzzles.take(np.sort(order[:test_size]))


def load_puzzles(
    config: SudokuSource, rng: np.random.Generator, progress: bool = True
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
    train, test = (_keep_difficult(read_sudoku_csv(paths[s], progress), config.min_difficulty) for s in SPLITS)
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
            builder.add_puzzle(to_tokens(q), to_tokens(a), identifier=0)
        builder.end_group()
    return builder.build()
