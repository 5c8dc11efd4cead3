"""Our maze generator: random walls, long shortest paths, and exactly one of them.

Mazes like Maze-Hard's (random walls near the percolation threshold) whose shortest S->G
path is at least a given length, made unique so that the label is the only right answer.
Screening thousands of candidates at a time uses the task's bitboard search.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from trm.errors import DataError
from trm.tasks.maze import GOAL, MAX_SIZE, OPEN, PATH, START, WALL, bfs_layers, grow, pack, shortest_distances, unpack

MAZE_HARD_SIZE, MAZE_HARD_MIN_PATH = 30, 110


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
    open_bits = pack(open_cells)

    farthest = np.zeros_like(open_bits)
    eccentricity = np.zeros(k, dtype=np.int64)
    for t, (rows, frontier) in enumerate(bfs_layers(open_bits, pack(_random_cell(rng, open_cells)))):
        alive = frontier.any(axis=1)
        farthest[rows[alive]], eccentricity[rows[alive]] = frontier[alive], t
    # No two cells of a component are more than twice its eccentricity from the anchor apart.
    keep = 2 * eccentricity >= min_length
    open_cells, open_bits, farthest = open_cells[keep], open_bits[keep], farthest[keep]

    start = _random_cell(rng, unpack(farthest, size))
    far_enough = np.zeros_like(open_bits)
    longest = 0
    for t, (rows, frontier) in enumerate(bfs_layers(open_bits, pack(start))):
        longest = t
        if t >= min_length:
            far_enough[rows] |= frontier
    found = far_enough.any(axis=1)
    goal = _random_cell(rng, unpack(far_enough[found], size))
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
    beside_path = unpack(grow(pack(path)), path.shape[-1]) & ~path
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
