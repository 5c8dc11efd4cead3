"""ARC scoring: augmentation voting, pass@K and the Kaggle submission (trm-spec section 7).

Every prediction is made on one variant of a task (a dihedral transform and a colour
permutation, recorded in its identifier's name). Scoring follows the reference evaluator
(`evaluators/arc.py`) step for step:

1. crop the predicted canvas to its grid (`crop_prediction`) and undo the variant's
   transform; do the same to the input, which tells which test input it answers;
2. per (task, test input), count identical grids over all variants and average their
   sigmoid(q_halt) (float64);
3. rank candidates by (votes, mean confidence), highest first; exact ties keep the order in
   which the candidates were first predicted (the reference's stable sort);
4. pass@K: a test input is solved when its true output is among the top K; a task scores
   the mean over its test inputs, and pass@K is the mean over tasks. A test input without
   any prediction counts as unsolved.

The submission gives the top two candidates per test input as `attempt_1` and `attempt_2`
(the first repeated when there is only one).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from trm.data.format import read_identifiers, read_json
from trm.errors import DataError
from trm.tasks.arc import GRID_SIZE, parse_grid, parse_variant_name, to_original
from trm.tasks.grids import NUM_COLOURS, Transform

PASS_KS = (1, 2, 5, 10, 100, 1000)
ATTEMPTS = 2
# Kaggle needs a grid for every attempt; an empty crop (or a test input no variant answered)
# is written as this grid. It never matches a true output, so no score changes.
FILLER_GRID = [[0]]

GridKey = tuple[int, int, bytes]


def grid_key(grid: np.ndarray) -> GridKey:
    """Equal for two grids exactly when their shapes and cells are equal (the reference hashes these)."""
    grid = np.ascontiguousarray(grid, dtype=np.uint8)
    return (*grid.shape, grid.tobytes())


@dataclass
class Candidate:
    """One distinct predicted grid for one test input, with its votes."""

    grid: np.ndarray
    votes: int = 0
    confidence_sum: float = 0.0

    @property
    def confidence(self) -> float:
        """Mean sigmoid(q_halt) of the predictions that voted for this grid."""
        return self.confidence_sum / self.votes


class Ballot:
    """The votes for one test input, in the order candidates first appeared."""

    def __init__(self) -> None:
        self._candidates: dict[GridKey, Candidate] = {}

    def add(self, grid: np.ndarray, confidence: float) -> None:
        candidate = self._candidates.setdefault(grid_key(grid), Candidate(grid))
        candidate.votes += 1
        candidate.confidence_sum += confidence

    def ranked(self) -> list[Candidate]:
        # sorted() is stable with reverse=True too, so exact ties keep first-seen order.
        return sorted(self._candidates.values(), key=lambda c: (c.votes, c.confidence), reverse=True)

    def __len__(self) -> int:
        return len(self._candidates)


def sigmoid(logits: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(logits, dtype=np.float64)))


def vote(predictions: Iterable[tuple[np.ndarray, float]]) -> list[Candidate]:
    """Rank (grid, confidence) predictions of one test input by votes, then mean confidence."""
    ballot = Ballot()
    for grid, confidence in predictions:
        ballot.add(grid, confidence)
    return ballot.ranked()


class ArcScorer:
    """Collects predictions on variants and scores them against test_puzzles.json.

    `identifiers` is the dataset's identifiers.json (identifier -> variant name) and
    `test_puzzles` its test_puzzles.json (task id -> the task in ARC JSON).
    """

    def __init__(self, identifiers: Sequence[str], test_puzzles: dict[str, dict]) -> None:
        self.identifiers = identifiers
        self.test_puzzles = test_puzzles
        self._transforms: dict[int, tuple[str, Transform]] = {}
        self._ballots: dict[tuple[str, GridKey], Ballot] = {}

    @classmethod
    def from_dataset(cls, root: str | os.PathLike) -> ArcScorer:
        return cls(read_identifiers(root), read_test_puzzles(root))

    def _variant(self, identifier: int) -> tuple[str, Transform]:
        if identifier not in self._transforms:
            if not 0 <= identifier < len(self.identifiers):
                raise DataError(
                    f"puzzle identifier {identifier} is not in identifiers.json ({len(self.identifiers)} names)"
                )
            self._transforms[identifier] = parse_variant_name(self.identifiers[identifier])
        return self._transforms[identifier]

    def add(self, identifier: int, inputs: np.ndarray, preds: np.ndarray, q_halt: float) -> None:
        """One prediction: the variant's identifier, its input and predicted canvases, its q_halt logit."""
        task_id, transform = self._variant(int(identifier))
        key = (task_id, grid_key(to_original(inputs, transform)))
        self._ballots.setdefault(key, Ballot()).add(to_original(preds, transform), float(sigmoid(q_halt)))

    def add_batch(self, identifiers: np.ndarray, inputs: np.ndarray, preds: np.ndarray, q_halt: np.ndarray) -> None:
        for row in zip(identifiers, inputs, preds, q_halt):
            self.add(*row)

    def ranked(self, task_id: str, test_input: np.ndarray) -> list[Candidate]:
        """The candidates for one test input, best first (empty when nothing predicted it)."""
        ballot = self._ballots.get((task_id, grid_key(test_input)))
        return ballot.ranked() if ballot is not None else []

    def _test_pairs(self, task_id: str) -> list[tuple[np.ndarray, np.ndarray]]:
        where = f"test_puzzles.json: task {task_id}, test"
        return [
            (parse_grid(p["input"], f"{where} {k} input"), parse_grid(p["output"], f"{where} {k} output"))
            for k, p in enumerate(self.test_puzzles[task_id]["test"])
        ]

    def tasks_predicted(self) -> list[str]:
        """Tasks with at least one prediction, in test_puzzles.json order."""
        seen = {task for task, _ in self._ballots}
        return [t for t in self.test_puzzles if t in seen]

    def pass_at_k(self, ks: Sequence[int] = PASS_KS, tasks: Sequence[str] | None = None) -> dict[int, float]:
        """pass@K for each K, averaged over `tasks` (default: every task in test_puzzles.json)."""
        tasks = list(self.test_puzzles) if tasks is None else list(tasks)
        totals = np.zeros(len(ks))
        for task_id in tasks:
            pairs = self._test_pairs(task_id)
            for test_input, test_output in pairs:
                ranked = self.ranked(task_id, test_input)
                target = grid_key(test_output)
                hits = [any(grid_key(c.grid) == target for c in ranked[:k]) for k in ks]
                totals += np.array(hits, dtype=float) / len(pairs)
        return {k: float(t / max(len(tasks), 1)) for k, t in zip(ks, totals)}

    def submission(self, tasks: Sequence[str] | None = None) -> dict[str, list[dict[str, list[list[int]]]]]:
        """The Kaggle submission: per task, per test input, the top two candidates."""
        tasks = list(self.test_puzzles) if tasks is None else list(tasks)
        out = {}
        for task_id in tasks:
            out[task_id] = []
            for test_input, _ in self._test_pairs(task_id):
                grids = [c.grid.tolist() for c in self.ranked(task_id, test_input)[:ATTEMPTS]]
                grids = [g if g else FILLER_GRID for g in grids] or [FILLER_GRID]
                grids += [grids[0]] * (ATTEMPTS - len(grids))
                out[task_id].append({f"attempt_{i + 1}": g for i, g in enumerate(grids)})
        return out


