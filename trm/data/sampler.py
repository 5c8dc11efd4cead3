"""Batches for training and evaluation, drawn as the reference draws them (trm-spec section 6).

Training (`TrainSampler`): every epoch shuffles the groups; each group contributes one
random variant (puzzle), and that puzzle's examples in random order, as many as fit in the
global batch; the last incomplete batch is dropped. Each rank takes its slice of the same
global batch. The group order and the variant picks use the reference's generator and seeds,
so a dataset of one-example puzzles (Sudoku, Maze) is batched exactly as the reference
batches it; only the order of examples inside a puzzle differs (the reference draws it
from numpy's unseeded global generator).

Evaluation (`eval_batches`): the examples in order, the last batch padded.

Batches are dicts of int32 tensors `inputs`, `labels` (ignored positions -100) and
`puzzle_identifiers`; torch starts here, the rest of `trm.data` is numpy.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from trm.config import IGNORE_LABEL_ID
from trm.data.format import DatasetMetadata, PuzzleSet, Split
from trm.errors import CheckpointError, ConfigError, DataError


def _local_batch_size(global_batch_size: int, rank: int, world_size: int) -> int:
    if global_batch_size < 1 or world_size < 1 or global_batch_size % world_size:
        raise ConfigError(
            f"global batch size {global_batch_size} must be a positive multiple of the number of "
            f"processes ({world_size})"
        )
    if not 0 <= rank < world_size:
        raise ConfigError(f"rank {rank} is outside 0..{world_size - 1}")
    return global_batch_size // world_size


def _collate(
    metadata: DatasetMetadata, arrays: PuzzleSet, examples: np.ndarray, puzzles: np.ndarray, rows: int
) -> dict[str, torch.Tensor]:
    """Gather examples into a batch of `rows` rows, padding the rows beyond them."""
    n = len(examples)
    inputs = np.full((rows, metadata.seq_len), metadata.pad_id, dtype=np.int32)
    labels = np.full((rows, metadata.seq_len), IGNORE_LABEL_ID, dtype=np.int32)
    identifiers = np.full(rows, metadata.blank_identifier_id, dtype=np.int32)
    if n:
        inputs[:n] = arrays.inputs[examples]
        real = arrays.labels[examples].astype(np.int32)
        if metadata.ignore_label_id is not None:
            real[real == metadata.ignore_label_id] = IGNORE_LABEL_ID
        labels[:n] = real
        identifiers[:n] = arrays.puzzle_identifiers[puzzles]
    return {
        "inputs": torch.from_numpy(inputs),
        "labels": torch.from_numpy(labels),
        "puzzle_identifiers": torch.from_numpy(identifiers),
    }


@dataclass(frozen=True)
class _Plan:
    """The batches of one set in one iteration.

    Batch b holds the picked puzzles `puzzles[first[b]:last[b] + 1]`, all their examples but
    only `last_take[b]` of the last one's, which fills the batch exactly.
    """

    puzzles: np.ndarray
    first: np.ndarray
    last: np.ndarray
    last_take: np.ndarray

    @property
    def num_batches(self) -> int:
        return len(self.first)


def _plan(arrays: PuzzleSet, seed: int, epochs: int, batch_size: int) -> _Plan:
    """Shuffle the groups of `epochs` epochs, pick one puzzle per group, and cut full batches.

    Same draws as the reference: a Philox generator seeded `seed`, the permutations of all
    epochs first, then one `integers` draw per group in order (drawn all at once here,
    which numpy makes identical to drawing them one by one).
    """
    rng = np.random.Generator(np.random.Philox(seed=seed))
    order = np.concatenate([rng.permutation(arrays.num_groups) for _ in range(epochs)])
    puzzles = rng.integers(arrays.group_indices[order], arrays.group_indices[order + 1])
    ends = np.cumsum(np.diff(arrays.puzzle_indices)[puzzles])
    first, last, last_take = [], [], []
    start, taken = 0, 0  # the next batch starts at group `start`, after `taken` examples
    while True:
        stop = int(np.searchsorted(ends, taken + batch_size, side="left"))
        if stop == len(ends):  # not enough left for a full batch: dropped, as in the reference
            break
        before = int(ends[stop - 1]) if stop > start else taken
        first.append(start)
        last.append(stop)
        last_take.append(taken + batch_size - before)
        start, taken = stop + 1, int(ends[stop])
    return _Plan(puzzles, *(np.asarray(xs, dtype=np.int64) for xs in (first, last, last_take)))


class TrainSampler:
    """Training batches of a split for one rank, resumable to the exact batch.

    The unit of iteration is the reference's: `epochs_per_iter` epochs whose shuffles are
    concatenated, so batches run across epoch boundaries and only the last incomplete batch
    of the whole iteration is dropped (the reference sets it to its evaluation interval;
    the same value reproduces its number of optimizer steps). With several sets in the
    split, each is batched in turn, in order. Iterating the sampler yields the remaining
    batches of the current iteration; the next `for` loop starts the next iteration.
    Global batches are the same for every `world_size`, so a run may resume on a different
    number of processes.
    """

    def __init__(
        self,
        split: Split,
        global_batch_size: int,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        epochs_per_iter: int = 1,
    ) -> None:
        self.split = split
        self.global_batch_size = global_batch_size
        self.local_batch_size = _local_batch_size(global_batch_size, rank, world_size)
        self.seed, self.rank, self.epochs_per_iter = seed, rank, epochs_per_iter
        if epochs_per_iter < 1:
            raise ConfigError(f"epochs_per_iter must be at least 1, got {epochs_per_iter}")
        self._set_names = list(split.sets)
        most = sum(self._most_examples(arrays) for arrays in split.sets.values()) * epochs_per_iter
        if most < global_batch_size:
            raise DataError(
                f"the split yields at most {most} examples per iteration, fewer than one global "
                f"batch of {global_batch_size}"
            )
        self._iteration, self._set, self._batch = 0, 0, 0
        self._plans: dict[tuple[int, int], _Plan] = {}

    @staticmethod
    def _most_examples(arrays: PuzzleSet) -> int:
        """Examples one epoch can take from a set: its largest puzzle of every group."""
        sizes = np.diff(arrays.puzzle_indices)
        starts = arrays.group_indices[:-1][np.diff(arrays.group_indices) > 0]
        return int(np.maximum.reduceat(sizes, starts).sum()) if len(starts) else 0

    @property
    def iteration(self) -> int:
        """The iteration the next batch comes from (0-based)."""
        return self._iteration

    def _get_plan(self, iteration: int, set_index: int) -> _Plan:
        key = (iteration, set_index)
        if key not in self._plans:
            self._plans = {k: v for k, v in self._plans.items() if k[0] == iteration}  # one iteration's
            # The reference counts (iteration, set) pairs from 1 and seeds each with seed + count.
            count = iteration * len(self._set_names) + set_index + 1
            arrays = self.split.sets[self._set_names[set_index]]
            self._plans[key] = _plan(arrays, self.seed + count, self.epochs_per_iter, self.global_batch_size)
        return self._plans[key]

    def num_batches(self, iteration: int | None = None) -> int:
        """Global batches in an iteration (the current one by default), over all sets."""
        iteration = self._iteration if iteration is None else iteration
        return sum(self._get_plan(iteration, s).num_batches for s in range(len(self._set_names)))

    def _advance(self) -> None:
        """Move past empty sets, and past the end of the iteration to the next one's start."""
        while (
            self._set < len(self._set_names) and self._batch >= self._get_plan(self._iteration, self._set).num_batches
        ):
            self._set, self._batch = self._set + 1, 0
        if self._set == len(self._set_names):
            self._iteration, self._set, self._batch = self._iteration + 1, 0, 0

    def _global_batch(self, iteration: int, set_index: int, batch: int) -> tuple[np.ndarray, np.ndarray]:
        """(examples, puzzles) of one global batch: each puzzle's examples in a seeded random order."""
        plan = self._get_plan(iteration, set_index)
        arrays = self.split.sets[self._set_names[set_index]]
        puzzles = plan.puzzles[plan.first[batch] : plan.last[batch] + 1]
        starts = arrays.puzzle_indices[puzzles]
        sizes = arrays.puzzle_indices[puzzles + 1] - starts
        takes = sizes.copy()
        takes[-1] = plan.last_take[batch]
        # Shuffle inside each puzzle by sorting random keys within it, then keep the first `takes`.
        owner = np.repeat(np.arange(len(puzzles)), sizes)
        offset = np.arange(len(owner)) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        rng = np.random.default_rng((self.seed, iteration, set_index, batch))
        shuffled = offset[np.lexsort((rng.random(len(owner)), owner))]
        keep = offset < takes[owner]
        return starts[owner][keep] + shuffled[keep], puzzles[owner][keep]

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        iteration = self._iteration
        self._advance()
        while self._iteration == iteration:
            set_index, batch = self._set, self._batch
            self._batch += 1
            self._advance()  # the state now names the next batch, as a checkpoint must
            examples, puzzles = self._global_batch(iteration, set_index, batch)
            local = slice(self.rank * self.local_batch_size, (self.rank + 1) * self.local_batch_size)
            arrays = self.split.sets[self._set_names[set_index]]
            yield _collate(self.split.metadata, arrays, examples[local], puzzles[local], self.local_batch_size)

    def state_dict(self) -> dict[str, int]:
        """The position of the next batch, and the settings it is only valid with (plain ints)."""
        return {
            "iteration": self._iteration,
            "set": self._set,
            "batch": self._batch,
            "seed": self.seed,
            "global_batch_size": self.global_batch_size,
            "epochs_per_iter": self.epochs_per_iter,
            "total_groups": self.split.metadata.total_groups,
        }

    def load_state_dict(self, state: dict[str, int]) -> None:
        ours = self.state_dict()
        missing = sorted(set(ours) - set(state))
        if missing:
            raise CheckpointError(f"the data sampler state lacks {', '.join(missing)}")
        for key in ("seed", "global_batch_size", "epochs_per_iter", "total_groups"):
            if int(state[key]) != ours[key]:
                raise CheckpointError(
                    f"the data sampler state was saved with {key} = {state[key]}, this run has {ours[key]}; "
                    "resuming would not continue the same sequence of batches"
                )
        self._iteration, self._set, self._batch = (
            int(state["iteration"]),
            int(state["set"]),
            int(state["batch"]),
        )


