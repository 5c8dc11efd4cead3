"""Maze datasets: Maze-Hard's CSV files and our generator, the task's part of the dataset builder.

Three sources feed one builder: the Hugging Face dataset the paper used (`hf`), a local copy
of its CSV files (`csv`), and our own generator (`generate`), whose mazes have exactly one
shortest path, so that the label is the only right answer. One example per maze; the tokens,
the rules and the breadth-first search are the task's (`trm.tasks.maze`).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from trm.data.build import Built, Encoded
from trm.data.format import BLANK_IDENTIFIER, PuzzleSet, SetBuilder
from trm.data.maze_generator import MAZE_HARD_SIZE, default_min_path_length, generate_mazes
from trm.errors import DataError
from trm.files import SPLITS
from trm.tasks.grids import DIHEDRAL_INVERSE, dihedral
from trm.tasks.maze import (
    CHARSET,
    MAX_SIZE,
    PATH,
    VOCAB_SIZE,
    as_grids,
    check_ends,
    path_errors,
    text_to_tokens,
)

HF_REPO = "sapientinc/maze-30x30-hard-1k"
CSV_COLUMNS = ("source", "question", "answer", "rating")
DEFAULT_GENERATED = 1000  # mazes per split for `generate` when no count is given


def path_lengths(labels: np.ndarray) -> np.ndarray:
    """Length (moves) of the path each label marks: its `o` cells plus one."""
    return (as_grids(labels) == PATH).sum(axis=(1, 2)) + 1


# ---------------------------------------------------------------------------------------
# Reading the CSV files of the Hugging Face dataset


def read_maze_csv(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read a Maze-Hard CSV (header, then rows `source,question,answer,rating`) -> (mazes, labels).

    Every row is checked, and an error names the file, the line and what is wrong: the
    number of columns, a grid that is not N x N or not the size of the first row, a
    character outside `# SGo`, S or G missing or repeated, or an answer that is not a
    shortest path of its question.
    """
    path = Path(path)
    header = ",".join(CSV_COLUMNS)
    mazes, labels, lines = [], [], []
    size = None
    try:
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            first = next(reader, None)
            if first is None:
                raise DataError(f"{path}: empty file; expected the header '{header}' and one maze per row")
            if first != list(CSV_COLUMNS):  # without it the first maze would be taken for a header
                raise DataError(f"{path}, line 1: expected the header '{header}', got {','.join(first)[:80]!r}")
            for row in reader:
                where = f"{path}, line {reader.line_num}"
                if not row:  # a blank line, such as one at the end of the file
                    continue
                if len(row) != len(CSV_COLUMNS):
                    raise DataError(f"{where}: expected {len(CSV_COLUMNS)} columns ({header}), got {len(row)}")
                grids = []
                for column, text in zip(("question", "answer"), row[1:3]):
                    if size is None:
                        size = math.isqrt(len(text))
                        if size * size != len(text) or not 2 <= size <= MAX_SIZE:
                            raise DataError(
                                f"{where}: the {column} has {len(text)} characters, not an N x N grid "
                                f"with N in 2..{MAX_SIZE}"
                            )
                    if len(text) != size * size:
                        raise DataError(
                            f"{where}: the {column} has {len(text)} characters, expected {size * size} "
                            f"({size}x{size}, the size of the first maze)"
                        )
                    grid = text_to_tokens(text)
                    if not grid.all():
                        r, c = np.argwhere(grid == 0)[0]
                        raise DataError(
                            f"{where}: the {column} has {text[r * size + c]!r} at row {r}, column {c}; "
                            f"mazes use only the characters {CHARSET!r}"
                        )
                    grids.append(grid)
                _check_question(where, grids[0])
                mazes.append(grids[0])
                labels.append(grids[1])
                lines.append(reader.line_num)
    except FileNotFoundError:
        raise DataError(f"{path}: not found") from None
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DataError(f"{path}: cannot be read as CSV ({e})") from None
    if not mazes:
        raise DataError(f"{path}: no mazes after the header")
    mazes_array, labels_array = np.stack(mazes), np.stack(labels)
    for line, reason in zip(lines, path_errors(mazes_array, labels_array)):
        if reason is not None:
            raise DataError(f"{path}, line {line}: the answer is not a shortest path from S to G: {reason}")
    return mazes_array, labels_array


