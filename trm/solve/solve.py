"""One puzzle in, the answer, the steps used and the halting confidence out.

The task comes from the checkpoint: vocab 11 and length 81 is 9x9 Sudoku, vocab 6 and
length N*N an NxN maze, vocab 12 and length 900 ARC (trm-spec section 1). The puzzle is
read and checked against that task before the model sees it:

- Sudoku: 81 characters, digits 1-9 and '.' or '0' for blanks (a string, or a file holding
  one); givens that contradict each other are refused.
- Maze: a text file of N lines of N characters `#` wall, ` ` or `.` open, `S` start, `G` goal
  (or one line of N*N characters, as in the Maze-Hard CSV files).
- ARC: a task JSON ({"train": [...], "test": [...]}) or a Kaggle challenges file with
  `task_id`; every test input is solved. An ARC model knows a task through the puzzle
  embedding of its variants, so `data_dir` (the dataset it was trained with) supplies the
  identifiers; every variant of the task is run and the answers are voted on as in
  evaluation (`trm.eval.arc`). Without it the task is run once with the blank identifier.

Solving runs the supervision steps (`trm.eval.adaptive`) and keeps every step's answer, for
watching the model think (`trm.solve.render`). By default a Sudoku or a maze halts by the
"valid" rule: when its halting head says so and its answer keeps the puzzle's rules (checked
by `trm.eval.metrics`, as evaluation checks them), so a confident but broken answer is not
taken while steps remain; ARC, which has no such check, halts by the model's own "adaptive"
rule. An answer that still breaks a rule at the step cap comes back with `valid` False and
the rule it breaks in `problem`.
"""

from __future__ import annotations

import errno
import json
import math
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from trm.config import ModelConfig
from trm.data import arc, maze, sudoku
from trm.data.format import read_identifiers
from trm.data.grids import IDENTITY, Transform, apply_transform
from trm.errors import CheckpointError, ConfigError, DataError
from trm.eval.adaptive import run_steps
from trm.eval.arc import sigmoid, to_original, vote
from trm.eval.evaluate import check_device, check_halt_mode, resolve_model
from trm.eval.metrics import PROBLEMS, TASK_NAMES, VALIDITY, rules_check, task_for
from trm.model.trm import TRM

MAZE_CHARACTERS = {"#": maze.WALL, " ": maze.OPEN, ".": maze.OPEN, "S": maze.START, "G": maze.GOAL}


@dataclass
class Puzzle:
    """A question as the user sees it.

    `grid` holds Sudoku digits (9x9, 0 = blank), maze tokens (NxN, `trm.data.maze`) or ARC
    colours; `label` the answer when the source gives it (ARC test outputs).
    """

    task: str
    grid: np.ndarray
    name: str
    label: np.ndarray | None = None
    arc_task: str | None = None


@dataclass
class Step:
    """The answer after one supervision step, and the halting confidence sigmoid(q_halt) then."""

    answer: np.ndarray
    confidence: float


@dataclass
class Solution:
    """The model's answer to one puzzle (one ARC test input).

    For ARC, `answer` and `attempts` are the voted top candidates over `variants` variants,
    `confidence` the mean confidence of the winner; `steps` and `trajectory` are those of the
    untransformed variant, `mean_steps` the mean over all variants.
    """

    puzzle: Puzzle
    answer: np.ndarray
    steps: int
    confidence: float
    trajectory: list[Step]
    max_steps: int = 0  # the step cap it ran under
    halt: str = ""  # the halting rule it ran under: "fixed", "adaptive" or "valid"
    valid: bool | None = None  # Sudoku and Maze: a valid answer by the rules
    problem: str | None = None  # why it is not valid
    correct: bool | None = None  # whether it equals the known answer
    attempts: list[np.ndarray] = field(default_factory=list)
    variants: int = 1
    votes: int = 1
    mean_steps: float = 0.0
    notes: list[str] = field(default_factory=list)


# --- Reading puzzles ------------------------------------------------------------------------


