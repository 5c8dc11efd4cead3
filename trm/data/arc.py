"""ARC-AGI datasets (trm-spec section 7): augment ARC tasks into variants and encode them.

Each task becomes a group of variants: the original plus up to `num_aug` copies under a
random dihedral transform and a permutation of colours 1..9, each with its own puzzle
identifier whose name records the transform (`trm.tasks.arc.variant_name`).

The training split holds every demonstration pair of every task (evaluation tasks included,
which is how their puzzle embeddings get trained) and the test pairs of the other tasks; the
test split holds the test pairs of the evaluation tasks in all their variants. Random draws
follow the reference builder (`dataset/build_arc_dataset.py`) call for call, so a seed gives
the reference's dataset.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from trm.data.arc_files import ArcTask, Pair, load_tasks, resolve_subsets
from trm.data.build import Built, Encoded
from trm.data.format import BLANK_IDENTIFIER, PuzzleSet, SetBuilder
from trm.errors import ConfigError, DataError
from trm.tasks.arc import COLOUR_OFFSET, EOS, GRID_SIZE, PAD, SEQ_LEN, VOCAB_SIZE, paint, variant_name
from trm.tasks.grids import IDENTITY, NUM_COLOURS, Transform

# The reference gives up on a task after 5 * num_aug draws, leaving symmetric tasks short of variants.
AUGMENT_TRIES_PER_VARIANT = 5


# --- Augmentation -------------------------------------------------------------------------


def _draw_transform(rng: np.random.RandomState) -> Transform:
    """A dihedral id, then a permutation of colours 1..9 (0, the background, stays): the reference's draws."""
    tid = int(rng.randint(0, 8))
    colours = np.concatenate([[0], rng.permutation(np.arange(1, NUM_COLOURS))])
    return Transform(dihedral=tid, colours=tuple(int(c) for c in colours))


def _fingerprint(pairs: Sequence[Pair], transform: Transform) -> tuple[bytes, ...]:
    """Hashes of the transformed pairs, sorted: two variants with the same pairs are duplicates."""
    digests = []
    for pair in pairs:
        h = hashlib.sha256()
        for grid in pair:
            grid = transform.apply(grid)
            h.update(bytes(grid.shape))
            h.update(grid.tobytes())
        digests.append(h.digest())
    return tuple(sorted(digests))


def make_variants(pairs: Sequence[Pair], num_aug: int, rng: np.random.RandomState) -> list[Transform]:
    """The identity and up to `num_aug` random transforms giving pairwise distinct tasks.

    A draw that reproduces the original or an earlier variant is dropped, so a symmetric task
    may end up with fewer variants.
    """
    seen = {_fingerprint(pairs, IDENTITY)}
    variants = [IDENTITY]
    for _ in range(AUGMENT_TRIES_PER_VARIANT * num_aug):
        if len(variants) > num_aug:
            break
        transform = _draw_transform(rng)
        fingerprint = _fingerprint(pairs, transform)
        if fingerprint not in seen:
            seen.add(fingerprint)
            variants.append(transform)
    return variants


# --- Building the dataset -----------------------------------------------------------------


@dataclass(frozen=True)
class _Group:
    """The pairs of one task that go to one split, and the variants they appear in."""

    pairs: tuple[Pair, ...]
    variants: list[Transform]
    names: list[str]


def encode_tasks(
    tasks: dict[str, list[ArcTask]],
    eval_subsets: Sequence[str],
    *,
    num_aug: int = 1000,
    seed: int = 42,
    first_identifier: int = 1,
    progress: bool = False,
) -> Encoded:
    """Augment every task and encode both splits (trm-spec section 7), deterministically for a seed.

    `tasks` maps subset names to tasks, in the order their identifiers are numbered. Tasks of
    `eval_subsets` give their test pairs to the test split; all other test pairs train. The
    identifiers name each variant (those below `first_identifier` are blank); the records are
    the tasks and each task's number of variants (the original included); test_puzzles.json
    holds every evaluation task as ARC JSON, for scoring.
    """
    if num_aug < 0:
        raise ConfigError(f"num_aug must be 0 or more, got {num_aug}")
    if first_identifier < 1:
        raise ConfigError(f"the first puzzle identifier must be 1 or more (0 is blank), got {first_identifier}")
    _check_unique_task_ids(tasks)
    # The legacy generator, drawn in the reference's order: the same seed gives the same dataset.
    rng = np.random.RandomState(seed)
    train_groups, test_groups, test_puzzles, variants = [], [], {}, {}
    bar = tqdm(total=sum(map(len, tasks.values())), desc="augmenting tasks", unit="task", disable=not progress)
    for subset, subset_tasks in tasks.items():
        for index in rng.permutation(len(subset_tasks)):  # the same draws as shuffling the list
            task = subset_tasks[index]
            transforms = make_variants(task.pairs(), num_aug, rng)
            names = [variant_name(task.task_id, t) for t in transforms]
            variants[task.task_id] = len(transforms)
            if subset in eval_subsets:
                train_groups.append(_Group(task.train, transforms, names))
                test_groups.append(_Group(task.test, transforms, names))
                test_puzzles[task.task_id] = task.to_json()
            else:
                train_groups.append(_Group(task.pairs(), transforms, names))
            bar.update()
    bar.close()

    identifiers = [BLANK_IDENTIFIER] * first_identifier + [n for g in train_groups for n in g.names]
    index_of = {name: i for i, name in enumerate(identifiers) if i >= first_identifier}
    sets = {
        # Only training examples are translated; evaluation sees every grid at the corner.
        "train": _encode_split(train_groups, index_of, rng, progress, "train"),
        "test": _encode_split(test_groups, index_of, None, progress, "test"),
    }
    records = {"tasks": tasks, "variants": variants}
    return Encoded(sets, identifiers, VOCAB_SIZE, SEQ_LEN, records, {"test_puzzles.json": test_puzzles})


