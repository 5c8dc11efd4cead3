"""Join the train splits of several datasets into one set, so that every batch mixes them.

    python experiments/sudoku-hard/mix_datasets.py -o OUT --test FROM DATASET [DATASET ...]

A split's sets are batched one after another (trm/data/sampler.py); this script writes one set
holding every puzzle of every train split, so the sampler's shuffle mixes them. The test split
of OUT is a copy of FROM's test split. Used by attempt 9 of experiments/sudoku-hard/README.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np

from trm.data.format import PuzzleSet, Split, make_metadata, read_dataset, write_split


def join(sets: list[PuzzleSet]) -> PuzzleSet:
    """One set holding the puzzles of `sets` in order, offsets shifted to match."""
    examples = puzzles = 0
    puzzle_indices, group_indices = [np.zeros(1, np.int32)], [np.zeros(1, np.int32)]
    for s in sets:
        puzzle_indices.append(s.puzzle_indices[1:] + examples)
        group_indices.append(s.group_indices[1:] + puzzles)
        examples += s.num_examples
        puzzles += s.num_puzzles
    return PuzzleSet(
        inputs=np.concatenate([s.inputs for s in sets]),
        labels=np.concatenate([s.labels for s in sets]),
        puzzle_identifiers=np.concatenate([s.puzzle_identifiers for s in sets]),
        puzzle_indices=np.concatenate(puzzle_indices).astype(np.int32),
        group_indices=np.concatenate(group_indices).astype(np.int32),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("datasets", nargs="+", help="dataset roots whose train splits are joined")
    parser.add_argument("-o", "--output", required=True, help="new dataset root (must not exist)")
    parser.add_argument("--test", required=True, help="dataset root whose test split OUT takes")
    args = parser.parse_args()
    out = Path(args.output)
    if out.exists():
        print(f"error: {out} exists; choose a new directory", file=sys.stderr)
        return 2
    splits = [read_dataset(d, "train", mmap=False) for d in args.datasets]
    first = splits[0].metadata
    shape = lambda m: (m.vocab_size, m.seq_len, m.num_puzzle_identifiers)  # noqa: E731
    for path, split in zip(args.datasets, splits):
        if shape(split.metadata) != shape(first):
            print(f"error: {path}: vocabulary, length or identifiers differ from {args.datasets[0]}", file=sys.stderr)
            return 2
    joined = join([s for split in splits for s in split.sets.values()])
    metadata = make_metadata(
        {"all": joined},
        vocab_size=first.vocab_size,
        seq_len=first.seq_len,
        num_puzzle_identifiers=first.num_puzzle_identifiers,
        pad_id=first.pad_id,
        ignore_label_id=first.ignore_label_id,
        blank_identifier_id=first.blank_identifier_id,
    )
    write_split(out / "train", Split(metadata=metadata, sets={"all": joined}))
    shutil.copytree(Path(args.test) / "test", out / "test")
    shutil.copy(Path(args.test) / "identifiers.json", out / "identifiers.json")
    print(
        json.dumps(
            {
                "output": str(out),
                "train_puzzles": joined.num_puzzles,
                "parts": [s.metadata.total_puzzles for s in splits],
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