def read_test_puzzles(root: str | os.PathLike) -> dict[str, dict]:
    """test_puzzles.json of an ARC dataset: task id -> {"train": [...], "test": [...]}."""
    path = Path(root) / "test_puzzles.json"
    puzzles = read_json(path, "not found; ARC scoring needs the test_puzzles.json the ARC builder writes")
    if not isinstance(puzzles, dict) or not all(isinstance(t, dict) and "test" in t for t in puzzles.values()):
        raise DataError(f"{path}: expected a JSON object mapping task ids to tasks with a 'test' list")
    return puzzles


# --- The Kaggle submission format ----------------------------------------------------------


def _check_grid(value: object, where: str) -> None:
    if not isinstance(value, list) or not value or len(value) > GRID_SIZE:
        raise DataError(f"{where}: expected a grid of 1 to {GRID_SIZE} rows, got {str(value)[:40]}")
    for r, row in enumerate(value):
        if not isinstance(row, list) or not row or len(row) != len(value[0]) or len(row) > GRID_SIZE:
            raise DataError(f"{where}: row {r} must be a list of 1 to {GRID_SIZE} cells as long as row 0")
        if not all(type(cell) is int and 0 <= cell < NUM_COLOURS for cell in row):
            raise DataError(f"{where}: row {r} holds a value that is not a colour 0..9")


def validate_submission(submission: object, test_puzzles: dict[str, dict] | None = None) -> None:
    """Raise DataError unless `submission` has the Kaggle ARC Prize format.

    That is {task id: [{"attempt_1": grid, "attempt_2": grid}, ... one per test input]},
    grids being non-empty rectangular lists of colours 0..9 of at most 30x30. With
    `test_puzzles`, every task must be present, with one entry per test input, and no other.
    """
    if not isinstance(submission, dict):
        raise DataError("submission: expected a JSON object mapping task ids to lists of attempts")
    if test_puzzles is not None:
        missing, extra = test_puzzles.keys() - submission.keys(), submission.keys() - test_puzzles.keys()
        if missing or extra:
            raise DataError(
                f"submission: {len(missing)} tasks missing (e.g. {sorted(missing)[:1]}), "
                f"{len(extra)} unknown tasks (e.g. {sorted(extra)[:1]})"
            )
    for task_id, entries in submission.items():
        if not isinstance(entries, list) or not entries:
            raise DataError(f"submission: task {task_id}: expected a non-empty list, one entry per test input")
        if test_puzzles is not None and len(entries) != len(test_puzzles[task_id]["test"]):
            raise DataError(
                f"submission: task {task_id} has {len(entries)} entries, expected "
                f"{len(test_puzzles[task_id]['test'])} (one per test input)"
            )
        for k, entry in enumerate(entries):
            keys = [f"attempt_{i + 1}" for i in range(ATTEMPTS)]
            if not isinstance(entry, dict) or sorted(entry) != keys:
                raise DataError(f"submission: task {task_id}, test input {k}: expected exactly the keys {keys}")
            for name in keys:
                _check_grid(entry[name], f"submission: task {task_id}, test input {k}, {name}")


def write_submission(path: str | os.PathLike, submission: dict, test_puzzles: dict[str, dict] | None = None) -> Path:
    """Validate and write submission.json."""
    validate_submission(submission, test_puzzles)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(submission))
    return path
