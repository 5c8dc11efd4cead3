"""ARC-AGI datasets (trm-spec section 7): read ARC tasks, augment them, write the on-disk format.

Every grid sits in a 30x30 canvas of tokens (0 PAD, 1 EOS, 2..11 = colours 0..9) with a row
of EOS under it and a column of EOS right of it marking its size. Each task becomes a group
of variants: the original plus up to `num_aug` copies under a random dihedral transform and
a permutation of colours 1..9, each with its own puzzle identifier whose name records the
transform (`<task>|||t<dihedral>|||<colour map>`) so that predictions can be mapped back.

The training split holds every demonstration pair of every task (evaluation tasks included,
which is how their puzzle embeddings get trained) and the test pairs of the other tasks; the
test split holds the test pairs of the evaluation tasks in all their variants. Random draws
follow the reference builder (`dataset/build_arc_dataset.py`) call for call, so a seed gives
the reference's dataset.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from trm.data.format import SetBuilder, Split, check_output, make_metadata, write_dataset
from trm.data.grids import IDENTITY, NUM_COLOURS, Transform, apply_transform
from trm.errors import ConfigError, DataError

GRID_SIZE = 30
SEQ_LEN = GRID_SIZE * GRID_SIZE
PAD, EOS, COLOUR_OFFSET = 0, 1, 2
VOCAB_SIZE = COLOUR_OFFSET + NUM_COLOURS

VARIANT_SEPARATOR = "|||"
BLANK_IDENTIFIER = "<blank>"
# The reference gives up on a task after 5 * num_aug draws, leaving symmetric tasks short of variants.
AUGMENT_TRIES_PER_VARIANT = 5
DEFAULT_PREFIX = "arc-agi"

Pair = tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True)
class Preset:
    subsets: tuple[str, ...]
    eval_subsets: tuple[str, ...]


# ARC-AGI-2 training contains ARC-AGI-1 evaluation tasks, so the two never share a dataset.
PRESETS = {
    "arc-agi-1": Preset(("training", "evaluation", "concept"), ("evaluation",)),
    "arc-agi-2": Preset(("training2", "evaluation2", "concept"), ("evaluation2",)),
}


# --- The canvas ---------------------------------------------------------------------------


def encode_grid(grid: np.ndarray, top: int = 0, left: int = 0) -> np.ndarray:
    """The 30x30 token canvas of a grid whose top-left cell sits at (top, left)."""
    canvas = np.full((GRID_SIZE, GRID_SIZE), PAD, dtype=np.uint8)
    _paint(canvas, grid, top, left)
    return canvas


def _paint(canvas: np.ndarray, grid: np.ndarray, top: int, left: int) -> None:
    rows, cols = grid.shape
    bottom, right = top + rows, left + cols
    canvas[top:bottom, left:right] = grid + COLOUR_OFFSET
    # The EOS row and column span the grid's sides only; the corner cell between them stays PAD.
    if bottom < GRID_SIZE:
        canvas[bottom, left:right] = EOS
    if right < GRID_SIZE:
        canvas[top:bottom, right] = EOS


def crop_prediction(tokens: np.ndarray) -> np.ndarray:
    """The grid a predicted canvas stands for: the largest top-left rectangle of colour tokens.

    As the reference evaluator does, row r may only be as wide as the rows above it, and the
    first of equally large rectangles wins. A canvas with no colour at (0, 0) gives a 0x0 grid.
    """
    canvas = np.asarray(tokens).reshape(GRID_SIZE, GRID_SIZE)
    is_colour = (canvas >= COLOUR_OFFSET) & (canvas < VOCAB_SIZE)
    run_lengths = np.where(is_colour.all(axis=1), GRID_SIZE, np.argmin(is_colour, axis=1))
    widths = np.minimum.accumulate(run_lengths)
    areas = widths * np.arange(1, GRID_SIZE + 1)
    best = int(np.argmax(areas))
    if areas[best] == 0:
        return np.zeros((0, 0), dtype=np.uint8)
    return (canvas[: best + 1, : widths[best]] - COLOUR_OFFSET).astype(np.uint8)


# --- Variant names ------------------------------------------------------------------------


def variant_name(task_id: str, transform: Transform) -> str:
    """The identifier name of a variant; the original task keeps its bare id, as in the reference."""
    if transform.is_identity:
        return task_id
    colours = "".join(str(c) for c in transform.colours)
    return f"{task_id}{VARIANT_SEPARATOR}t{transform.dihedral}{VARIANT_SEPARATOR}{colours}"


def parse_variant_name(name: str) -> tuple[str, Transform]:
    """(task id, transform) of an identifier name written by `variant_name` or the reference."""
    if VARIANT_SEPARATOR not in name:
        return name, IDENTITY
    parts = name.split(VARIANT_SEPARATOR)
    expected = f"'<task>{VARIANT_SEPARATOR}t<0-7>{VARIANT_SEPARATOR}<permutation of the digits 0-9>'"
    if len(parts) != 3 or len(parts[1]) != 2 or parts[1][0] != "t" or not parts[2].isdigit():
        raise DataError(f"identifier name {name!r} is not of the form {expected}")
    try:
        return parts[0], Transform(dihedral=int(parts[1][1]), colours=tuple(int(c) for c in parts[2]))
    except ValueError as e:
        raise DataError(f"identifier name {name!r} is not of the form {expected}: {e}") from None


# --- Reading tasks ------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class ArcTask:
    """One ARC task: demonstration pairs and test pairs of uint8 grids."""

    task_id: str
    subset: str
    train: tuple[Pair, ...]
    test: tuple[Pair, ...]
    has_solutions: bool = True  # False: test outputs are [[0]] placeholders (a hidden test set)
    # The file lists 'test' before 'train' (as the Kaggle ARC-AGI-1 files do). The reference joins
    # the two in file order, which decides where each example lands; we keep it to match.
    test_first: bool = False

    def pairs(self) -> tuple[Pair, ...]:
        """Demonstration and test pairs together, in file order."""
        return self.test + self.train if self.test_first else self.train + self.test

    def to_json(self) -> dict:
        """The task as ARC JSON, as the reference stores it in test_puzzles.json for scoring."""

        def as_json(pairs: tuple[Pair, ...]) -> list[dict]:
            return [{"input": i.tolist(), "output": o.tolist()} for i, o in pairs]

        return {"train": as_json(self.train), "test": as_json(self.test)}


def parse_grid(value: object, where: str) -> np.ndarray:
    """A JSON grid as a uint8 array, or a DataError saying at `where` what is wrong with it."""
    if not isinstance(value, list) or not value:
        raise DataError(f"{where}: expected a grid (a non-empty list of rows), got {_describe(value)}")
    for r, row in enumerate(value):
        if not isinstance(row, list) or not row:
            raise DataError(f"{where}: row {r} is {_describe(row)}, expected a non-empty list of colours")
        if len(row) != len(value[0]):
            raise DataError(
                f"{where}: row {r} has {len(row)} cells but row 0 has {len(value[0])} (rows must be equally long)"
            )
    rows, cols = len(value), len(value[0])
    if rows > GRID_SIZE or cols > GRID_SIZE:
        raise DataError(f"{where}: grid is {rows}x{cols}, larger than the {GRID_SIZE}x{GRID_SIZE} maximum")
    for r, row in enumerate(value):
        for c, cell in enumerate(row):
            if type(cell) is not int or not 0 <= cell < NUM_COLOURS:
                shown = repr(cell) if isinstance(cell, int | _LongInteger) else _describe(cell)
                raise DataError(f"{where}: row {r}, column {c} holds {_clip(shown)}, expected a colour 0..9")
    return np.array(value, dtype=np.uint8)


def _describe(value: object) -> str:
    """A short description of a JSON value for an error message: its type and its start."""
    try:
        text = json.dumps(value, default=repr)
    except (RecursionError, ValueError):  # nested too deeply to write out
        text = "[[[..." if isinstance(value, list) else "{..."
    return f"{type(value).__name__} {_clip(text)}"


def _clip(text: str, length: int = 40) -> str:
    return text if len(text) <= length else text[:length] + "..."


class _LongInteger:
    """Stands in for an integer too long for Python to read (over 4300 digits), so that the
    error can say which task and cell holds it rather than only which file."""

    def __init__(self, text: str) -> None:
        self.digits = len(text.lstrip("-"))

    def __repr__(self) -> str:
        return f"an integer of {self.digits} digits"


def parse_json(text: str, location: str | Path) -> object:
    """Parsed JSON, or a DataError naming `location` (malformed, nested too deeply, ...)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise DataError(f"{location}: not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})") from None
    except RecursionError:
        raise DataError(f"{location}: not an ARC file: its JSON is nested too deeply (ARC nests 4 levels)") from None
    except ValueError:  # an integer too long to convert: read again, keeping such numbers as markers
        pass
    try:
        return json.loads(text, parse_int=lambda digits: int(digits) if len(digits) < 100 else _LongInteger(digits))
    except (ValueError, RecursionError) as e:
        raise DataError(f"{location}: cannot be read as JSON ({_clip(str(e), 200)})") from None