def model_task(model: TRM, checkpoint: str) -> str:
    """The task a checkpoint solves, from its vocabulary and sequence length."""
    cfg = model.config
    task = task_for(cfg.vocab_size, cfg.seq_len)
    if task is None:
        raise CheckpointError(
            f"{checkpoint}: vocab_size {cfg.vocab_size} and seq_len {cfg.seq_len} match no puzzle this "
            "command can read (Sudoku 9x9: 11 and 81; NxN maze: 6 and N*N; ARC: 12 and 900)"
        )
    return task


def parse_sudoku(text: str, where: str = "Sudoku string", name: str | None = None) -> Puzzle:
    """81 characters ('.' or '0' = blank) -> a Sudoku puzzle whose givens do not clash; `where`
    names the source in errors, `name` the puzzle (default: `where`)."""
    text = text.strip()
    digits = sudoku.parse_puzzle(text, where).reshape(9, 9)
    units = [("row", digits[i]) for i in range(9)] + [("column", digits[:, i]) for i in range(9)]
    units += [("box", digits[r : r + 3, c : c + 3].ravel()) for r in (0, 3, 6) for c in (0, 3, 6)]
    for k, (kind, cells) in enumerate(units):
        counts = np.bincount(cells, minlength=10)[1:]
        if counts.max() > 1:
            raise DataError(
                f"{where}: {kind} {k % 9 + 1} repeats the given {int(counts.argmax()) + 1}; "
                "the givens contradict each other"
            )
    return Puzzle("sudoku", digits, name or where)


def _edge_rows_removed(lines: list[str]) -> list[str]:
    """The rows of a drawn maze without the blank lines around it. A line of spaces as long as
    the maze's rows is a row of open cells, not a blank line, and stays."""
    drawn = [line for line in lines if line.strip()]
    width = len(drawn[0]) if drawn else 0
    while lines and not lines[-1].strip() and len(lines[-1]) != width:
        lines = lines[:-1]
    while lines and not lines[0].strip() and len(lines[0]) != width:
        lines = lines[1:]
    return lines


def parse_maze(text: str, where: str = "maze") -> Puzzle:
    """A maze drawn as N lines of N characters (or one line of N*N) -> tokens, with one S and one G."""
    lines = _edge_rows_removed(text.splitlines())
    if len(lines) == 1 and len(lines[0]) > 1:  # one line of N*N characters
        size = math.isqrt(len(lines[0]))
        if size * size != len(lines[0]):
            raise DataError(f"{where}: one line of {len(lines[0])} characters is not a square maze (N*N characters)")
        lines = [lines[0][r * size : (r + 1) * size] for r in range(size)]
    if not lines:
        raise DataError(f"{where}: is empty; expected N lines of N characters '# SG'")
    for r, line in enumerate(lines):
        if len(line) != len(lines[0]):
            raise DataError(
                f"{where}: line {r + 1} has {len(line)} characters but line 1 has {len(lines[0])} (rows must be "
                "equally long; write open cells as ' ' or '.', and keep trailing spaces)"
            )
    if len(lines) != len(lines[0]):
        raise DataError(f"{where}: the maze is {len(lines)} lines of {len(lines[0])} characters, expected a square")
    for r, line in enumerate(lines):
        for c, char in enumerate(line):
            if char not in MAZE_CHARACTERS:
                raise DataError(
                    f"{where}: line {r + 1}, column {c + 1} holds {char!r}; a maze uses '#' (wall), ' ' or '.' "
                    "(open), 'S' (start) and 'G' (goal)"
                )
    grid = np.array([[MAZE_CHARACTERS[ch] for ch in line] for line in lines], dtype=np.uint8)
    for token, name in ((maze.START, "start 'S'"), (maze.GOAL, "goal 'G'")):
        found = int((grid == token).sum())
        if found != 1:
            raise DataError(f"{where}: the maze has {found} {name} cells, expected exactly one")
    return Puzzle("maze", grid, where)


def _load_json(text: str, path: Path) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})") from None
    except RecursionError:
        raise DataError(f"{path}: its JSON nests too deeply to be an ARC task (grids are lists of rows)") from None
    except ValueError as e:  # an integer of thousands of digits
        raise DataError(f"{path}: holds a value that cannot be read ({e}); ARC colours are 0..9") from None


