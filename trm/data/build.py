"""One builder API for every task: source -> records -> the on-disk format.

A task's builder part is a frozen dataclass of its options (`SudokuSource`, `MazeSource`,
`ArcSource`), checked when it is made. Its `encode` reads or generates the records of each
split (puzzles, mazes, ARC tasks) and turns them into arrays; `build_dataset` does the rest
the same way for every task: it refuses a bad output path before the (possibly long) build,
writes the splits with their metadata, identifiers.json and any extra JSON atomically, and
returns the summary the command line prints.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from trm.data.format import PuzzleSet, Split, make_metadata, write_dataset
from trm.files import check_output


@dataclass
class Encoded:
    """What a source makes: each split's arrays (one set, "all"), the identifier names, the
    vocabulary and sequence length, the source's records (the puzzles of each split, or ARC's
    tasks; for the summary and for callers) and extra JSON files written beside
    identifiers.json."""

    sets: dict[str, PuzzleSet]
    identifiers: list[str]
    vocab_size: int
    seq_len: int
    records: dict[str, object]
    extra_json: dict[str, object] = field(default_factory=dict)


@dataclass
class Built:
    """A dataset written to `output`; `str()` is the summary `trm data` prints."""

    output: Path
    splits: dict[str, Split]
    records: dict[str, object]
    summary: str = ""
    seconds: float = 0.0

    def __str__(self) -> str:
        return self.summary


class DatasetSource(Protocol):
    """A task's builder part: its options, the records of each split, and a summary."""

    output: Path
    overwrite: bool

    def encode(self, progress: bool) -> Encoded: ...

    def summary(self, built: Built) -> str: ...


def write_encoded(output: str | os.PathLike, encoded: Encoded, overwrite: bool = False) -> dict[str, Split]:
    """Write encoded splits with their metadata, identifiers.json and the extra JSON, atomically."""
    splits = {
        name: Split(
            metadata=make_metadata(
                {"all": arrays},
                vocab_size=encoded.vocab_size,
                seq_len=encoded.seq_len,
                num_puzzle_identifiers=len(encoded.identifiers),
            ),
            sets={"all": arrays},
        )
        for name, arrays in encoded.sets.items()
    }
    write_dataset(output, splits, encoded.identifiers, extra_json=encoded.extra_json, overwrite=overwrite)
    return splits


def build_dataset(source: DatasetSource, progress: bool = True) -> Built:
    """Build and write a dataset; nothing is left at the output path on failure."""
    start = time.perf_counter()
    check_output(source.output, source.overwrite)  # a bad output path fails now, not after the build
    encoded = source.encode(progress)
    splits = write_encoded(source.output, encoded, source.overwrite)
    built = Built(Path(source.output), splits, encoded.records)
    built.seconds = time.perf_counter() - start
    built.summary = source.summary(built)
    return built