def _is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def _read_json(location: str | Path, missing_ok: bool = False) -> object:
    """Parsed JSON from a path or an http(s) URL; None for a missing file when `missing_ok`."""
    try:
        text = _read_text(str(location))
    except FileNotFoundError:
        if missing_ok:
            return None
        raise DataError(f"{location}: not found") from None
    return parse_json(text, location)


def _read_text(location: str) -> str:
    """The text at a path or URL; FileNotFoundError when it is absent (HTTP 404), else DataError."""
    if not _is_url(location):
        try:
            return Path(location).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise
        except (OSError, UnicodeDecodeError) as e:
            raise DataError(f"{location}: cannot be read ({e})") from None
    try:
        with urllib.request.urlopen(location, timeout=60) as response:
            return response.read().decode("utf-8")
    except urllib.error.HTTPError as e:
        if e.code == 404:
            raise FileNotFoundError(location) from None
        raise DataError(f"{location}: the server answered {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise DataError(
            f"{location}: cannot be fetched ({reason}); check the address, or download the files "
            "and pass their directory to --input"
        ) from None
    except UnicodeDecodeError as e:
        raise DataError(f"{location}: is not UTF-8 text ({e})") from None


def _parse_pairs(value: object, where: str, need_output: bool) -> list[tuple[np.ndarray, np.ndarray | None]]:
    if not isinstance(value, list) or not value:
        raise DataError(f"{where}: expected a non-empty list of {{'input', 'output'}} pairs, got {_describe(value)}")
    pairs = []
    for k, pair in enumerate(value):
        at = f"{where} pair {k}"
        if not isinstance(pair, dict) or "input" not in pair or (need_output and "output" not in pair):
            keys = "'input' and 'output'" if need_output else "'input'"
            raise DataError(f"{at}: expected an object with {keys}, got {_describe(pair)}")
        output = parse_grid(pair["output"], f"{at}, output") if "output" in pair else None
        pairs.append((parse_grid(pair["input"], f"{at}, input"), output))
    return pairs