def _arc_puzzles(raw: object, path: Path, task_id: str | None) -> list[Puzzle]:
    """The test inputs of task `task_id` (or the only task) of a task or challenges file's JSON."""
    if isinstance(raw, dict) and "test" in raw:
        tasks = {task_id or path.stem: raw}
    elif isinstance(raw, dict) and raw and all(isinstance(t, dict) and "test" in t for t in raw.values()):
        tasks = raw
    else:
        raise DataError(
            f'{path}: expected an ARC task ({{"train": [...], "test": [...]}}) or a challenges file '
            "mapping task ids to tasks"
        )
    if task_id is None and len(tasks) > 1:
        raise DataError(f"{path}: holds {len(tasks)} tasks; choose one with --task (e.g. --task {next(iter(tasks))})")
    task_id = task_id or next(iter(tasks))
    if task_id not in tasks:
        raise DataError(f"{path}: has no task {task_id!r}")
    task = tasks[task_id]
    for key in ("train", "test"):
        if not isinstance(task.get(key, []), list):
            raise DataError(f"{path}: task {task_id}: '{key}' must be a list of {{'input': grid, ...}} objects")
    for k, pair in enumerate(task.get("train", [])):
        if not isinstance(pair, dict) or "input" not in pair or "output" not in pair:
            raise DataError(f"{path}: task {task_id}, train pair {k}: expected an object with 'input' and 'output'")
        for key in ("input", "output"):
            arc.parse_grid(pair[key], f"{path}: task {task_id}, train pair {k}, {key}")
    tests = task["test"]
    if not tests:
        raise DataError(f"{path}: task {task_id}: 'test' must be a non-empty list of {{'input': grid}} objects")
    puzzles = []
    for k, pair in enumerate(tests):
        where = f"{path}: task {task_id}, test input {k}"
        if not isinstance(pair, dict) or "input" not in pair:
            raise DataError(f"{where}: expected an object with an 'input' grid")
        label = arc.parse_grid(pair["output"], f"{where}, output") if "output" in pair else None
        puzzles.append(Puzzle("arc", arc.parse_grid(pair["input"], where), where, label, task_id))
    return puzzles


def read_arc_task(path: str | os.PathLike, task_id: str | None = None) -> list[Puzzle]:
    """The test inputs of an ARC task file (or of task `task_id` of a challenges file)."""
    path = Path(path)
    return _arc_from_text(_read_text(path), path, task_id)


def _arc_from_text(text: str, path: Path, task_id: str | None) -> list[Puzzle]:
    raw = _load_json(text, path)
    try:
        return _arc_puzzles(raw, path, task_id)
    except RecursionError:  # describing a deeply nested value in an error message
        raise DataError(f"{path}: its JSON nests too deeply to be an ARC task (grids are lists of rows)") from None


MAX_PUZZLE_FILE_BYTES = 64 * 2**20  # ARC's largest challenges files are a few MB
SUDOKU_STRING = "81 characters: digits 1-9 and '.' or '0' for blanks"


def _shown(text: str, limit: int = 60) -> str:
    """`text` as an error message shows it: shortened, and quoted if it holds odd characters."""
    short = text if len(text) <= limit else text[: limit - 3] + "..."
    return short if short.isprintable() and short.strip() == short and short else repr(short)


def _path_kind(path: Path) -> str | None:
    """What `path` names: "file", "directory" or "other" (a device, a pipe); None where nothing
    is, or where the text cannot be a file name at all (too long, a NUL byte)."""
    try:
        mode = path.stat().st_mode
    except ValueError:
        return None
    except OSError as e:
        if e.errno in (errno.ENOENT, errno.ENOTDIR, errno.ENAMETOOLONG, errno.ELOOP, errno.EINVAL):
            return None
        raise DataError(f"{_shown(str(path))}: cannot be read ({e.strerror or e})") from None
    return "file" if stat.S_ISREG(mode) else "directory" if stat.S_ISDIR(mode) else "other"


