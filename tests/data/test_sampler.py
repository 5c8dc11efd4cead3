import json

import numpy as np
import pytest
import torch

from trm.data.format import SetBuilder, Split, make_metadata
from trm.data.sampler import IGNORE_LABEL_ID, TrainSampler, eval_batches
from trm.errors import CheckpointError, ConfigError, DataError

SEQ_LEN = 4


def make_split(sets: dict[str, list[list[int]]], ignore_label_id: int | None = 0) -> Split:
    """A split whose example rows say where they come from: [example, puzzle, group, set].

    `sets` maps a set name to its groups, each a list of the example counts of its puzzles.
    Labels are the inputs plus one, except the last position, which holds the ignore label.
    """
    built = {}
    for set_index, (name, groups) in enumerate(sets.items()):
        builder, example, puzzle = SetBuilder(seq_len=SEQ_LEN), 0, 0
        for group, puzzle_sizes in enumerate(groups):
            for size in puzzle_sizes:
                rows = np.array([[example + i, puzzle, group, set_index] for i in range(size)])
                labels = rows + 1
                labels[:, -1] = 0
                builder.add_puzzle(rows, labels, identifier=puzzle % 5 + 1)
                example, puzzle = example + size, puzzle + 1
            builder.end_group()
        built[name] = builder.build(dtype=np.int32)
    metadata = make_metadata(
        built, vocab_size=10**6, seq_len=SEQ_LEN, num_puzzle_identifiers=6, ignore_label_id=ignore_label_id
    )
    return Split(metadata=metadata, sets=built)


RAGGED = {"all": [[3, 3], [1], [2, 4, 4], [5], [1, 1, 1], [2, 2], [4], [1], [3], [6, 6], [2]]}
TWO_SETS = {"a": [[1], [2, 2], [1, 3], [2], [1], [4]], "b": [[2], [1, 1], [3], [2], [1], [2, 2], [1]]}


def rows_of(batches: list[dict[str, torch.Tensor]]) -> np.ndarray:
    return np.concatenate([b["inputs"].numpy() for b in batches])


def test_each_group_gives_one_puzzle_and_distinct_examples_per_epoch():
    split = make_split(RAGGED)
    arrays = split.sets["all"]
    sampler = TrainSampler(split, global_batch_size=8, seed=3)
    batches = list(sampler)
    assert len(batches) == sampler.num_batches(0) > 0
    rows = rows_of(batches)
    assert rows.shape == (8 * len(batches), SEQ_LEN)
    groups_in_order = [g for i, g in enumerate(rows[:, 2]) if i == 0 or g != rows[i - 1, 2]]
    assert len(groups_in_order) == len(set(groups_in_order))  # no group twice in an epoch
    for group in set(groups_in_order):
        mine = rows[rows[:, 2] == group]
        assert len(set(mine[:, 1])) == 1  # one variant per group
        assert len(set(mine[:, 0])) == len(mine)  # no example twice
        puzzle = mine[0, 1]
        first, end = arrays.puzzle_indices[puzzle], arrays.puzzle_indices[puzzle + 1]
        assert set(mine[:, 0]) <= set(range(first, end))
    shuffled = [g for g in set(groups_in_order) if list(rows[rows[:, 2] == g, 0]) != sorted(rows[rows[:, 2] == g, 0])]
    assert shuffled  # examples of a puzzle come in random order


def test_batches_hold_int32_tensors_with_ignored_labels_as_minus_100():
    split = make_split(RAGGED)
    batch = next(iter(TrainSampler(split, global_batch_size=8)))
    assert {k: v.dtype for k, v in batch.items()} == dict.fromkeys(batch, torch.int32)
    assert (batch["labels"][:, -1] == IGNORE_LABEL_ID).all()
    assert torch.equal(batch["labels"][:, :-1], batch["inputs"][:, :-1] + 1)
    assert torch.equal(batch["puzzle_identifiers"], batch["inputs"][:, 1] % 5 + 1)

    kept = next(iter(TrainSampler(make_split(RAGGED, ignore_label_id=None), global_batch_size=8)))
    assert (kept["labels"][:, -1] == 0).all()


def test_shuffle_is_seeded_and_differs_between_epochs():
    split = make_split(RAGGED)
    a, b, c = (TrainSampler(split, 4, seed=s) for s in (7, 7, 8))
    epoch0_a, epoch0_b, epoch0_c = rows_of(list(a)), rows_of(list(b)), rows_of(list(c))
    assert np.array_equal(epoch0_a, epoch0_b)
    assert not np.array_equal(epoch0_a, epoch0_c)
    assert a.iteration == 1
    assert not np.array_equal(epoch0_a, rows_of(list(a)))


def test_rank_slices_concatenate_to_the_single_process_batch():
    split = make_split(TWO_SETS)
    whole = list(TrainSampler(split, global_batch_size=6, seed=1))
    parts = [list(TrainSampler(split, global_batch_size=6, seed=1, rank=r, world_size=3)) for r in range(3)]
    assert all(len(p) == len(whole) for p in parts)
    for i, batch in enumerate(whole):
        for key, value in batch.items():
            assert torch.equal(torch.cat([p[i][key] for p in parts]), value)


