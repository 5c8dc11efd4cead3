"""Small datasets and freshly initialised models shared by the evaluation and solve tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from trm.config import ModelConfig
from trm.data.arc import make_variants
from trm.data.format import SetBuilder, Split, make_metadata, write_dataset
from trm.model import TRM
from trm.tasks import arc, maze, sudoku
from trm.tasks.grids import dihedral

SOLUTION = "534678912672195348198342567859761423426853791713924856961537284287419635345286179"
PUZZLE = "53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79"

# 5x5 mazes: S top left, G bottom right; the label marks the shortest path.
MAZE = ["S   #", "### #", "#   #", "# ###", "#   G"]
MAZE_PATH = ["Sooo#", "###o#", "#ooo#", "#o###", "#oooG"]


def sudoku_pairs(count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """`count` (question, answer) digit pairs: transforms of one solution with 30-50 blanks."""
    rng = np.random.default_rng(seed)
    base = np.array([int(c) for c in SOLUTION], dtype=np.int8)
    answers = np.stack([t.apply(base) for t in sudoku.random_transforms(rng, count)])
    questions = answers.copy()
    for q in questions:
        q[rng.choice(81, size=rng.integers(30, 50), replace=False)] = 0
    return questions, answers


def _write(
    root: Path,
    builder: SetBuilder,
    vocab_size: int,
    seq_len: int,
    identifiers: list[str],
    extra: dict | None = None,
    num_identifiers: int = 1,
) -> Path:
    arrays = builder.build()
    meta = make_metadata(
        {"all": arrays}, vocab_size=vocab_size, seq_len=seq_len, num_puzzle_identifiers=num_identifiers
    )
    split = Split(meta, {"all": arrays})
    return write_dataset(root, {"train": split, "test": split}, identifiers, extra_json=extra)


def write_sudoku_dataset(root: Path, count: int = 12, seed: int = 0) -> Path:
    builder = SetBuilder(seq_len=81)
    for q, a in zip(*sudoku_pairs(count, seed)):
        builder.add_puzzle(sudoku.to_tokens(q), sudoku.to_tokens(a), identifier=0)
        builder.end_group()
    return _write(root, builder, sudoku.VOCAB_SIZE, 81, ["<blank>"])


def maze_grid(rows: list[str]) -> np.ndarray:
    return maze.text_to_tokens("".join(rows))


def write_maze_dataset(root: Path) -> Path:
    builder = SetBuilder(seq_len=25)
    for tid in range(4):
        builder.add_puzzle(dihedral(maze_grid(MAZE), tid).ravel(), dihedral(maze_grid(MAZE_PATH), tid).ravel(), 0)
        builder.end_group()
    return _write(root, builder, maze.VOCAB_SIZE, 25, ["<blank>"])


def arc_tasks() -> dict[str, dict]:
    """Two tasks; the second has two test inputs."""
    rng = np.random.default_rng(3)

    def pair(shape):
        return {"input": rng.integers(0, 10, shape).tolist(), "output": rng.integers(0, 10, shape[::-1]).tolist()}

    return {
        "task_a": {"train": [pair((2, 3))], "test": [pair((3, 4))]},
        "task_b": {"train": [pair((2, 2))], "test": [pair((2, 5)), pair((4, 1))]},
    }


def write_arc_dataset(root: Path, num_aug: int = 3) -> Path:
    """A test split of every test pair of `arc_tasks()` in the identity and `num_aug` variants."""
    tasks = arc_tasks()
    rng = np.random.RandomState(0)
    identifiers, builder = ["<blank>"], SetBuilder(seq_len=arc.SEQ_LEN)
    for task_id, task in tasks.items():
        pairs = [(np.array(p["input"], np.uint8), np.array(p["output"], np.uint8)) for p in task["test"]]
        for transform in make_variants(pairs, num_aug, rng):
            identifiers.append(arc.variant_name(task_id, transform))
            inputs = [arc.encode_grid(transform.apply(i)).ravel() for i, _ in pairs]
            labels = [arc.encode_grid(transform.apply(o)).ravel() for _, o in pairs]
            builder.add_puzzle(inputs, labels, identifier=len(identifiers) - 1)
        builder.end_group()
    return _write(
        root,
        builder,
        arc.VOCAB_SIZE,
        arc.SEQ_LEN,
        identifiers,
        {"test_puzzles.json": tasks},
        num_identifiers=len(identifiers),
    )


def tiny_model(vocab_size: int, seq_len: int, seed: int = 0, halting: bool = True, **overrides) -> TRM:
    """A freshly initialised small TRM. With `halting`, the halting head gets random weights and
    no bias, so that some samples halt early and others do not."""
    torch.manual_seed(seed)
    fields = dict(
        vocab_size=vocab_size,
        seq_len=seq_len,
        hidden_size=32,
        num_heads=2,
        T=2,
        n=2,
        N_sup=4,
        mixer="mlp",
        pos_encodings="none",
    )
    model = TRM(ModelConfig(**{**fields, **overrides})).eval()
    if halting:
        with torch.no_grad():
            model.q_head.weight.normal_(0, 1.0)
            model.q_head.bias.zero_()
    return model


def scripted_sudoku_model(valid_from: list[int], q_halt: list[float]) -> TRM:
    """A tiny Sudoku model whose answers are scripted: the row with puzzle identifier i answers
    PUZZLE with a broken grid (row 1 repeats 3) before step `valid_from[i]` and with SOLUTION
    from then on, with halting logit `q_halt[i]` at every step (q_continue 0)."""
    import itertools

    from trm.model.trm import StepOutput

    model = tiny_model(11, 81)
    solution = torch.from_numpy(sudoku.to_tokens(np.array([int(c) for c in SOLUTION]))).long()
    broken = solution.clone()
    broken[2] = 3 + 1  # cell r1c3 (a blank in PUZZLE) becomes 3, as the given at r1c2
    valid_from_t, q_halt_t = torch.tensor(valid_from), torch.tensor(q_halt, dtype=torch.float32)
    steps = itertools.count(1)

    def supervision_step(y, z, data):
        step, ids = next(steps), data["puzzle_identifiers"].long()
        tokens = torch.where((step >= valid_from_t[ids])[:, None], solution, broken)
        logits = torch.nn.functional.one_hot(tokens, 11).float()
        return y, z, StepOutput(logits=logits, q_halt=q_halt_t[ids], q_continue=torch.zeros(len(ids)))

    model.supervision_step = supervision_step
    return model


def sudoku_batch(rows: int) -> dict[str, torch.Tensor]:
    """PUZZLE in `rows` rows with puzzle identifiers 0..rows-1 (for `scripted_sudoku_model`)."""
    puzzle = torch.from_numpy(sudoku.to_tokens(sudoku.parse_digits(PUZZLE))).long()
    return {"inputs": puzzle.repeat(rows, 1), "puzzle_identifiers": torch.arange(rows)}