def _read_text(path: Path) -> str:
    """A puzzle file's text (UTF-8, a byte-order mark allowed), or a DataError saying why not."""
    try:
        size = path.stat().st_size
        if size > MAX_PUZZLE_FILE_BYTES:
            raise DataError(
                f"{path}: is {size / 2**20:.0f} MiB; a puzzle file (a maze, an ARC task or challenges JSON) is "
                f"expected to be at most {MAX_PUZZLE_FILE_BYTES // 2**20} MiB"
            )
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as e:
        raise DataError(f"{path}: cannot be read ({e.strerror or e})") from None
    except UnicodeDecodeError as e:
        raise DataError(
            f"{path}: is not a text file (byte {e.start} is not UTF-8); expected a maze text file, a Sudoku "
            "string or an ARC task JSON"
        ) from None
    if "\0" in text:
        raise DataError(f"{path}: is a binary file (it holds NUL bytes); expected a maze text file or an ARC task JSON")
    return text


def _puzzles_in_file(path: Path, task_id: str | None) -> list[Puzzle]:
    content = _read_text(path)
    if path.suffix.lower() == ".json" or content.lstrip().startswith(("{", "[")):
        return _arc_from_text(content, path, task_id)
    if any(ch in content for ch in "#SG"):
        return [parse_maze(content, str(path))]
    digits = "".join(content.split())
    if len(digits) != sudoku.SEQ_LEN:
        raise DataError(
            f"{path}: holds no puzzle this command reads: a Sudoku ({SUDOKU_STRING}; this file has "
            f"{len(digits)} characters that are not spaces), a maze (N lines of N characters '#', ' ' or '.', "
            "one 'S' and one 'G') or an ARC task JSON"
        )
    return [parse_sudoku(digits, str(path))]


def read_puzzles(source: str | os.PathLike | Puzzle, task_id: str | None = None) -> list[Puzzle]:
    """Puzzles from a Sudoku string, a maze or Sudoku text file, or an ARC task JSON file."""
    if isinstance(source, Puzzle):
        return [source]
    text = str(source)
    if not text.strip():  # Path("") would be the current directory
        raise DataError(f"the puzzle is empty; expected a Sudoku string ({SUDOKU_STRING}) or a puzzle file's path")
    path = Path(text)
    kind = _path_kind(path)
    if kind == "file":
        return _puzzles_in_file(path, task_id)
    if kind is not None:
        raise DataError(
            f"{_shown(text)}: is a {'directory' if kind == 'directory' else 'special file, not a regular one'}; "
            "expected a puzzle file (a maze text file, an ARC task JSON) or a Sudoku string"
        )
    if path.suffix.lower() in (".json", ".txt") or "/" in text or os.sep in text:
        raise DataError(f"{_shown(text)}: file not found")
    if len(text.strip()) != sudoku.SEQ_LEN:
        raise DataError(
            f"{_shown(text)}: is neither a file nor a Sudoku string: it has {len(text.strip())} characters, expected "
            f"{SUDOKU_STRING} (a maze or an ARC task is given as the path of its file)"
        )
    return [parse_sudoku(text, name=text.strip())]


def check_puzzle_fits(puzzle: Puzzle, task: str, config: ModelConfig, checkpoint: str) -> None:
    """The checkpoint must be made for this kind (and size) of puzzle."""
    shape = f"vocab_size {config.vocab_size}, seq_len {config.seq_len}"
    if puzzle.task != task:
        raise CheckpointError(
            f"{checkpoint}: solves {TASK_NAMES[task]} puzzles ({shape}), but {puzzle.name} "
            f"is a {TASK_NAMES[puzzle.task]} puzzle"
        )
    if task == "maze" and puzzle.grid.size != config.seq_len:
        side = math.isqrt(config.seq_len)
        raise CheckpointError(
            f"{checkpoint}: solves {side}x{side} mazes ({shape}), but {puzzle.name} is "
            f"{puzzle.grid.shape[0]}x{puzzle.grid.shape[1]}"
        )


# --- Running the model ----------------------------------------------------------------------


@dataclass(frozen=True)
class Halting:
    """How long each run goes: "fixed", "adaptive" or "valid" mode, the step cap, the q_halt
    threshold, and the task whose rules "valid" checks."""

    mode: str
    max_steps: int
    threshold: float = 0.0
    task: str = ""


