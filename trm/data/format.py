"""The on-disk dataset format shared with the reference implementation (trm-spec section 6).

A dataset root holds one directory per split (`train/`, `test/`) and `identifiers.json`
(puzzle identifier -> name). A split directory holds `dataset.json` and, for every set name
listed there (usually `all`), five arrays:

    <set>__inputs.npy              (examples x seq_len)   token ids
    <set>__labels.npy              (examples x seq_len)   token ids, ignore_label_id = ignored
    <set>__puzzle_identifiers.npy  (puzzles,)             one identifier per puzzle
    <set>__puzzle_indices.npy      (puzzles + 1,)         example offsets of each puzzle
    <set>__group_indices.npy       (groups + 1,)          puzzle offsets of each group

A *group* is an original puzzle with all its augmented variants; a *puzzle* is one variant
with one or more examples (ARC demonstrations). Datasets written by the reference builders
read as they are, and ours are readable by the reference loader.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError

from trm.errors import DataError
from trm.files import ARRAY_FIELDS, DATASET_EXTRA_FILES, atomic_directory

PAD_ID = 0  # token 0 pads every task's sequences
# Labels equal to this are not scored: the reference's datasets never label PAD. The sampler
# turns them into the model's ignore index (trm.config.IGNORE_LABEL_ID).
DATASET_IGNORE_LABEL_ID = PAD_ID
BLANK_IDENTIFIER = "<blank>"  # the name of puzzle identifier 0, which every dataset reserves


class DatasetMetadata(BaseModel):
    """The fields of a split's `dataset.json`, exactly as the reference writes them."""

    model_config = ConfigDict(extra="allow")

    pad_id: int
    ignore_label_id: int | None
    blank_identifier_id: int
    vocab_size: int
    seq_len: int
    num_puzzle_identifiers: int
    total_groups: int
    mean_puzzle_examples: float
    total_puzzles: int
    sets: list[str]


@dataclass
class PuzzleSet:
    """The five arrays of one set of one split."""

    inputs: np.ndarray
    labels: np.ndarray
    puzzle_identifiers: np.ndarray
    puzzle_indices: np.ndarray
    group_indices: np.ndarray

    @property
    def num_examples(self) -> int:
        return int(self.inputs.shape[0])

    @property
    def num_puzzles(self) -> int:
        return int(self.puzzle_identifiers.shape[0])

    @property
    def num_groups(self) -> int:
        return int(self.group_indices.shape[0]) - 1

    def check(self, where: str, metadata: DatasetMetadata | None = None) -> None:
        """Raise DataError (naming `where` and the array) if the arrays are inconsistent."""
        for name in ARRAY_FIELDS:
            if not np.issubdtype(getattr(self, name).dtype, np.integer):
                raise DataError(f"{where}: {name} holds {getattr(self, name).dtype} values, expected integers")
        if self.inputs.ndim != 2 or self.inputs.shape != self.labels.shape:
            raise DataError(
                f"{where}: inputs {self.inputs.shape} and labels {self.labels.shape} "
                "must be 2-D arrays of the same shape (examples x seq_len)"
            )
        for name in ("puzzle_identifiers", "puzzle_indices", "group_indices"):
            if getattr(self, name).ndim != 1:
                raise DataError(f"{where}: {name} must be 1-D, got shape {getattr(self, name).shape}")
        if self.puzzle_indices.shape[0] != self.num_puzzles + 1:
            raise DataError(
                f"{where}: puzzle_indices has {self.puzzle_indices.shape[0]} entries, expected "
                f"puzzles + 1 = {self.num_puzzles + 1}"
            )
        _check_offsets(f"{where}: puzzle_indices", self.puzzle_indices, self.num_examples)
        _check_offsets(f"{where}: group_indices", self.group_indices, self.num_puzzles)
        if metadata is not None:
            if self.inputs.shape[1] != metadata.seq_len:
                raise DataError(
                    f"{where}: sequences have length {self.inputs.shape[1]}, dataset.json says "
                    f"seq_len = {metadata.seq_len}"
                )
            for name in ("inputs", "labels"):
                arr = getattr(self, name)
                if arr.size and (arr.min() < 0 or arr.max() >= metadata.vocab_size):
                    raise DataError(
                        f"{where}: {name} holds token ids in [{arr.min()}, {arr.max()}], "
                        f"expected 0..{metadata.vocab_size - 1} (vocab_size)"
                    )
            ids = self.puzzle_identifiers
            if ids.size and (ids.min() < 0 or ids.max() >= metadata.num_puzzle_identifiers):
                raise DataError(
                    f"{where}: puzzle_identifiers in [{ids.min()}, {ids.max()}], expected "
                    f"0..{metadata.num_puzzle_identifiers - 1} (num_puzzle_identifiers)"
                )


