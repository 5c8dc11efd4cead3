"""Maze-Hard: find the shortest path through a 30x30 maze (trm-spec sections 1 and 7).

A maze is a square grid of the characters `# SGo` (wall, open, start, goal, path), stored as
tokens 1..5 with 0 = PAD, one example per maze and sequence length N*N. The input shows the
walls, S and G; the label is the same grid with the cells between S and G on the shortest
path marked `o`. Three sources feed one builder: the Hugging Face dataset the paper used
(`hf`), a local copy of its CSV files (`csv`), and our own generator (`generate`), whose
mazes have exactly one shortest path, so that the label is the only right answer.

Lengths count moves: a path of length d has d - 1 `o` cells between S and G.
"""

from __future__ import annotations

import argparse
import csv
import math
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from trm.data.format import SetBuilder, Split, check_output, make_metadata, write_dataset
from trm.data.grids import DIHEDRAL_INVERSE, dihedral
from trm.errors import DataError

CHARSET = "# SGo"  # token i + 1 is CHARSET[i], as in the reference builder
WALL, OPEN, START, GOAL, PATH = range(1, 6)
VOCAB_SIZE = len(CHARSET) + 1
HF_REPO = "sapientinc/maze-30x30-hard-1k"
CSV_COLUMNS = ("source", "question", "answer", "rating")
MAZE_HARD_SIZE, MAZE_HARD_MIN_PATH = 30, 110
MAX_SIZE = 64  # the generator's BFS keeps one grid row in one 64-bit word

_TOKENS = np.zeros(256, dtype=np.uint8)
_TOKENS[[ord(c) for c in CHARSET]] = np.arange(1, len(CHARSET) + 1)


def encode(text: str) -> np.ndarray:
    """A maze written as N*N characters (a CSV cell) -> (N, N) tokens; unknown characters become 0."""
    size = math.isqrt(len(text))
    if size * size != len(text):
        raise ValueError(f"a maze has N*N characters, got {len(text)}")
    codes = np.frombuffer(text.encode("ascii", errors="replace"), dtype=np.uint8)
    return _TOKENS[codes].reshape(size, size)


def decode(grid: np.ndarray) -> str:
    """(N, N) tokens -> N*N characters, the inverse of `encode` (PAD and unknown tokens show as '?')."""
    chars = np.array(list("?" + CHARSET + "?" * (256 - VOCAB_SIZE)))
    return "".join(chars[np.asarray(grid, dtype=np.uint8).ravel()])


# ---------------------------------------------------------------------------------------
# Breadth-first search on a batch of grids. A grid row is one 64-bit word (bit c = column
# c), so one BFS step for thousands of mazes is a handful of shifts and ORs on a (K, N)
# array: this is what makes screening millions of random mazes fast without a compiler.


def _pack(mask: np.ndarray) -> np.ndarray:
    """(K, N, N) bool -> (K, N) uint64 bitboards."""
    packed = np.packbits(mask, axis=-1, bitorder="little")
    words = np.zeros(mask.shape[:-1] + (8,), dtype=np.uint8)
    words[..., : packed.shape[-1]] = packed
    return words.view("<u8")[..., 0]


def _unpack(bits: np.ndarray, size: int) -> np.ndarray:
    """(K, N) uint64 bitboards -> (K, N, N) bool."""
    as_bytes = np.ascontiguousarray(bits, dtype="<u8")[..., None].view(np.uint8)
    return np.unpackbits(as_bytes, axis=-1, count=size, bitorder="little").astype(bool)


def _grow(bits: np.ndarray) -> np.ndarray:
    """Each cell and its four neighbours (bits may spill past column N-1; callers mask them)."""
    grown = bits | (bits << np.uint64(1)) | (bits >> np.uint64(1))
    grown[:, 1:] |= bits[:, :-1]
    grown[:, :-1] |= bits[:, 1:]
    return grown


