"""Reading ARC tasks for the dataset builder: Kaggle files, task folders, URLs, presets.

A source is a directory or an http(s) base URL holding `<prefix>_<subset>_challenges.json`
and `_solutions.json` (the Kaggle layout), or a directory with one folder of task files
(`<task id>.json`) per subset, as in the public ARC repositories. Every error names the file,
the task and the pair at fault.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from trm.errors import ConfigError, DataError
from trm.tasks.arc import VARIANT_SEPARATOR, describe, parse_grid, parse_json

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
        raise DataError(f"{where}: expected a non-empty list of {{'input', 'output'}} pairs, got {describe(value)}")
    pairs = []
    for k, pair in enumerate(value):
        at = f"{where} pair {k}"
        if not isinstance(pair, dict) or "input" not in pair or (need_output and "output" not in pair):
            keys = "'input' and 'output'" if need_output else "'input'"
            raise DataError(f"{at}: expected an object with {keys}, got {describe(pair)}")
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
        raise DataError(f"{where}: expected an object with 'train' and 'test' lists, got {describe(value)}")
    train = _parse_pairs(value["train"], f"{where}, train", need_output=True)
    test = _parse_pairs(value["test"], f"{where}, test", need_output=False)
    if solutions is not None:
        if not isinstance(solutions, list) or len(solutions) != len(test):
            count = len(solutions) if isinstance(solutions, list) else describe(solutions)
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
        raise DataError(f"{challenges}: expected a JSON object mapping task ids to tasks, got {describe(tasks)}")
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