def _parse_task(
    value: object,
    task_id: str,
    subset: str,
    file: str,
    solutions: object = None,
    solutions_file: str | None = None,
    placeholders: bool = False,
) -> ArcTask:
    """Validate one task object; test outputs come from `solutions` (a list of grids) when given."""
    where = f"{file}: task {task_id}"
    if VARIANT_SEPARATOR in task_id:
        raise DataError(f"{where}: task ids must not contain {VARIANT_SEPARATOR!r} (it separates variant names)")
    if not isinstance(value, dict) or "train" not in value or "test" not in value:
        raise DataError(f"{where}: expected an object with 'train' and 'test' lists, got {_describe(value)}")
    train = _parse_pairs(value["train"], f"{where}, train", need_output=True)
    test = _parse_pairs(value["test"], f"{where}, test", need_output=False)
    if solutions is not None:
        if not isinstance(solutions, list) or len(solutions) != len(test):
            count = len(solutions) if isinstance(solutions, list) else _describe(solutions)
            raise DataError(
                f"{solutions_file}: task {task_id} has {count} test outputs, expected {len(test)} "
                f"(one per test input in {file})"
            )
        test = [
            (inp, parse_grid(grid, f"{solutions_file}: task {task_id}, test output {k}"))
            for k, ((inp, _), grid) in enumerate(zip(test, solutions))
        ]
    missing = [k for k, (_, out) in enumerate(test) if out is None]
    if missing and not placeholders:
        elsewhere = f" and {solutions_file} does not exist" if solutions_file else ""
        raise DataError(
            f"{where}, test pair {missing[0]}: has no 'output'{elsewhere} (only evaluation subsets may lack solutions)"
        )
    placeholder = np.zeros((1, 1), dtype=np.uint8)
    return ArcTask(
        task_id=task_id,
        subset=subset,
        train=tuple(train),
        test=tuple((inp, placeholder if out is None else out) for inp, out in test),
        has_solutions=not missing,
        test_first=list(value).index("test") < list(value).index("train"),
    )