def _bfs_layers(open_bits: np.ndarray, start_bits: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (rows, frontier) at distance 0, 1, 2, ...: the frontier bitboards of the grids `rows`.

    Grids whose search has ended are dropped from the batch as they accumulate (a yielded
    frontier may still hold a few empty ones), so that a few long searches stay cheap.
    """
    rows = np.arange(len(open_bits))
    frontier = start_bits & open_bits
    reached = frontier.copy()
    while True:
        alive = frontier.any(axis=1)
        if alive.sum() < 0.75 * len(rows):
            rows, frontier, reached, open_bits = (a[alive] for a in (rows, frontier, reached, open_bits))
        if not len(rows):
            return
        yield rows, frontier
        frontier = _grow(frontier) & open_bits & ~reached
        reached |= frontier


def shortest_distances(open_cells: np.ndarray, start: np.ndarray) -> np.ndarray:
    """Moves from the `start` cells to every cell through `open_cells`, -1 where unreachable.

    Both arguments are (K, N, N) bool (or (N, N)); the result is int32 of the same shape.
    """
    open_cells, start = np.asarray(open_cells, dtype=bool), np.asarray(start, dtype=bool)
    batch = open_cells.reshape((-1,) + open_cells.shape[-2:])
    size = batch.shape[-1]
    if size > MAX_SIZE:
        raise ValueError(f"mazes are at most {MAX_SIZE}x{MAX_SIZE}, got {size}x{size}")
    dist = np.full(batch.shape, -1, dtype=np.int32)
    everywhere = np.zeros(batch.shape[:2], dtype="<u8")
    for t, (rows, frontier) in enumerate(_bfs_layers(_pack(batch), _pack(start.reshape(batch.shape)))):
        everywhere[:] = 0
        everywhere[rows] = frontier
        dist[_unpack(everywhere, size)] = t
    return dist.reshape(open_cells.shape)


# ---------------------------------------------------------------------------------------
# Checking an answer


def _as_grids(tokens: np.ndarray) -> np.ndarray:
    """(K, N*N) or (K, N, N) tokens -> (K, N, N)."""
    tokens = np.asarray(tokens)
    if tokens.ndim == 2:
        size = math.isqrt(tokens.shape[1])
        if size * size != tokens.shape[1]:
            raise ValueError(f"a flat maze has N*N tokens, got {tokens.shape[1]}")
        tokens = tokens.reshape(-1, size, size)
    if tokens.ndim != 3 or tokens.shape[1] != tokens.shape[2]:
        raise ValueError(f"expected (K, N, N) or (K, N*N) maze tokens, got shape {tokens.shape}")
    return tokens


def _char(token: int) -> str:
    return repr(CHARSET[token - 1]) if 1 <= token <= len(CHARSET) else f"token {token}"


def path_errors(mazes: np.ndarray, predictions: np.ndarray) -> list[str | None]:
    """For each maze, why the prediction is not a shortest S->G path, or None if it is one.

    A prediction is right when it keeps every wall, S and G in place, marks `o` only on
    open cells, and S, G and its `o` cells form a connected path as short as the shortest.
    Any shortest path is accepted, not only the label's (they differ when there are ties).
    Both arguments hold K mazes as (K, N, N) or (K, N*N) tokens.
    """
    mazes, predictions = _as_grids(mazes), _as_grids(predictions)
    if mazes.shape != predictions.shape:
        raise ValueError(f"mazes {mazes.shape} and predictions {predictions.shape} differ in shape")
    reasons: list[str | None] = [None] * len(mazes)
    start, goal = mazes == START, mazes == GOAL
    for k in range(len(mazes)):
        for name, cells in (("start 'S'", start[k]), ("goal 'G'", goal[k])):
            if cells.sum() != 1:
                reasons[k] = f"the maze has {cells.sum()} {name} cells, expected one"
    changed = (predictions != mazes) & ~((mazes == OPEN) & (predictions == PATH))
    for k in np.flatnonzero(changed.any(axis=(1, 2))):
        if reasons[k] is None:
            r, c = np.argwhere(changed[k])[0]
            maze_token, predicted = int(mazes[k, r, c]), int(predictions[k, r, c])
            reasons[k] = (
                f"the path goes through the wall at ({r}, {c})"
                if maze_token == WALL and predicted == PATH
                else f"cell ({r}, {c}) is {_char(maze_token)} in the maze but {_char(predicted)} in the answer"
            )

    def to_goal(cells: np.ndarray) -> np.ndarray:  # distance to G (-1: unreachable) where G is unique
        return (shortest_distances(cells, start) * goal).sum(axis=(1, 2))

    shortest = to_goal(np.isin(mazes, (OPEN, START, GOAL)))
    marked = (predictions == PATH) | start | goal
    along_path = to_goal(marked)
    steps = marked.sum(axis=(1, 2)) - 1
    for k in range(len(mazes)):
        if reasons[k] is not None:
            continue
        if shortest[k] < 0:
            reasons[k] = "the maze has no path from S to G"
        elif along_path[k] < 0:
            reasons[k] = "the marked cells do not connect S to G"
        elif along_path[k] > shortest[k]:
            reasons[k] = f"the path takes {along_path[k]} steps, the shortest takes {shortest[k]}"
        elif steps[k] > shortest[k]:
            reasons[k] = f"{steps[k] - shortest[k]} marked cell(s) lie off the path"
    return reasons


def path_error(maze: np.ndarray, prediction: np.ndarray) -> str | None:
    """Why `prediction` is not a shortest S->G path of `maze` ((N, N) or (N*N,) tokens), or None."""
    return path_errors(np.asarray(maze)[None], np.asarray(prediction)[None])[0]


def is_valid_path(maze: np.ndarray, prediction: np.ndarray) -> bool:
    """True when `prediction` marks a shortest S->G path of `maze` (any one of them)."""
    return path_error(maze, prediction) is None


def path_lengths(labels: np.ndarray) -> np.ndarray:
    """Length (moves) of the path each label marks: its `o` cells plus one."""
    labels = _as_grids(labels)
    return (labels == PATH).sum(axis=(1, 2)) + 1


# ---------------------------------------------------------------------------------------
# Generating mazes with a unique shortest path

CANDIDATES_PER_ROUND = 4096
_FRUITLESS_ROUNDS = 50  # give up when this many rounds in a row find no long enough maze


def default_min_path_length(size: int) -> int:
    """The minimum path length that makes a size x size maze as hard as Maze-Hard's 110 at 30x30.

    Shortest paths through random walls near the percolation threshold grow as
    size ** 1.13 (the chemical-distance exponent of 2-D percolation), so scaling 110 this
    way keeps the same share (about the top 1%) of random mazes: 28 at 9x9, 50 at 15x15.
    """
    return max(1, round(MAZE_HARD_MIN_PATH * (size / MAZE_HARD_SIZE) ** 1.13))


def _random_cell(rng: np.random.Generator, mask: np.ndarray) -> np.ndarray:
    """One cell per grid drawn uniformly from `mask` ((K, N, N) bool), as a one-hot mask."""
    flat = mask.reshape(len(mask), mask.shape[-2] * mask.shape[-1])
    keys = rng.random(flat.shape, dtype=np.float32) * flat
    one_hot = np.zeros_like(flat)
    one_hot[np.arange(len(flat)), keys.argmax(axis=1)] = True
    return one_hot.reshape(mask.shape)


def _screen(
    rng: np.random.Generator, size: int, min_length: int, wall_density: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Draw a round of random mazes; return (open, start, goal) of those with a long enough path.

    S is a cell farthest from a random open cell (one "double sweep", which makes long
    shortest paths about six times likelier than a random S); G is drawn uniformly from the
    cells at least `min_length` moves from S. Also returns the longest distance seen.
    """
    k = CANDIDATES_PER_ROUND
    density = rng.uniform(*wall_density, size=k).astype(np.float32)
    open_cells = rng.random((k, size, size), dtype=np.float32) >= density[:, None, None]
    open_bits = _pack(open_cells)

    farthest = np.zeros_like(open_bits)
    eccentricity = np.zeros(k, dtype=np.int64)
    for t, (rows, frontier) in enumerate(_bfs_layers(open_bits, _pack(_random_cell(rng, open_cells)))):
        alive = frontier.any(axis=1)
        farthest[rows[alive]], eccentricity[rows[alive]] = frontier[alive], t
    # No two cells of a component are more than twice its eccentricity from the anchor apart.
    keep = 2 * eccentricity >= min_length
    open_cells, open_bits, farthest = open_cells[keep], open_bits[keep], farthest[keep]

    start = _random_cell(rng, _unpack(farthest, size))
    far_enough = np.zeros_like(open_bits)
    longest = 0
    for t, (rows, frontier) in enumerate(_bfs_layers(open_bits, _pack(start))):
        longest = t
        if t >= min_length:
            far_enough[rows] |= frontier
    found = far_enough.any(axis=1)
    goal = _random_cell(rng, _unpack(far_enough[found], size))
    return open_cells[found], start[found], goal, longest


def _random_shortest_path(rng: np.random.Generator, from_start: np.ndarray, goal: np.ndarray) -> np.ndarray:
    """Walk back from G to S through cells one move closer to S, choosing at random among them."""
    k, size, _ = from_start.shape
    dist = from_start.reshape(k, size * size)
    rows = np.arange(k)
    cell = goal.reshape(k, size * size).argmax(axis=1)
    steps = dist[rows, cell]
    path = np.zeros_like(dist, dtype=bool)
    path[rows, cell] = True
    offsets = np.array([-size, size, -1, 1])
    while (steps > 0).any():
        neighbours = cell[:, None] + offsets
        r, c = np.divmod(cell, size)
        inside = np.stack([r > 0, r < size - 1, c > 0, c < size - 1], axis=1)
        closer = inside & (np.take_along_axis(dist, np.where(inside, neighbours, 0), axis=1) == steps[:, None] - 1)
        choice = (rng.random(closer.shape) * closer).argmax(axis=1)
        moving = steps > 0
        cell = np.where(moving, neighbours[rows, choice], cell)
        steps = steps - moving
        path[rows, cell] = True
    return path.reshape(from_start.shape)


def _make_unique(
    rng: np.random.Generator, open_cells: np.ndarray, start: np.ndarray, goal: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Pick one shortest S->G path and wall the cells that start any other; return (open, path).

    Another shortest path must leave the chosen one somewhere, and its first cell off it is
    a neighbour of the chosen path lying on some shortest path. Walling exactly those cells
    removes every alternative, and since only cells off the chosen path become walls, its
    length is still the shortest.
    """
    from_start = shortest_distances(open_cells, start)
    from_goal = shortest_distances(open_cells, goal)
    length = (from_start * goal).sum(axis=(1, 2))[:, None, None]
    on_a_shortest_path = (from_start >= 0) & (from_goal >= 0) & (from_start + from_goal == length)
    path = _random_shortest_path(rng, from_start, goal)
    beside_path = _unpack(_grow(_pack(path)), path.shape[-1]) & ~path
    return open_cells & ~(on_a_shortest_path & beside_path), path


def _to_tokens(open_cells: np.ndarray, start: np.ndarray, goal: np.ndarray, path: np.ndarray):
    maze = np.where(open_cells, OPEN, WALL).astype(np.uint8)
    maze[start], maze[goal] = START, GOAL
    label = maze.copy()
    label[path & ~start & ~goal] = PATH
    return maze, label


def generate_mazes(
    count: int,
    size: int = MAZE_HARD_SIZE,
    min_path_length: int | None = None,
    seed: int = 0,
    wall_density: tuple[float, float] = (0.3, 0.5),
    progress: Callable[[int], object] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """`count` distinct mazes whose shortest S->G path is unique and at least `min_path_length` long.

    Walls are placed independently, with a density drawn per maze from `wall_density`
    (random walls, like the Maze-Hard mazes); mazes without a long enough path are
    rejected and the rest get a unique shortest path (see `_make_unique`). The mazes come
    as one deterministic stream per seed, so the first n of a larger request are the same n.
    `progress(n)` is called as mazes are accepted. Returns (mazes, labels), (count, N, N) tokens.
    """
    if not 2 <= size <= MAX_SIZE:
        raise DataError(f"maze size must be 2..{MAX_SIZE}, got {size}")
    min_length = default_min_path_length(size) if min_path_length is None else min_path_length
    if min_length < 1:
        raise DataError(f"the minimum path length must be at least 1, got {min_length}")
    rng = np.random.default_rng(seed)
    mazes, labels, seen = [], [], set()
    fruitless, longest = 0, 0
    while len(mazes) < count:
        open_cells, start, goal, round_longest = _screen(rng, size, min_length, wall_density)
        longest = max(longest, round_longest)
        fruitless = 0 if len(goal) else fruitless + 1
        if fruitless == _FRUITLESS_ROUNDS:
            raise DataError(
                f"no {size}x{size} maze with a shortest path of {min_length} moves or more in "
                f"{fruitless * CANDIDATES_PER_ROUND} random mazes (the longest had {longest}); "
                "lower --min-path-length"
            )
        if not len(goal):
            continue
        open_cells, path = _make_unique(rng, open_cells, start, goal)
        accepted = 0
        for maze, label in zip(*_to_tokens(open_cells, start, goal, path)):
            key = maze.tobytes()
            if key not in seen and len(mazes) < count:
                seen.add(key)
                mazes.append(maze)
                labels.append(label)
                accepted += 1
        if progress is not None:
            progress(accepted)
    empty = np.zeros((0, size, size), dtype=np.uint8)
    return (np.stack(mazes), np.stack(labels)) if count else (empty, empty.copy())


# ---------------------------------------------------------------------------------------
# Reading the CSV files of the Hugging Face dataset


def read_maze_csv(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read a Maze-Hard CSV (header, then rows `source,question,answer,rating`) -> (mazes, labels).

    Every row is checked, and an error names the file, the line and what is wrong: the
    number of columns, a grid that is not N x N or not the size of the first row, a
    character outside `# SGo`, S or G missing or repeated, or an answer that is not a
    shortest path of its question.
    """
    path = Path(path)
    header = ",".join(CSV_COLUMNS)
    mazes, labels, lines = [], [], []
    size = None
    try:
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            first = next(reader, None)
            if first is None:
                raise DataError(f"{path}: empty file; expected the header '{header}' and one maze per row")
            if first != list(CSV_COLUMNS):  # without it the first maze would be taken for a header
                raise DataError(f"{path}, line 1: expected the header '{header}', got {','.join(first)[:80]!r}")
            for row in reader:
                where = f"{path}, line {reader.line_num}"
                if not row:  # a blank line, such as one at the end of the file
                    continue
                if len(row) != len(CSV_COLUMNS):
                    raise DataError(f"{where}: expected {len(CSV_COLUMNS)} columns ({header}), got {len(row)}")
                grids = []
                for column, text in zip(("question", "answer"), row[1:3]):
                    if size is None:
                        size = math.isqrt(len(text))
                        if size * size != len(text) or not 2 <= size <= MAX_SIZE:
                            raise DataError(
                                f"{where}: the {column} has {len(text)} characters, not an N x N grid "
                                f"with N in 2..{MAX_SIZE}"
                            )
                    if len(text) != size * size:
                        raise DataError(
                            f"{where}: the {column} has {len(text)} characters, expected {size * size} "
                            f"({size}x{size}, the size of the first maze)"
                        )
                    grid = encode(text)
                    if not grid.all():
                        r, c = np.argwhere(grid == 0)[0]
                        raise DataError(
                            f"{where}: the {column} has {text[r * size + c]!r} at row {r}, column {c}; "
                            f"mazes use only the characters {CHARSET!r}"
                        )
                    grids.append(grid)
                _check_question(where, grids[0])
                mazes.append(grids[0])
                labels.append(grids[1])
                lines.append(reader.line_num)
    except FileNotFoundError:
        raise DataError(f"{path}: not found") from None
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DataError(f"{path}: cannot be read as CSV ({e})") from None
    if not mazes:
        raise DataError(f"{path}: no mazes after the header")
    mazes_array, labels_array = np.stack(mazes), np.stack(labels)
    for line, reason in zip(lines, path_errors(mazes_array, labels_array)):
        if reason is not None:
            raise DataError(f"{path}, line {line}: the answer is not a shortest path from S to G: {reason}")
    return mazes_array, labels_array


def _check_question(where: str, grid: np.ndarray) -> None:
    for token, name in ((START, "start 'S'"), (GOAL, "goal 'G'")):
        found = int((grid == token).sum())
        if found != 1:
            raise DataError(f"{where}: the question has {found} {name} cells, expected exactly one")
    if (grid == PATH).any():
        r, c = np.argwhere(grid == PATH)[0]
        raise DataError(f"{where}: the question marks a path cell 'o' at row {r}, column {c}")


def hf_csv_files(repo: str = HF_REPO) -> dict[str, Path]:
    """Download (or find in the local cache) `train.csv` and `test.csv` of the Hugging Face dataset."""
    try:
        from huggingface_hub import hf_hub_download
    except ImportError:
        raise DataError(
            "--source hf needs the huggingface_hub package: pip install 'trm[hf]'; "
            "or download train.csv and test.csv yourself and use --source csv --input DIR"
        ) from None
    try:
        return {split: Path(hf_hub_download(repo, f"{split}.csv", repo_type="dataset")) for split in ("train", "test")}
    except Exception as e:  # the hub client raises many types (network, auth, missing repo)
        raise DataError(
            f"cannot fetch {repo} from the Hugging Face hub ({type(e).__name__}: {e}); download "
            "train.csv and test.csv where the hub is reachable and use --source csv --input DIR"
        ) from None


# ---------------------------------------------------------------------------------------
# Building the dataset


def build_split(mazes: np.ndarray, labels: np.ndarray, augment: bool = False) -> tuple[Split, list[int]]:
    """One split in the reference format, and the dihedral transform id of each of its puzzles.

    With `augment` each maze becomes a group of 8 puzzles, one per symmetry of the square
    (the reference's switch, off by default: it made TRM collapse in one reproduction,
    trm-spec section 10). The maze itself is transform 0; `DIHEDRAL_INVERSE` undoes each.
    """
    size = mazes.shape[-1]
    transforms = list(range(8)) if augment else [0]
    builder = SetBuilder(seq_len=size * size)
    for maze, label in zip(mazes, labels):
        for tid in transforms:
            builder.add_puzzle(dihedral(maze, tid)[None], dihedral(label, tid)[None], identifier=0)
        builder.end_group()
    arrays = builder.build()
    metadata = make_metadata({"all": arrays}, vocab_size=VOCAB_SIZE, seq_len=size * size, num_puzzle_identifiers=1)
    return Split(metadata=metadata, sets={"all": arrays}), transforms * len(mazes)


def _subsample(rng: np.random.Generator, data: tuple[np.ndarray, np.ndarray], count: int | None, what: str):
    """A random subset of `count` mazes in their original order (all of them when count is None)."""
    available = len(data[0])
    if count is None or count == available:
        return data
    if count > available:
        raise DataError(f"{what} has {available} mazes, fewer than the {count} asked for")
    keep = np.sort(rng.choice(available, size=count, replace=False))
    return data[0][keep], data[1][keep]


def _csv_source(args: argparse.Namespace, rng: np.random.Generator) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    path = Path(args.input)
    if path.is_dir():
        missing = [f"{s}.csv" for s in ("train", "test") if not (path / f"{s}.csv").is_file()]
        if missing:
            raise DataError(f"{path}: expected train.csv and test.csv (as in {HF_REPO}); missing {', '.join(missing)}")
        data = {s: read_maze_csv(path / f"{s}.csv") for s in ("train", "test")}
    else:
        mazes, labels = read_maze_csv(path)
        test_count = len(mazes) // 2 if args.test_count is None else args.test_count
        if not 0 < test_count < len(mazes):
            raise DataError(f"{path}: cannot split {len(mazes)} mazes into train and {test_count} test mazes")
        order = rng.permutation(len(mazes))
        test, train = np.sort(order[:test_count]), np.sort(order[test_count:])
        data = {"train": (mazes[train], labels[train]), "test": (mazes[test], labels[test])}
    return {
        "train": _subsample(rng, data["train"], args.train_count, f"{path} (train)"),
        "test": _subsample(rng, data["test"], args.test_count, f"{path} (test)"),
    }


def _hf_source(args: argparse.Namespace, rng: np.random.Generator) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    files = hf_csv_files(args.input or HF_REPO)
    counts = {"train": args.train_count, "test": args.test_count}
    return {s: _subsample(rng, read_maze_csv(files[s]), counts[s], str(files[s])) for s in files}


def _generated_source(args: argparse.Namespace) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    from tqdm import tqdm

    train_count = 1000 if args.train_count is None else args.train_count
    test_count = 1000 if args.test_count is None else args.test_count
    with tqdm(total=train_count + test_count, desc="generating mazes", unit="maze") as bar:
        mazes, labels = generate_mazes(
            train_count + test_count, args.size, args.min_path_length, args.seed, progress=bar.update
        )
    # One stream of distinct mazes: train is its beginning, so test never repeats a train maze.
    return {
        "train": (mazes[:train_count], labels[:train_count]),
        "test": (mazes[train_count:], labels[train_count:]),
    }


def run(args: argparse.Namespace) -> None:
    """`trm data maze`: read or generate the mazes, write the dataset, print a summary."""
    began = time.perf_counter()
    if args.source == "generate":
        if args.input is not None:
            raise DataError("--input applies to --source csv (a file or directory) and hf (a dataset repository)")
        args.size = MAZE_HARD_SIZE if args.size is None else args.size
        if args.min_path_length is None:
            args.min_path_length = default_min_path_length(args.size)
    else:
        for option, value in (("--size", args.size), ("--min-path-length", args.min_path_length)):
            if value is not None:
                raise DataError(f"{option} applies to --source generate only (CSV mazes have their own size)")
        if args.source == "csv" and args.input is None:
            raise DataError("--source csv needs --input: a CSV file or a directory with train.csv and test.csv")
    check_output(args.output, args.overwrite)  # a bad output path fails now, not after the build
    if args.source == "generate":
        data = _generated_source(args)
    elif args.source == "csv":
        data = _csv_source(args, np.random.default_rng(args.seed))
    else:
        data = _hf_source(args, np.random.default_rng(args.seed))

    splits, transforms = {}, {}
    for name, (mazes, labels) in data.items():
        splits[name], transforms[name] = build_split(mazes, labels, augment=args.augment and name == "train")
    record = {
        "source": args.source,
        "input": args.input,
        "seed": args.seed,
        "min_path_length": args.min_path_length,
        "augment": args.augment,
        "dihedral_inverse": list(DIHEDRAL_INVERSE),
        "transforms": transforms,
    }
    root = write_dataset(args.output, splits, ["<blank>"], extra_json={"maze.json": record}, overwrite=args.overwrite)
    _print_summary(root, args, data, splits, time.perf_counter() - began)


def _print_summary(
    root: Path,
    args: argparse.Namespace,
    data: dict[str, tuple[np.ndarray, np.ndarray]],
    splits: dict[str, Split],
    seconds: float,
) -> None:
    size = next(iter(data.values()))[0].shape[-1]
    origin = {
        "generate": f"generated, seed {args.seed}, shortest paths >= {args.min_path_length} moves, unique",
        "csv": f"CSV {args.input}",
        "hf": f"Hugging Face {args.input or HF_REPO}",
    }[args.source]
    print(f"maze dataset written to {root} ({size}x{size}, {origin})")
    for name, split in splits.items():
        meta, lengths = split.metadata, path_lengths(data[name][1])
        print(
            f"  {name:<5}  {meta.total_groups} mazes, {meta.total_puzzles} puzzles "
            f"(augmentation {'8x dihedral' if meta.total_puzzles > meta.total_groups else 'off'}), "
            f"path length {lengths.min()}..{lengths.max()} (mean {lengths.mean():.1f})"
        )
    print(f"  seq_len {size * size}, vocab {VOCAB_SIZE} (PAD + {CHARSET!r}), 1 puzzle identifier, {seconds:.1f}s")


EXAMPLES = """examples:
  trm data maze --source hf --output data/maze-30x30-hard-1k
  trm data maze --source csv --input ~/maze-30x30-hard-1k/ --output data/maze-30x30-hard-1k
  trm data maze --source generate --size 30 --min-path-length 110 --output data/maze-30x30-gen
  trm data maze --source generate --size 9 --train-count 1000 --test-count 200 --output data/maze-9x9
"""


def add_command(tasks: argparse._SubParsersAction) -> None:
    """Add `trm data maze` to the `trm data` sub-commands."""
    parser = tasks.add_parser(
        "maze",
        help="Maze-Hard 30x30 (its Hugging Face CSV, a local copy, or generated with unique shortest paths)",
        description="Build a maze dataset in the reference on-disk format: vocab 6 (PAD + '# SGo'),\n"
        "sequence length N*N, one puzzle identifier; the label marks the shortest S->G path with 'o'.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--source",
        choices=("hf", "csv", "generate"),
        required=True,
        help=f"where the mazes come from (required, as for trm data sudoku): hf = {HF_REPO} from the "
        "Hugging Face hub (the paper's data; needs pip install 'trm[hf]' and network), csv = local files "
        "in its format, generate = our generator (unique shortest paths). Example: --source generate",
    )
    parser.add_argument(
        "--input",
        help="csv: a directory with train.csv and test.csv, or one CSV file split at random into "
        "train and test (half each, or --test-count test mazes); hf: the dataset repository "
        f"(default {HF_REPO}). Example: --input ~/maze-30x30-hard-1k/",
    )
    parser.add_argument(
        "-o",
        "--output",
        required=True,
        help="dataset directory to write. Example: --output data/maze-30x30-hard-1k",
    )
    parser.add_argument(
        "--size",
        type=int,
        help=f"generate: mazes are SIZE x SIZE (default {MAZE_HARD_SIZE}). Example: --size 11",
    )
    parser.add_argument(
        "--min-path-length",
        type=int,
        help="generate: the least length, in moves, of the shortest S->G path (default "
        f"{MAZE_HARD_MIN_PATH} at 30x30, which reproduces Maze-Hard, scaled as size**1.13 for other sizes: "
        "28 at 9x9, 35 at 11x11, 50 at 15x15). Example: --min-path-length 110",
    )
    parser.add_argument(
        "--train-count",
        type=_positive,
        help="training mazes (default: all for csv/hf, 1000 for generate; csv/hf take a random subset). "
        "Example: --train-count 1000",
    )
    parser.add_argument(
        "--test-count",
        type=_positive,
        help="test mazes (default: all for csv/hf, 1000 for generate). Example: --test-count 200",
    )
    parser.add_argument(
        "--augment",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="add the 8 dihedral symmetries of every training maze as variants of its group (default: "
        "off, as in the reference; it made TRM collapse in one reproduction). Example: --augment",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="random seed of the generator and of subsets and splits (default 0). Example: --seed 1",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace OUTPUT if it exists. Example: --overwrite")
    parser.set_defaults(run=run)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value