def _check_unique_task_ids(tasks: dict[str, list[ArcTask]]) -> None:
    subset_of: dict[str, str] = {}
    for subset, subset_tasks in tasks.items():
        for task in subset_tasks:
            if task.task_id in subset_of:
                raise DataError(
                    f"task {task.task_id} is in both subsets '{subset_of[task.task_id]}' and '{subset}'; "
                    "task ids must be unique (ARC-AGI-2 training holds ARC-AGI-1 evaluation tasks: "
                    "use one preset, never a mix)"
                )
            subset_of[task.task_id] = subset


def _encode_split(
    groups: list[_Group],
    index_of: dict[str, int],
    rng: np.random.RandomState | None,
    progress: bool,
    name: str,
) -> PuzzleSet:
    """Encode every variant of every group; with `rng`, translate the examples at random."""
    builder = SetBuilder(seq_len=SEQ_LEN)
    for group in tqdm(groups, desc=f"encoding {name} split", unit="task", disable=not progress):
        for transform, variant in zip(group.variants, group.names):
            pairs = [(transform.apply(i), transform.apply(o)) for i, o in group.pairs]
            inputs, labels = _encode_pairs(pairs, rng)
            builder.add_puzzle(inputs, labels, identifier=index_of[variant])
        builder.end_group()
    return builder.build()


def _encode_pairs(pairs: list[Pair], rng: np.random.RandomState | None) -> tuple[np.ndarray, np.ndarray]:
    """Canvases of one puzzle's pairs: each pair shifted by one random offset, except one pair.

    The reference keeps one example per puzzle, chosen at random, at the corner, so the model
    always sees the canonical placement that evaluation uses.
    """
    canvases = np.full((2, len(pairs), GRID_SIZE, GRID_SIZE), PAD, dtype=np.uint8)
    at_corner = rng.randint(0, len(pairs)) if rng is not None else None
    for k, (inp, out) in enumerate(pairs):
        top = left = 0
        if rng is not None and k != at_corner:
            top = rng.randint(0, GRID_SIZE - max(inp.shape[0], out.shape[0]) + 1)
            left = rng.randint(0, GRID_SIZE - max(inp.shape[1], out.shape[1]) + 1)
        paint(canvases[0, k], inp, top, left)
        paint(canvases[1, k], out, top, left)
    return canvases[0].reshape(len(pairs), SEQ_LEN), canvases[1].reshape(len(pairs), SEQ_LEN)


@dataclass(frozen=True)
class ArcSource:
    """Options of the ARC builder (`trm.data.build.build_dataset`); `trm data arc --help` explains each.

    The subsets come from `preset` unless `subsets` / `eval_subsets` are given, checked when made.
    """

    input: str
    output: Path
    preset: str = "arc-agi-1"
    subsets: tuple[str, ...] | None = None
    eval_subsets: tuple[str, ...] | None = None
    prefix: str | None = None
    num_aug: int = 1000
    seed: int = 42
    first_identifier: int = 1
    overwrite: bool = False

    def __post_init__(self) -> None:
        subsets, eval_subsets = resolve_subsets(self.preset, self.subsets, self.eval_subsets)
        object.__setattr__(self, "subsets", tuple(subsets))
        object.__setattr__(self, "eval_subsets", tuple(eval_subsets))

    def encode(self, progress: bool = True) -> Encoded:
        tasks = load_tasks(self.input, self.subsets, self.eval_subsets, prefix=self.prefix)
        return encode_tasks(
            tasks,
            self.eval_subsets,
            num_aug=self.num_aug,
            seed=self.seed,
            first_identifier=self.first_identifier,
            progress=progress,
        )

    def summary(self, built: Built) -> str:
        """What was built, in a few lines."""
        tasks, variants = built.records["tasks"], built.records["variants"]
        size = sum(f.stat().st_size for f in built.output.rglob("*") if f.is_file())
        counts = list(variants.values())
        short = sum(c < self.num_aug + 1 for c in counts)
        lines = [f"ARC dataset written to {built.output} ({size / 2**30:.2f} GiB) in {built.seconds:.1f} s"]
        for subset, subset_tasks in tasks.items():
            role = "evaluation" if subset in self.eval_subsets else "training"
            unsolved = sum(not t.has_solutions for t in subset_tasks)
            note = f", {unsolved} without solutions (placeholder outputs)" if unsolved else ""
            lines.append(f"  {subset:<12} {len(subset_tasks):>5} tasks  ({role}{note})")
        for name, split in built.splits.items():
            m = split.metadata
            examples = sum(s.num_examples for s in split.sets.values())
            lines.append(
                f"  {name:<5} split  {m.total_groups:,} tasks in {m.total_puzzles:,} variants, {examples:,} examples"
            )
        tokens = f"PAD {PAD}, EOS {EOS}, colours 0..9 = {COLOUR_OFFSET}..{VOCAB_SIZE - 1}"
        mean = np.mean(counts) - 1 if counts else 0.0
        num_identifiers = built.splits["train"].metadata.num_puzzle_identifiers
        lines += [
            f"  identifiers  {num_identifiers:,} (including {BLANK_IDENTIFIER})",
            f"  seq_len {SEQ_LEN}, vocab {VOCAB_SIZE} ({tokens})",
            f"  augmentation up to {self.num_aug} variants per task and seed {self.seed}: {mean:.1f} on average",
        ]
        if short:
            lines.append(f"               {short} tasks have fewer: their symmetries make the draws repeat")
        return "\n".join(lines)