def _check_question(where: str, grid: np.ndarray) -> None:
    check_ends(grid, where, "the question")
    if (grid == PATH).any():
        r, c = np.argwhere(grid == PATH)[0]
        raise DataError(f"{where}: the question marks a path cell 'o' at row {r}, column {c}")


def hf_csv_files(repo: str = HF_REPO) -> dict[str, Path]:
    """Download (or find in the local cache) `train.csv` and `test.csv` of the Hugging Face dataset."""
    try:
        from huggingface_hub import hf_hub_download
    except ImportError:
        raise DataError(
            "--source hf needs the huggingface_hub package: pip install 'trm[hf]'; "
            "or download train.csv and test.csv yourself and use --source csv --input DIR"
        ) from None
    try:
        return {split: Path(hf_hub_download(repo, f"{split}.csv", repo_type="dataset")) for split in SPLITS}
    except Exception as e:  # the hub client raises many types (network, auth, missing repo)
        raise DataError(
            f"cannot fetch {repo} from the Hugging Face hub ({type(e).__name__}: {e}); download "
            "train.csv and test.csv where the hub is reachable and use --source csv --input DIR"
        ) from None


# ---------------------------------------------------------------------------------------
# Building the dataset

Mazes = tuple[np.ndarray, np.ndarray]  # (mazes, labels), (count, N, N) tokens each


def to_puzzle_set(mazes: np.ndarray, labels: np.ndarray, augment: bool = False) -> tuple[PuzzleSet, list[int]]:
    """One split's arrays, and the dihedral transform id of each of its puzzles.

    With `augment` each maze becomes a group of 8 puzzles, one per symmetry of the square
    (the reference's switch, off by default: it made TRM collapse in one reproduction,
    trm-spec section 10). The maze itself is transform 0; `DIHEDRAL_INVERSE` undoes each.
    """
    size = mazes.shape[-1]
    transforms = list(range(8)) if augment else [0]
    builder = SetBuilder(seq_len=size * size)
    for maze, label in zip(mazes, labels):
        for tid in transforms:
            builder.add_puzzle(dihedral(maze, tid)[None], dihedral(label, tid)[None], identifier=0)
        builder.end_group()
    return builder.build(), transforms * len(mazes)


def _subsample(rng: np.random.Generator, data: Mazes, count: int | None, what: str) -> Mazes:
    """A random subset of `count` mazes in their original order (all of them when count is None)."""
    available = len(data[0])
    if count is None or count == available:
        return data
    if count > available:
        raise DataError(f"{what} has {available} mazes, fewer than the {count} asked for")
    keep = np.sort(rng.choice(available, size=count, replace=False))
    return data[0][keep], data[1][keep]