@dataclass
class _Runs:
    preds: np.ndarray  # (R, L)
    q_halt: np.ndarray  # (R,)
    steps: np.ndarray  # (R,)
    trace: list[tuple[np.ndarray, float]]  # row 0 after every step: (tokens, q_halt logit)


def _run(model: TRM, inputs: np.ndarray, identifiers: np.ndarray, halting: Halting, batch_size: int) -> _Runs:
    """Run rows of tokens in chunks, keeping every step of row 0."""
    device = next(model.parameters()).device
    trace: list[tuple[np.ndarray, float]] = []

    def on_step(step: int, rows: torch.Tensor, preds: torch.Tensor, out) -> None:
        if rows[0] == 0:
            trace.append((preds[0].cpu().numpy(), float(out.q_halt[0])))

    parts = []
    for start in range(0, len(inputs), batch_size):
        chunk = slice(start, start + batch_size)
        batch = {
            "inputs": torch.from_numpy(inputs[chunk].astype(np.int32)).to(device),
            "puzzle_identifiers": torch.from_numpy(identifiers[chunk].astype(np.int32)).to(device),
        }
        trace_here = on_step if start == 0 else None
        result = run_steps(
            model,
            batch,
            halting.max_steps,
            adaptive=halting.mode != "fixed",
            on_step=trace_here,
            halt_threshold=halting.threshold,
            accept=rules_check(halting.task) if halting.mode == "valid" else None,
        )
        parts.append([t.cpu().numpy() for t in (result.preds, result.q_halt, result.steps)])
    preds, q_halt, steps = (np.concatenate(p) for p in zip(*parts))
    return _Runs(preds, q_halt, steps, trace)


def _solve_grid(model: TRM, puzzle: Puzzle, halting: Halting) -> Solution:
    """Sudoku and Maze: one row, one answer."""
    tokens = sudoku.encode(puzzle.grid) if puzzle.task == "sudoku" else puzzle.grid
    runs = _run(model, tokens.reshape(1, -1), np.zeros(1, dtype=np.int32), halting, 1)

    def decode(t: np.ndarray) -> np.ndarray:
        grid = t.reshape(puzzle.grid.shape)
        return sudoku.decode(grid) if puzzle.task == "sudoku" else grid.astype(np.uint8)

    answer = decode(runs.preds[0])
    [problem] = PROBLEMS[puzzle.task](tokens.reshape(1, -1), runs.preds[:1])
    trajectory = [Step(decode(t), float(sigmoid(q))) for t, q in runs.trace]
    return Solution(
        puzzle=puzzle,
        answer=answer,
        steps=int(runs.steps[0]),
        confidence=float(sigmoid(runs.q_halt[0])),
        trajectory=trajectory,
        max_steps=halting.max_steps,
        halt=halting.mode,
        valid=problem is None,
        problem=problem,
        attempts=[answer],
        mean_steps=float(runs.steps[0]),
    )


def arc_variants(
    model: TRM, task_id: str, data_dir: str | os.PathLike | None
) -> tuple[list[tuple[int, Transform]], list[str]]:
    """(identifier, transform) of every variant of `task_id`, the untransformed one first, and notes."""
    if data_dir is None:
        notes = []
        if model.config.puzzle_emb_ndim > 0:
            notes.append(
                "no --data given: the task runs once with the blank puzzle identifier; an ARC model knows a task "
                "through the embeddings of its variants, so pass the dataset it was trained with"
            )
        return [(0, IDENTITY)], notes
    names = read_identifiers(data_dir)
    prefix = task_id + arc.VARIANT_SEPARATOR
    found = [(i, arc.parse_variant_name(n)[1]) for i, n in enumerate(names) if n == task_id or n.startswith(prefix)]
    if not found:
        raise DataError(
            f"{Path(data_dir) / 'identifiers.json'}: has no task {task_id!r}; an ARC model only knows the tasks whose "
            "demonstrations it was trained on (leave out --data to run it with the blank identifier)"
        )
    largest = max(i for i, _ in found)
    if model.config.puzzle_emb_ndim > 0 and largest >= model.config.num_puzzle_identifiers:
        raise CheckpointError(
            f"{data_dir}: identifier {largest} is beyond the model's {model.config.num_puzzle_identifiers} puzzle "
            "embeddings: the checkpoint was trained on another dataset"
        )
    found.sort(key=lambda v: not v[1].is_identity)
    return found, []