def load_subset(
    source: str | os.PathLike, subset: str, *, prefix: str | None = None, placeholders: bool = False
) -> list[ArcTask]:
    """The tasks of one subset, in file order.

    `source` is a directory or an http(s) base URL holding `<prefix>_<subset>_challenges.json`
    and `_solutions.json` (the Kaggle layout), or a directory with a folder `<subset>/` of task
    files (`<task id>.json`, searched recursively, as in the public ARC repositories). With
    `placeholders`, test outputs that are missing everywhere become [[0]] (a hidden test set).
    """
    source = str(source)
    if _is_url(source):
        base = f"{source.rstrip('/')}/{prefix or DEFAULT_PREFIX}_{subset}"
        return _load_kaggle(f"{base}_challenges.json", f"{base}_solutions.json", subset, placeholders)
    root = Path(source)
    if not root.is_dir():
        raise DataError(f"{root}: not found or not a directory (--input takes a directory or an http(s) URL)")
    challenges = _find_challenges(root, subset, prefix)
    if challenges is not None:
        solutions = challenges.with_name(challenges.name.removesuffix("_challenges.json") + "_solutions.json")
        return _load_kaggle(challenges, solutions, subset, placeholders)
    if (root / subset).is_dir():
        return _load_task_directory(root / subset, subset, placeholders)
    name = f"{prefix or '<prefix>'}_{subset}_challenges.json"
    raise DataError(
        f"{root}: no ARC subset '{subset}': expected {name} or a folder {subset}/ of task files "
        "(choose the subsets to read with --subsets)"
    )


def _find_challenges(root: Path, subset: str, prefix: str | None) -> Path | None:
    if prefix is not None:
        path = root / f"{prefix}_{subset}_challenges.json"
        return path if path.exists() else None
    found = sorted(root.glob(f"*_{subset}_challenges.json"))
    if len(found) > 1:
        names = ", ".join(p.name for p in found)
        raise DataError(f"{root}: several challenge files for subset '{subset}' ({names}); choose with --prefix")
    return found[0] if found else None