@dataclass(frozen=True)
class EvalBatch:
    """One local evaluation batch and where its rows come from."""

    set_name: str
    batch: dict[str, torch.Tensor]
    num_real: int  # rows holding examples; the rows after them are padding
    example_indices: np.ndarray  # (num_real,) index of each real row in the set's examples
    puzzle_indices: np.ndarray  # (num_real,) the puzzle (variant) each real row belongs to


def eval_batches(split: Split, batch_size: int, rank: int = 0, world_size: int = 1) -> Iterator[EvalBatch]:
    """The examples of every set in order, `batch_size` (global) at a time, this rank's share of each.

    As in the reference, each global batch is cut into `world_size` consecutive slices and
    every rank gets a batch of the full local size, padded (inputs pad_id, labels -100,
    identifier blank_identifier_id) where its slice is short or empty, so all ranks run
    the same number of steps.
    """
    local = _local_batch_size(batch_size, rank, world_size)
    for name, arrays in split.sets.items():
        for start in range(0, arrays.num_examples, batch_size):
            end = min(start + batch_size, arrays.num_examples)
            examples = np.arange(min(start + rank * local, end), min(start + (rank + 1) * local, end))
            puzzles = np.searchsorted(arrays.puzzle_indices, examples, side="right") - 1
            batch = _collate(split.metadata, arrays, examples, puzzles, local)
            yield EvalBatch(name, batch, len(examples), examples, puzzles)