def _solve_arc(
    model: TRM, puzzle: Puzzle, variants: list[tuple[int, Transform]], halting: Halting, batch_size: int
) -> Solution:
    """Run the test input in every variant, map the answers back and vote (trm.eval.arc)."""
    inputs = np.stack([arc.encode_grid(apply_transform(puzzle.grid, t)).ravel() for _, t in variants])
    identifiers = np.array([i for i, _ in variants], dtype=np.int32)
    runs = _run(model, inputs, identifiers, halting, batch_size)
    originals = [to_original(p, t) for p, (_, t) in zip(runs.preds, variants)]
    ranked = vote(zip(originals, sigmoid(runs.q_halt).tolist()))
    first = variants[0][1]
    trajectory = [Step(to_original(t, first), float(sigmoid(q))) for t, q in runs.trace]
    answer = ranked[0].grid
    return Solution(
        puzzle=puzzle,
        answer=answer,
        steps=int(runs.steps[0]),
        confidence=ranked[0].confidence,
        trajectory=trajectory,
        max_steps=halting.max_steps,
        halt=halting.mode,
        correct=None if puzzle.label is None else bool(np.array_equal(answer, puzzle.label)),
        attempts=[c.grid for c in ranked[:2]],
        variants=len(variants),
        votes=ranked[0].votes,
        mean_steps=float(runs.steps.mean()),
    )


def solve(
    model: TRM | str | os.PathLike,
    puzzle: str | os.PathLike | Puzzle,
    *,
    halt: str | None = None,
    max_steps: int | None = None,
    halt_threshold: float = 0.0,
    data_dir: str | os.PathLike | None = None,
    task_id: str | None = None,
    batch_size: int = 64,
    device: str | torch.device | None = None,
    forward_dtype: str | None = None,
) -> list[Solution]:
    """Solve a puzzle with a model (or a checkpoint path): one Solution per question.

    `puzzle` is a Sudoku string, the path of a maze text file or of an ARC task JSON (all its
    test inputs are solved: one Solution each), or a `Puzzle`. `halt` is "adaptive" (stop when
    q_halt > `halt_threshold`, at most `max_steps`, default N_sup), "valid" (Sudoku and Maze:
    stop when q_halt > `halt_threshold` and the answer keeps the puzzle's rules, at most
    `max_steps`) or "fixed" (always `max_steps`); by default "valid" where the task has rules
    to check (Sudoku, Maze) and "adaptive" for ARC.
    For ARC, `data_dir` is the dataset the model was trained with (its identifiers.json).
    `forward_dtype` overrides the checkpoint's dtype (see `trm.eval.evaluate.resolve_model`).
    """
    if halt is not None:
        check_halt_mode(halt)
    if max_steps is not None and max_steps < 1:
        raise ConfigError(f"max_steps must be at least 1, got {max_steps}")
    check_device(device)
    model, checkpoint = resolve_model(model, device, forward_dtype)
    task = model_task(model, checkpoint)
    puzzles = read_puzzles(puzzle, task_id)
    for p in puzzles:
        check_puzzle_fits(p, task, model.config, checkpoint)
    halt = halt or ("valid" if task in VALIDITY else "adaptive")
    check_halt_mode(halt, task)
    halting = Halting(halt, max_steps or model.config.N_sup, halt_threshold, task)
    if task != "arc":
        return [_solve_grid(model, p, halting) for p in puzzles]
    if data_dir is not None and puzzles[0].arc_task is None:
        raise ConfigError("an ARC Puzzle needs its task id (Puzzle.arc_task) to find its variants in data_dir")
    variants, notes = arc_variants(model, puzzles[0].arc_task, data_dir)
    solutions = [_solve_arc(model, p, variants, halting, batch_size) for p in puzzles]
    for s in solutions:
        s.notes += notes
    return solutions