def _load_kaggle(challenges: str | Path, solutions: str | Path, subset: str, placeholders: bool) -> list[ArcTask]:
    tasks = _read_json(challenges)
    if not isinstance(tasks, dict) or not tasks:
        raise DataError(f"{challenges}: expected a JSON object mapping task ids to tasks, got {_describe(tasks)}")
    answers = _read_json(solutions, missing_ok=True)
    if answers is not None:
        if not isinstance(answers, dict):
            raise DataError(f"{solutions}: expected a JSON object mapping task ids to lists of test outputs")
        unanswered, unasked = tasks.keys() - answers.keys(), answers.keys() - tasks.keys()
        if unanswered or unasked:
            task_id = min(unanswered or unasked)
            where = f"is in {challenges} but not in {solutions}" if unanswered else f"is not in {challenges}"
            raise DataError(
                f"{solutions}: does not match its challenges file: task {task_id} {where} "
                f"({len(unanswered)} tasks without solutions, {len(unasked)} solutions without a task)"
            )
    return [
        _parse_task(
            task,
            task_id,
            subset,
            str(challenges),
            solutions=None if answers is None else answers[task_id],
            solutions_file=str(solutions),
            placeholders=placeholders,
        )
        for task_id, task in tasks.items()
    ]


def _load_task_directory(directory: Path, subset: str, placeholders: bool) -> list[ArcTask]:
    # In task id order, as the Kaggle files list them, wherever the files sit below `directory`.
    paths = sorted(directory.rglob("*.json"), key=lambda p: (p.stem, str(p)))
    if not paths:
        raise DataError(f"{directory}: holds no .json task files")
    seen: dict[str, Path] = {}
    tasks = []
    for path in paths:
        if path.stem in seen:
            raise DataError(f"{path}: task id {path.stem} also names {seen[path.stem]}")
        seen[path.stem] = path
        tasks.append(_parse_task(_read_json(path), path.stem, subset, str(path), placeholders=placeholders))
    return tasks


def load_tasks(
    source: str | os.PathLike,
    subsets: Sequence[str],
    eval_subsets: Sequence[str] = (),
    prefix: str | None = None,
) -> dict[str, list[ArcTask]]:
    """Subset name -> its tasks. Only evaluation subsets may lack solutions (placeholders then)."""
    return {s: load_subset(source, s, prefix=prefix, placeholders=s in eval_subsets) for s in subsets}


def resolve_subsets(
    preset: str, subsets: Sequence[str] | None = None, eval_subsets: Sequence[str] | None = None
) -> tuple[list[str], list[str]]:
    """(subsets, evaluation subsets) from a preset and optional overrides, checked for sense."""
    if preset not in PRESETS:
        raise ConfigError(f"unknown ARC preset {preset!r}; choose one of {', '.join(PRESETS)}")
    subsets = list(subsets or PRESETS[preset].subsets)
    eval_subsets = list(eval_subsets or PRESETS[preset].eval_subsets)
    if len(set(subsets)) != len(subsets):
        raise ConfigError(f"subsets {subsets} name a subset twice")
    for name in eval_subsets:
        if name not in subsets:
            raise ConfigError(
                f"evaluation subset '{name}' is not among the subsets ({' '.join(subsets)}); "
                "add it to --subsets or choose others with --eval-subsets"
            )
    return subsets, eval_subsets


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
            grid = apply_transform(grid, transform)
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


@dataclass
class ArcDataset:
    """A built ARC dataset, ready for `write_arc_dataset`."""

    splits: dict[str, Split]
    identifiers: list[str]  # identifier -> variant name; those below the first are "<blank>"
    test_puzzles: dict[str, dict]  # evaluation task id -> the task as ARC JSON, for scoring
    variants: dict[str, int]  # task id -> number of variants, the original included