@pytest.mark.parametrize("k", [0, 1, 2, 5, 6, 7, 10, 11, 19, 25])
def test_resuming_after_k_batches_continues_the_same_sequence(k):
    split = make_split(TWO_SETS)

    def stream(sampler, n):
        out = []
        while len(out) < n:
            out.extend(b["inputs"] for b in sampler)
        return out[:n]

    uninterrupted = stream(TrainSampler(split, 4, seed=5, epochs_per_iter=2), 30)
    first = TrainSampler(split, 4, seed=5, epochs_per_iter=2)
    head = []
    while len(head) < k:  # stop after k batches, wherever that falls in an iteration
        for batch in first:
            head.append(batch["inputs"])
            if len(head) == k:
                break
    state = json.loads(json.dumps(first.state_dict()))  # plain ints: survives any checkpoint format
    resumed = TrainSampler(split, 4, seed=5, epochs_per_iter=2)
    resumed.load_state_dict(state)
    rest = stream(resumed, 30 - k)
    assert all(torch.equal(x, y) for x, y in zip(head + rest, uninterrupted, strict=True))


def test_state_after_the_last_batch_points_to_the_next_iteration():
    split = make_split(RAGGED)
    sampler = TrainSampler(split, 8, seed=2)
    n = sampler.num_batches()
    for i, _ in enumerate(sampler):
        if i == n - 1:
            assert sampler.state_dict()["iteration"] == 1
    restored = TrainSampler(split, 8, seed=2)
    restored.load_state_dict(sampler.state_dict())
    assert restored.iteration == 1 and len(list(restored)) == restored.num_batches(1)


def test_sets_are_batched_in_turn():
    split = make_split(TWO_SETS)
    sampler = TrainSampler(split, 4, seed=0)
    sets = [set(b["inputs"][:, 3].tolist()) for b in list(sampler)]
    assert all(len(s) == 1 for s in sets)  # a batch never mixes sets
    order = [s.pop() for s in sets]
    assert order == sorted(order) and set(order) == {0, 1}


def test_num_batches_counts_what_iteration_yields():
    split = make_split(TWO_SETS)
    sampler = TrainSampler(split, 4, seed=9, epochs_per_iter=3)
    for iteration in range(3):
        expected = sampler.num_batches()
        assert len(list(sampler)) == expected
        assert sampler.iteration == iteration + 1


def reference_puzzle_order(arrays, seed: int, batch_size: int, iteration: int, epochs: int) -> list[list[int]]:
    """The reference's draws, one scalar draw at a time, for a split with one set."""
    rng = np.random.Generator(np.random.Philox(seed=seed + iteration + 1))
    order = np.concatenate([rng.permutation(arrays.num_groups) for _ in range(epochs)])
    batches, i = [], 0
    while i < len(order):
        batch = []
        while i < len(order) and len(batch) < batch_size:
            g = order[i]
            puzzle = rng.integers(arrays.group_indices[g], arrays.group_indices[g + 1])
            i += 1
            size = arrays.puzzle_indices[puzzle + 1] - arrays.puzzle_indices[puzzle]
            batch += [int(puzzle)] * min(size, batch_size - len(batch))
        if len(batch) < batch_size:
            break
        batches.append(batch)
    return batches


def test_group_order_and_variant_picks_match_the_reference():
    rng = np.random.default_rng(0)
    groups = [[1] * int(n) for n in rng.integers(1, 6, size=57)]  # one example per puzzle, like Sudoku
    split = make_split({"all": groups})
    sampler = TrainSampler(split, global_batch_size=8, seed=11, epochs_per_iter=2)
    for iteration in range(2):
        ours = [b["inputs"][:, 1].tolist() for b in sampler]
        assert ours == reference_puzzle_order(split.sets["all"], 11, 8, iteration, epochs=2)


def test_bad_settings_are_reported():
    split = make_split(RAGGED)
    with pytest.raises(ConfigError, match="multiple"):
        TrainSampler(split, global_batch_size=9, world_size=2)
    with pytest.raises(ConfigError, match="rank"):
        TrainSampler(split, global_batch_size=8, rank=2, world_size=2)
    with pytest.raises(DataError, match="fewer than one global batch"):
        TrainSampler(split, global_batch_size=1000)
    state = TrainSampler(split, 8, seed=1).state_dict()
    with pytest.raises(CheckpointError, match="seed"):
        TrainSampler(split, 8, seed=2).load_state_dict(state)
    with pytest.raises(CheckpointError, match="lacks"):
        TrainSampler(split, 8, seed=1).load_state_dict({"iteration": 0})


@pytest.mark.parametrize("world_size", [1, 2, 4])
def test_eval_covers_every_example_once_in_order_with_padding(world_size):
    split = make_split(TWO_SETS)
    per_rank = [list(eval_batches(split, batch_size=8, rank=r, world_size=world_size)) for r in range(world_size)]
    assert len({len(batches) for batches in per_rank}) == 1  # every rank runs the same steps
    for name, arrays in split.sets.items():
        seen = []
        for step in zip(*per_rank):
            for rank_batch in (b for b in step if b.set_name == name):
                batch, n = rank_batch.batch, rank_batch.num_real
                assert batch["inputs"].shape == (8 // world_size, SEQ_LEN)
                assert torch.equal(batch["inputs"][:n, 0], torch.from_numpy(rank_batch.example_indices).int())
                assert torch.equal(batch["inputs"][:n, 1], torch.from_numpy(rank_batch.puzzle_indices).int())
                assert (batch["inputs"][n:] == split.metadata.pad_id).all()
                assert (batch["labels"][n:] == IGNORE_LABEL_ID).all()
                assert (batch["puzzle_identifiers"][n:] == split.metadata.blank_identifier_id).all()
                seen.extend(rank_batch.example_indices.tolist())
        assert seen == list(range(arrays.num_examples))