@dataclass
class MazeSource:
    """Options of the maze builder (`trm.data.build.build_dataset`); `trm data maze --help` explains each.

    Checked when made; for `generate`, `size` and `min_path_length` get their defaults then.
    """

    source: str
    output: Path
    input: str | None = None
    size: int | None = None
    min_path_length: int | None = None
    train_count: int | None = None
    test_count: int | None = None
    augment: bool = False
    seed: int = 0
    overwrite: bool = False

    def __post_init__(self) -> None:
        if self.source == "generate":
            if self.input is not None:
                raise DataError("--input applies to --source csv (a file or directory) and hf (a dataset repository)")
            self.size = MAZE_HARD_SIZE if self.size is None else self.size
            if self.min_path_length is None:
                self.min_path_length = default_min_path_length(self.size)
            return
        for option, value in (("--size", self.size), ("--min-path-length", self.min_path_length)):
            if value is not None:
                raise DataError(f"{option} applies to --source generate only (CSV mazes have their own size)")
        if self.source == "csv" and self.input is None:
            raise DataError("--source csv needs --input: a CSV file or a directory with train.csv and test.csv")

    def encode(self, progress: bool = True) -> Encoded:
        """The mazes of each split (`records`: (mazes, labels)), train ones in 8 symmetries with `augment`."""
        if self.source == "generate":
            data = self._generated(progress)
        elif self.source == "csv":
            data = self._csv(np.random.default_rng(self.seed))
        else:
            data = self._hf(np.random.default_rng(self.seed))
        sets, transforms = {}, {}
        for name, (mazes, labels) in data.items():
            sets[name], transforms[name] = to_puzzle_set(mazes, labels, augment=self.augment and name == "train")
        record = {
            "source": self.source,
            "input": self.input,
            "seed": self.seed,
            "min_path_length": self.min_path_length,
            "augment": self.augment,
            "dihedral_inverse": list(DIHEDRAL_INVERSE),
            "transforms": transforms,
        }
        size = data["train"][0].shape[-1]
        return Encoded(sets, [BLANK_IDENTIFIER], VOCAB_SIZE, size * size, data, {"maze.json": record})

    def _csv(self, rng: np.random.Generator) -> dict[str, Mazes]:
        path = Path(self.input)
        if path.is_dir():
            missing = [f"{s}.csv" for s in SPLITS if not (path / f"{s}.csv").is_file()]
            if missing:
                raise DataError(
                    f"{path}: expected train.csv and test.csv (as in {HF_REPO}); missing {', '.join(missing)}"
                )
            data = {s: read_maze_csv(path / f"{s}.csv") for s in SPLITS}
        else:
            mazes, labels = read_maze_csv(path)
            test_count = len(mazes) // 2 if self.test_count is None else self.test_count
            if not 0 < test_count < len(mazes):
                raise DataError(f"{path}: cannot split {len(mazes)} mazes into train and {test_count} test mazes")
            order = rng.permutation(len(mazes))
            test, train = np.sort(order[:test_count]), np.sort(order[test_count:])
            data = {"train": (mazes[train], labels[train]), "test": (mazes[test], labels[test])}
        return {
            "train": _subsample(rng, data["train"], self.train_count, f"{path} (train)"),
            "test": _subsample(rng, data["test"], self.test_count, f"{path} (test)"),
        }

    def _hf(self, rng: np.random.Generator) -> dict[str, Mazes]:
        files = hf_csv_files(self.input or HF_REPO)
        counts = {"train": self.train_count, "test": self.test_count}
        return {s: _subsample(rng, read_maze_csv(files[s]), counts[s], str(files[s])) for s in files}

    def _generated(self, progress: bool) -> dict[str, Mazes]:
        from tqdm import tqdm

        train_count = DEFAULT_GENERATED if self.train_count is None else self.train_count
        test_count = DEFAULT_GENERATED if self.test_count is None else self.test_count
        total = train_count + test_count
        with tqdm(total=total, desc="generating mazes", unit="maze", disable=not progress) as bar:
            mazes, labels = generate_mazes(total, self.size, self.min_path_length, self.seed, progress=bar.update)
        # One stream of distinct mazes: train is its beginning, so test never repeats a train maze.
        return {
            "train": (mazes[:train_count], labels[:train_count]),
            "test": (mazes[train_count:], labels[train_count:]),
        }

    def summary(self, built: Built) -> str:
        size = built.records["train"][0].shape[-1]
        origin = {
            "generate": f"generated, seed {self.seed}, shortest paths >= {self.min_path_length} moves, unique",
            "csv": f"CSV {self.input}",
            "hf": f"Hugging Face {self.input or HF_REPO}",
        }[self.source]
        lines = [f"maze dataset written to {built.output} ({size}x{size}, {origin})"]
        for name, split in built.splits.items():
            meta, lengths = split.metadata, path_lengths(built.records[name][1])
            lines.append(
                f"  {name:<5}  {meta.total_groups} mazes, {meta.total_puzzles} puzzles "
                f"(augmentation {'8x dihedral' if meta.total_puzzles > meta.total_groups else 'off'}), "
                f"path length {lengths.min()}..{lengths.max()} (mean {lengths.mean():.1f})"
            )
        lines.append(
            f"  seq_len {size * size}, vocab {VOCAB_SIZE} (PAD + {CHARSET!r}), 1 puzzle identifier, "
            f"{built.seconds:.1f}s"
        )
        return "\n".join(lines)