def build_arc_dataset(
    tasks: dict[str, list[ArcTask]],
    eval_subsets: Sequence[str],
    *,
    num_aug: int = 1000,
    seed: int = 42,
    first_identifier: int = 1,
    progress: bool = False,
) -> ArcDataset:
    """Augment every task and encode both splits (trm-spec section 7), deterministically for a seed.

    `tasks` maps subset names to tasks, in the order their identifiers are numbered. Tasks of
    `eval_subsets` give their test pairs to the test split; all other test pairs train.
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
    splits = {
        # Only training examples are translated; evaluation sees every grid at the corner.
        "train": _encode_split(train_groups, index_of, len(identifiers), rng, progress, "train"),
        "test": _encode_split(test_groups, index_of, len(identifiers), None, progress, "test"),
    }
    return ArcDataset(splits=splits, identifiers=identifiers, test_puzzles=test_puzzles, variants=variants)


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
    num_identifiers: int,
    rng: np.random.RandomState | None,
    progress: bool,
    name: str,
) -> Split:
    """Encode every variant of every group; with `rng`, translate the examples at random."""
    builder = SetBuilder(seq_len=SEQ_LEN)
    for group in tqdm(groups, desc=f"encoding {name} split", unit="task", disable=not progress):
        for transform, variant in zip(group.variants, group.names):
            pairs = [(apply_transform(i, transform), apply_transform(o, transform)) for i, o in group.pairs]
            inputs, labels = _encode_pairs(pairs, rng)
            builder.add_puzzle(inputs, labels, identifier=index_of[variant])
        builder.end_group()
    arrays = builder.build()
    metadata = make_metadata(
        {"all": arrays}, vocab_size=VOCAB_SIZE, seq_len=SEQ_LEN, num_puzzle_identifiers=num_identifiers
    )
    return Split(metadata=metadata, sets={"all": arrays})


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
        _paint(canvases[0, k], inp, top, left)
        _paint(canvases[1, k], out, top, left)
    return canvases[0].reshape(len(pairs), SEQ_LEN), canvases[1].reshape(len(pairs), SEQ_LEN)


def write_arc_dataset(output: str | os.PathLike, dataset: ArcDataset, overwrite: bool = False) -> Path:
    """Write the splits, identifiers.json and test_puzzles.json atomically."""
    return write_dataset(
        output,
        dataset.splits,
        dataset.identifiers,
        extra_json={"test_puzzles.json": dataset.test_puzzles},
        overwrite=overwrite,
    )


# --- Command line -------------------------------------------------------------------------

_DESCRIPTION = """\
Build an ARC-AGI dataset in the reference on-disk format (trm-spec section 7).

Reads Kaggle-style files (<prefix>_<subset>_challenges.json and _solutions.json) from a
directory or a URL, or a directory with one folder of task files (<task id>.json) per subset.
Each task gets up to --num-aug variants (dihedral transform + permutation of colours 1..9);
the training split holds all demonstrations and the test pairs of non-evaluation subsets,
the test split the test pairs of the evaluation subsets in all their variants.
"""

_EPILOG = """\
examples:
  trm data arc --input ../shared/data/arc --preset arc-agi-1 --output data/arc1 --num-aug 1000
  trm data arc --input ../shared/data/arc --preset arc-agi-2 --output data/arc2
  trm data arc --input ARC-AGI/data --subsets training evaluation --output data/arc-small --num-aug 10