def _check_offsets(where: str, offsets: np.ndarray, total: int) -> None:
    if offsets.size == 0 or offsets[0] != 0 or offsets[-1] != total or np.any(np.diff(offsets) < 0):
        raise DataError(f"{where} must rise from 0 to {total} without decreasing")


@dataclass
class Split:
    """One split: its metadata and its sets (set name -> arrays)."""

    metadata: DatasetMetadata
    sets: dict[str, PuzzleSet]


@dataclass
class SetBuilder:
    """Accumulates groups of puzzles of examples and produces a `PuzzleSet`.

    >>> b = SetBuilder(seq_len=4)
    >>> b.add_puzzle(inputs=[[1, 2, 3, 4]], labels=[[1, 2, 3, 4]], identifier=0)
    >>> b.end_group()
    >>> b.build().num_groups
    1
    """

    seq_len: int
    _inputs: list[np.ndarray] = field(default_factory=list)
    _labels: list[np.ndarray] = field(default_factory=list)
    _identifiers: list[int] = field(default_factory=list)
    _puzzle_indices: list[int] = field(default_factory=lambda: [0])
    _group_indices: list[int] = field(default_factory=lambda: [0])
    _examples: int = 0

    def add_puzzle(self, inputs: Sequence | np.ndarray, labels: Sequence | np.ndarray, identifier: int) -> None:
        """Add one puzzle (one variant) with its examples, each a flat sequence of seq_len tokens."""
        inputs = np.asarray(inputs).reshape(-1, self.seq_len)
        labels = np.asarray(labels).reshape(-1, self.seq_len)
        assert inputs.shape == labels.shape and inputs.shape[0] > 0
        self._inputs.append(inputs)
        self._labels.append(labels)
        self._examples += inputs.shape[0]
        self._puzzle_indices.append(self._examples)
        self._identifiers.append(int(identifier))

    def end_group(self) -> None:
        """Close the current group (an original puzzle and all its variants)."""
        if len(self._identifiers) > self._group_indices[-1]:
            self._group_indices.append(len(self._identifiers))

    def build(self, dtype: np.dtype | type = np.uint8) -> PuzzleSet:
        """The accumulated arrays; the builder's own copies are released as they are joined."""
        self.end_group()
        inputs, labels = _join(self._inputs, self.seq_len, dtype), _join(self._labels, self.seq_len, dtype)
        self._inputs, self._labels = [], []
        return PuzzleSet(
            inputs=inputs,
            labels=labels,
            puzzle_identifiers=np.asarray(self._identifiers, dtype=np.int32),
            puzzle_indices=np.asarray(self._puzzle_indices, dtype=np.int32),
            group_indices=np.asarray(self._group_indices, dtype=np.int32),
        )


def _join(parts: list[np.ndarray], seq_len: int, dtype: np.dtype | type) -> np.ndarray:
    out = np.empty((sum(len(p) for p in parts), seq_len), dtype=dtype)
    start = 0
    for part in parts:  # one output array, no intermediate concatenation of the full size
        out[start : start + len(part)] = part
        start += len(part)
    return out


def make_metadata(
    sets: dict[str, PuzzleSet],
    *,
    vocab_size: int,
    seq_len: int,
    num_puzzle_identifiers: int,
    pad_id: int = PAD_ID,
    ignore_label_id: int | None = DATASET_IGNORE_LABEL_ID,
    blank_identifier_id: int = 0,
) -> DatasetMetadata:
    """Metadata for a split, with the totals computed from its sets as the reference does."""
    total_puzzles = sum(s.num_puzzles for s in sets.values())
    total_examples = sum(s.num_examples for s in sets.values())
    return DatasetMetadata(
        pad_id=pad_id,
        ignore_label_id=ignore_label_id,
        blank_identifier_id=blank_identifier_id,
        vocab_size=vocab_size,
        seq_len=seq_len,
        num_puzzle_identifiers=num_puzzle_identifiers,
        total_groups=sum(s.num_groups for s in sets.values()),
        mean_puzzle_examples=total_examples / max(total_puzzles, 1),
        total_puzzles=total_puzzles,
        sets=list(sets),
    )


