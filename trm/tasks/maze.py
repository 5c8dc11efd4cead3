"""Mazes: find the shortest path through an NxN maze (trm-spec sections 1 and 7).

A maze is a square grid of the characters `# SGo` (wall, open, start, goal, path), stored as
tokens 1..5 with 0 = PAD, sequence length N*N. The question shows the walls, S and G; the
answer is the same grid with the cells between S and G on a shortest path marked `o`.
Lengths count moves: a path of length d has d - 1 `o` cells between S and G.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

from trm.errors import DataError
from trm.tasks.common import RESET, RGB, Cells, Puzzle, fg
from trm.tasks.grids import Dihedral

CHARSET = "# SGo"  # token i + 1 is CHARSET[i], as in the reference builder
WALL, OPEN, START, GOAL, PATH = range(1, 6)
VOCAB_SIZE = len(CHARSET) + 1
MAX_SIZE = 64  # the breadth-first search keeps one grid row in one 64-bit word
# What a user may type: '.' as well as ' ' for an open cell; 'o' only appears in answers.
TYPED = {"#": WALL, " ": OPEN, ".": OPEN, "S": START, "G": GOAL}

_TOKENS = np.zeros(256, dtype=np.uint8)
_TOKENS[[ord(c) for c in CHARSET]] = np.arange(1, len(CHARSET) + 1)


def text_to_tokens(text: str) -> np.ndarray:
    """A maze written as N*N characters (a CSV cell) -> (N, N) tokens; unknown characters become 0."""
    size = math.isqrt(len(text))
    if size * size != len(text):
        raise ValueError(f"a maze has N*N characters, got {len(text)}")
    codes = np.frombuffer(text.encode("ascii", errors="replace"), dtype=np.uint8)
    return _TOKENS[codes].reshape(size, size)


def tokens_to_text(grid: np.ndarray) -> str:
    """(N, N) tokens -> N*N characters, the inverse of `text_to_tokens` (PAD and unknown tokens: '?')."""
    chars = np.array(list("?" + CHARSET + "?" * (256 - VOCAB_SIZE)))
    return "".join(chars[np.asarray(grid, dtype=np.uint8).ravel()])


# --- Breadth-first search on a batch of grids --------------------------------------------------
# A grid row is one 64-bit word (bit c = column c), so one BFS step for thousands of mazes is a
# handful of shifts and ORs on a (K, N) array: what makes checking answers and screening
# millions of random mazes fast without a compiler.


def pack(mask: np.ndarray) -> np.ndarray:
    """(K, N, N) bool -> (K, N) uint64 bitboards."""
    packed = np.packbits(mask, axis=-1, bitorder="little")
    words = np.zeros(mask.shape[:-1] + (8,), dtype=np.uint8)
    words[..., : packed.shape[-1]] = packed
    return words.view("<u8")[..., 0]


def unpack(bits: np.ndarray, size: int) -> np.ndarray:
    """(K, N) uint64 bitboards -> (K, N, N) bool."""
    as_bytes = np.ascontiguousarray(bits, dtype="<u8")[..., None].view(np.uint8)
    return np.unpackbits(as_bytes, axis=-1, count=size, bitorder="little").astype(bool)


def grow(bits: np.ndarray) -> np.ndarray:
    """Each cell and its four neighbours (bits may spill past column N-1; callers mask them)."""
    grown = bits | (bits << np.uint64(1)) | (bits >> np.uint64(1))
    grown[:, 1:] |= bits[:, :-1]
    grown[:, :-1] |= bits[:, 1:]
    return grown


def bfs_layers(open_bits: np.ndarray, start_bits: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
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
        frontier = grow(frontier) & open_bits & ~reached
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
    for t, (rows, frontier) in enumerate(bfs_layers(pack(batch), pack(start.reshape(batch.shape)))):
        everywhere[:] = 0
        everywhere[rows] = frontier
        dist[unpack(everywhere, size)] = t
    return dist.reshape(open_cells.shape)


# --- The rules ----------------------------------------------------------------------------------


def as_grids(tokens: np.ndarray) -> np.ndarray:
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
    mazes, predictions = as_grids(mazes), as_grids(predictions)
    if mazes.shape != predictions.shape:
        raise ValueError(f"mazes {mazes.shape} and predictions {predictions.shape} differ in shape")
    reasons: list[str | None] = [None] * len(mazes)
    start, goal = mazes == START, mazes == GOAL
    for k in range(len(mazes)):
        for name, found in (("start 'S'", start[k]), ("goal 'G'", goal[k])):
            if found.sum() != 1:
                reasons[k] = f"the maze has {found.sum()} {name} cells, expected one"
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

    def to_goal(open_cells: np.ndarray) -> np.ndarray:  # distance to G (-1: unreachable) where G is unique
        return (shortest_distances(open_cells, start) * goal).sum(axis=(1, 2))

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


def validity(inputs: np.ndarray, preds: np.ndarray) -> np.ndarray:
    """(B,) whether each prediction marks a shortest S->G path (any one of them)."""
    return np.array([problem is None for problem in path_errors(inputs, preds)], dtype=bool)


# --- Parsing ----------------------------------------------------------------------------------


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


def parse_rows(text: str, where: str) -> np.ndarray:
    """A maze drawn as N lines of N characters (or one line of N*N) -> (N, N) tokens."""
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
            if char not in TYPED:
                raise DataError(
                    f"{where}: line {r + 1}, column {c + 1} holds {char!r}; a maze uses '#' (wall), ' ' or '.' "
                    "(open), 'S' (start) and 'G' (goal)"
                )
    return np.array([[TYPED[ch] for ch in line] for line in lines], dtype=np.uint8)


def check_ends(grid: np.ndarray, where: str, what: str = "the maze") -> None:
    """Raise DataError unless `grid` has exactly one S and one G."""
    for token, name in ((START, "start 'S'"), (GOAL, "goal 'G'")):
        found = int((grid == token).sum())
        if found != 1:
            raise DataError(f"{where}: {what} has {found} {name} cells, expected exactly one")


# --- Drawing ----------------------------------------------------------------------------------

COLOURS: dict[int, RGB] = {
    0: (255, 0, 255),  # PAD: never a valid prediction, drawn loud
    WALL: (45, 45, 45),
    OPEN: (245, 245, 245),
    START: (46, 204, 64),
    GOAL: (255, 65, 54),
    PATH: (255, 200, 0),
}


def terminal_lines(grid: np.ndarray, previous: np.ndarray | None = None, colour: bool = True) -> list[str]:
    """A maze as N lines of N characters ('#', ' ', 'S', 'G', 'o'); in colour walls are blocks and
    path cells new since `previous` are bright."""
    text = tokens_to_text(grid)
    size = grid.shape[0]
    lines = []
    for r in range(size):
        row = []
        for c in range(size):
            token, char = int(grid[r, c]), text[r * size + c]
            if colour:
                new = previous is not None and previous[r, c] != token
                char = {WALL: "█", OPEN: " "}.get(token, char)
                char = fg(COLOURS.get(token, COLOURS[0]), bold=new) + char + RESET
            row.append(char)
        lines.append("".join(row))
    return lines


# --- The task -----------------------------------------------------------------------------------


class Maze:
    """NxN mazes (N <= 64): grids are (N, N) tokens."""

    name = "maze"
    title = "Maze"
    has_rules = True
    vocab_size = VOCAB_SIZE
    cell_pixels = None  # scaled to the grid

    def fits(self, vocab_size: int, seq_len: int) -> bool:
        return vocab_size == VOCAB_SIZE and math.isqrt(seq_len) ** 2 == seq_len

    def parse(self, text: str, where: str = "maze") -> Puzzle:
        """A maze drawn as N lines of N characters (or one line of N*N), with one S and one G."""
        grid = parse_rows(text, where)
        check_ends(grid, where)
        return Puzzle(self, grid, where)

    def encode(self, grid: np.ndarray) -> np.ndarray:
        return np.asarray(grid, dtype=np.uint8).reshape(-1)

    def decode(self, tokens: np.ndarray) -> np.ndarray:
        size = math.isqrt(np.asarray(tokens).size)
        return np.asarray(tokens).reshape(size, size).astype(np.uint8)

    def verify(self, puzzle: Puzzle, answer: np.ndarray) -> str | None:
        """Why `answer` is not a shortest S->G path through `puzzle`, or None if it is one."""
        return path_errors(puzzle.grid[None], np.asarray(answer)[None])[0]

    validity = staticmethod(validity)
    problems = staticmethod(path_errors)

    def one_line(self, grid: np.ndarray) -> str | None:
        return None

    def json_form(self, grid: np.ndarray) -> list[str]:
        """The grid for JSON output: its lines (`# SGo`; one per line they are a maze file `trm solve` reads)."""
        return terminal_lines(grid, None, colour=False)

    def draw_symmetry(self, rng: np.random.Generator) -> Dihedral:
        """One of the 8 symmetries of the square; each maps shortest paths to shortest paths."""
        return Dihedral(int(rng.integers(8)))

    def draw_symmetries(self, rng: np.random.Generator, count: int) -> list[Dihedral]:
        """The 7 maps other than the identity in random order, then all 8 again in a new order, and so on."""
        order = list(rng.permutation(np.arange(1, 8)))
        while len(order) < count:
            order += list(rng.permutation(8))
        return [Dihedral(int(t)) for t in order[:count]]

    def terminal_lines(
        self, puzzle: Puzzle, grid: np.ndarray, previous: np.ndarray | None = None, colour: bool = True
    ) -> list[str]:
        return terminal_lines(grid, previous, colour)

    def cells(self, puzzle: Puzzle, grid: np.ndarray, previous: np.ndarray | None = None) -> Cells:
        return Cells([[COLOURS.get(int(v), COLOURS[0]) for v in row] for row in grid])


MAZE = Maze()