"""


def add_command(tasks: argparse._SubParsersAction) -> None:
    """Register `trm data arc` on the `trm data` sub-parsers."""
    parser = tasks.add_parser(
        "arc",
        help="ARC-AGI-1 / ARC-AGI-2 (+ ConceptARC) with dihedral and colour augmentation",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--input",
        required=True,
        metavar="DIR_OR_URL",
        help="directory or http(s) URL with the ARC files, e.g. --input ../shared/data/arc",
    )
    parser.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="DIR",
        help="dataset directory to create, e.g. --output data/arc1 (written atomically)",
    )
    parser.add_argument(
        "--preset",
        default="arc-agi-1",
        choices=sorted(PRESETS),
        help="arc-agi-1: training + evaluation + concept, evaluated on evaluation; arc-agi-2: "
        "training2 + evaluation2 + concept, evaluated on evaluation2 (default: %(default)s)",
    )
    parser.add_argument(
        "--subsets",
        nargs="+",
        metavar="NAME",
        help="subsets to read instead of the preset's, e.g. --subsets training evaluation",
    )
    parser.add_argument(
        "--eval-subsets",
        nargs="+",
        metavar="NAME",
        help="subsets whose test pairs form the test split instead of the preset's, e.g. --eval-subsets evaluation",
    )
    parser.add_argument(
        "--prefix",
        metavar="PREFIX",
        help=f"file name prefix of the Kaggle files, e.g. --prefix arc-agi (default: found in the "
        f"directory; '{DEFAULT_PREFIX}' for a URL)",
    )
    parser.add_argument(
        "--num-aug",
        type=int,
        default=1000,
        metavar="N",
        help="augmented variants per task besides the original, e.g. --num-aug 100 (default: %(default)s)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=42,
        help="random seed; the same seed gives the same dataset, e.g. --seed 0 (default: %(default)s)",
    )
    parser.add_argument(
        "--first-identifier",
        type=int,
        default=1,
        metavar="ID",
        help="first puzzle identifier, to combine datasets, e.g. --first-identifier 1 (default: %(default)s)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace --output if it exists, e.g. --overwrite")
    parser.add_argument("--quiet", action="store_true", help="no progress bars, e.g. --quiet")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """`trm data arc`: read, augment, write, then print a summary."""
    start = time.perf_counter()
    subsets, eval_subsets = resolve_subsets(args.preset, args.subsets, args.eval_subsets)
    check_output(args.output, args.overwrite)  # a bad output path fails now, not after the build
    tasks = load_tasks(args.input, subsets, eval_subsets, prefix=args.prefix)
    dataset = build_arc_dataset(
        tasks,
        eval_subsets,
        num_aug=args.num_aug,
        seed=args.seed,
        first_identifier=args.first_identifier,
        progress=not args.quiet,
    )
    output = write_arc_dataset(args.output, dataset, overwrite=args.overwrite)
    print(summary(output, tasks, eval_subsets, dataset, args.num_aug, args.seed, time.perf_counter() - start))
    return 0


def summary(
    output: Path,
    tasks: dict[str, list[ArcTask]],
    eval_subsets: Sequence[str],
    dataset: ArcDataset,
    num_aug: int,
    seed: int,
    seconds: float,
) -> str:
    """What was built, in a few lines."""
    size = sum(f.stat().st_size for f in output.rglob("*") if f.is_file())
    counts = list(dataset.variants.values())
    short = sum(c < num_aug + 1 for c in counts)
    lines = [f"ARC dataset written to {output} ({size / 2**30:.2f} GiB) in {seconds:.1f} s"]
    for subset, subset_tasks in tasks.items():
        role = "evaluation" if subset in eval_subsets else "training"
        unsolved = sum(not t.has_solutions for t in subset_tasks)
        note = f", {unsolved} without solutions (placeholder outputs)" if unsolved else ""
        lines.append(f"  {subset:<12} {len(subset_tasks):>5} tasks  ({role}{note})")
    for name, split in dataset.splits.items():
        m = split.metadata
        examples = sum(s.num_examples for s in split.sets.values())
        lines.append(
            f"  {name:<5} split  {m.total_groups:,} tasks in {m.total_puzzles:,} variants, {examples:,} examples"
        )
    tokens = f"PAD {PAD}, EOS {EOS}, colours 0..9 = {COLOUR_OFFSET}..{VOCAB_SIZE - 1}"
    mean = np.mean(counts) - 1 if counts else 0.0
    lines += [
        f"  identifiers  {len(dataset.identifiers):,} (including {BLANK_IDENTIFIER})",
        f"  seq_len {SEQ_LEN}, vocab {VOCAB_SIZE} ({tokens})",
        f"  augmentation up to {num_aug} variants per task and seed {seed}: {mean:.1f} on average",
    ]
    if short:
        lines.append(f"               {short} tasks have fewer: their symmetries make the draws repeat")
    return "\n".join(lines)