def write_split(directory: str | os.PathLike, split: Split) -> None:
    """Write one split directory (dataset.json and the arrays of every set)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for name, arrays in split.sets.items():
        arrays.check(f"{directory} set '{name}'", split.metadata)
        for key in ARRAY_FIELDS:
            np.save(directory / f"{name}__{key}.npy", getattr(arrays, key))
    (directory / "dataset.json").write_text(json.dumps(split.metadata.model_dump()))


def read_json(path: Path, missing: str = "not found") -> object:
    """A JSON file's content, with a DataError naming the file when it is absent or malformed."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{path}: {missing}") from None
    # ValueError covers malformed JSON, text that is not UTF-8 and integers too long to convert;
    # RecursionError, arrays nested thousands deep.
    except (OSError, ValueError, RecursionError) as e:
        raise DataError(f"{path}: cannot be read as JSON ({type(e).__name__}: {str(e)[:200]})") from None


def read_metadata(directory: str | os.PathLike) -> DatasetMetadata:
    path = Path(directory) / "dataset.json"
    raw = read_json(path, "not found; a split directory must contain dataset.json")
    try:
        return DatasetMetadata(**raw)
    except (TypeError, ValidationError) as e:
        raise DataError(f"{path}: not a valid dataset.json: {e}") from None


def read_split(directory: str | os.PathLike, mmap: bool = True) -> Split:
    """Read a split directory. Inputs and labels are memory-mapped unless `mmap` is False."""
    directory = Path(directory)
    metadata = read_metadata(directory)
    sets = {}
    for name in metadata.sets:
        arrays = {}
        for key in ARRAY_FIELDS:
            path = directory / f"{name}__{key}.npy"
            try:
                arrays[key] = np.load(path, mmap_mode="r" if mmap and key in ("inputs", "labels") else None)
            except FileNotFoundError:
                raise DataError(f"{path}: missing (dataset.json lists set '{name}')") from None
            except (OSError, ValueError, EOFError) as e:  # EOFError: an empty or truncated file
                raise DataError(f"{path}: cannot be read as a .npy array ({e})") from None
        sets[name] = PuzzleSet(**arrays)
        sets[name].check(f"{directory} set '{name}'", metadata)
    return Split(metadata=metadata, sets=sets)


def read_dataset(root: str | os.PathLike, split: str, mmap: bool = True) -> Split:
    """Read `root/split`, with an error that says what a dataset root looks like."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(
            f"{root}: dataset directory not found (build one with `trm data TASK ... -o {root}`; see `trm data --help`)"
        )
    if not (root / split).is_dir():
        raise DataError(f"{root}: has no '{split}/' split directory (a dataset root holds train/ and test/)")
    return read_split(root / split, mmap=mmap)


def read_identifiers(root: str | os.PathLike) -> list[str]:
    path = Path(root) / "identifiers.json"
    names = read_json(path)
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise DataError(f"{path}: expected a JSON list of identifier names")
    return names


def write_dataset(
    root: str | os.PathLike,
    splits: dict[str, Split],
    identifiers: list[str],
    extra_json: dict[str, object] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a whole dataset atomically: every split, `identifiers.json` and extra JSON files.

    On failure (a full disk, say) the output path is left as it was and a DataError says why.
    """
    extra_json = extra_json or {}
    unknown = set(extra_json) - set(DATASET_EXTRA_FILES)
    assert not unknown, f"list {sorted(unknown)} in DATASET_EXTRA_FILES, or --overwrite will refuse this dataset"
    try:
        with atomic_directory(root, overwrite=overwrite) as tmp:
            for name, split in splits.items():
                write_split(tmp / name, split)
            (tmp / "identifiers.json").write_text(json.dumps(identifiers))
            for filename, obj in extra_json.items():
                (tmp / filename).write_text(json.dumps(obj))
    except OSError as e:
        raise DataError(f"{root}: writing the dataset failed ({e}); the output path is as it was before") from None
    return Path(root)
