"""Drawing puzzles and the model's answers: coloured terminal text, PNG and animated GIF.

Kept apart from `trm.solve.solve`, which computes; nothing here runs a model. Grids are the
decoded ones a `Solution` holds: Sudoku digits (0 = blank), maze tokens, ARC colours (drawn
with the palette of the public ARC viewers).
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from trm.data import maze
from trm.errors import ConfigError
from trm.eval.metrics import TASK_NAMES
from trm.solve.solve import Solution

RGB = tuple[int, int, int]

# The public ARC viewers' palette: black, blue, red, green, yellow, grey, magenta, orange, azure, maroon.
ARC_COLOURS: list[RGB] = [
    (0, 0, 0),
    (0, 116, 217),
    (255, 65, 54),
    (46, 204, 64),
    (255, 220, 0),
    (170, 170, 170),
    (240, 18, 190),
    (255, 133, 27),
    (127, 219, 255),
    (135, 12, 37),
]
MAZE_COLOURS: dict[int, RGB] = {
    0: (255, 0, 255),  # PAD: never a valid prediction, drawn loud
    maze.WALL: (45, 45, 45),
    maze.OPEN: (245, 245, 245),
    maze.START: (46, 204, 64),
    maze.GOAL: (255, 65, 54),
    maze.PATH: (255, 200, 0),
}
IMAGE_SUFFIXES = (".png", ".gif")

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_RESET = "\x1b[0m"


def _fg(rgb: RGB, bold: bool = False) -> str:
    return f"\x1b[{'1;' if bold else ''}38;2;{rgb[0]};{rgb[1]};{rgb[2]}m"


def _bg(rgb: RGB) -> str:
    return f"\x1b[48;2;{rgb[0]};{rgb[1]};{rgb[2]}m"


def visible_width(text: str) -> int:
    return len(_ANSI.sub("", text))


def use_colour(stream) -> bool:
    """Colour when writing to a terminal, unless NO_COLOR is set (https://no-color.org)."""
    return hasattr(stream, "isatty") and stream.isatty() and "NO_COLOR" not in os.environ


# --- Terminal -------------------------------------------------------------------------------

GIVEN, FILLED, CHANGED, WRONG = (230, 230, 230), (90, 180, 255), (255, 210, 0), (255, 80, 80)


def _sudoku_conflicts(grid: np.ndarray) -> np.ndarray:
    """Cells whose digit appears again in their row, column or box."""
    conflict = np.zeros((9, 9), dtype=bool)
    for r, c in zip(*np.nonzero(grid)):
        d, br, bc = grid[r, c], 3 * (r // 3), 3 * (c // 3)
        units = (grid[r], grid[:, c], grid[br : br + 3, bc : bc + 3])
        conflict[r, c] = any(np.count_nonzero(u == d) > 1 for u in units)
    return conflict


def sudoku_lines(
    grid: np.ndarray, givens: np.ndarray, previous: np.ndarray | None = None, colour: bool = True
) -> list[str]:
    """A 9x9 grid as 11 lines of 21 characters: givens bright, the model's digits blue, digits
    changed since `previous` yellow, digits repeated in a row, column or box red."""
    conflicts = _sudoku_conflicts(grid)
    lines = []
    for r in range(9):
        if r in (3, 6):
            lines.append("------+-------+------")
        cells = []
        for c in range(9):
            text = "." if grid[r, c] == 0 else str(grid[r, c])
            if colour and grid[r, c]:
                style = (
                    _fg(WRONG, bold=True)
                    if conflicts[r, c] or (givens[r, c] and givens[r, c] != grid[r, c])
                    else _fg(GIVEN, bold=True)
                    if givens[r, c]
                    else _fg(CHANGED, bold=True)
                    if previous is not None and previous[r, c] != grid[r, c]
                    else _fg(FILLED)
                )
                text = style + text + _RESET
            cells.append(text)
        lines.append(" | ".join(" ".join(cells[k : k + 3]) for k in (0, 3, 6)))
    return lines


def maze_lines(grid: np.ndarray, previous: np.ndarray | None = None, colour: bool = True) -> list[str]:
    """A maze as N lines of N characters ('#', ' ', 'S', 'G', 'o'); in colour walls are blocks and
    path cells new since `previous` are bright."""
    text = maze.decode(grid)
    size = grid.shape[0]
    lines = []
    for r in range(size):
        row = []
        for c in range(size):
            token, char = int(grid[r, c]), text[r * size + c]
            if colour:
                new = previous is not None and previous[r, c] != token
                char = {maze.WALL: "█", maze.OPEN: " "}.get(token, char)
                char = _fg(MAZE_COLOURS.get(token, MAZE_COLOURS[0]), bold=new) + char + _RESET
            row.append(char)
        lines.append("".join(row))
    return lines


def arc_lines(grid: np.ndarray, colour: bool = True) -> list[str]:
    """An ARC grid: two coloured blocks per cell in colour, its digits otherwise."""
    if grid.size == 0:
        return ["(empty)"]
    if not colour:
        return ["".join(str(v) for v in row) for row in grid]
    return ["".join(_bg(ARC_COLOURS[v]) + "  " for v in row) + _RESET for row in grid]


def grid_lines(
    solution: Solution, grid: np.ndarray, previous: np.ndarray | None = None, colour: bool = True
) -> list[str]:
    task = solution.puzzle.task
    if task == "sudoku":
        return sudoku_lines(grid, solution.puzzle.grid, previous, colour)
    if task == "maze":
        return maze_lines(grid, previous, colour)
    return arc_lines(grid, colour)


def side_by_side(blocks: list[tuple[str, list[str]]], gap: int = 3, width: int | None = None) -> str:
    """Titled blocks of lines next to each other, wrapping to `width` columns (the terminal's)."""
    width = width or shutil.get_terminal_size((120, 24)).columns
    sizes = [max([visible_width(t)] + [visible_width(line) for line in lines]) + gap for t, lines in blocks]
    rows, current, used = [], [], 0
    for block, size in zip(blocks, sizes):
        if current and used + size > width:
            rows.append(current)
            current, used = [], 0
        current.append((block, size))
        used += size
    rows.append(current)
    out = []
    for row in rows:
        height = max(len(lines) for (_, lines), _ in row)
        for i in range(-1, height):
            parts = []
            for (title, lines), size in row:
                text = title if i < 0 else (lines[i] if i < len(lines) else "")
                parts.append(text + " " * (size - visible_width(text)))
            out.append("".join(parts).rstrip())
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def verdict(solution: Solution) -> str | None:
    """Whether a Sudoku or maze answer is a solution, in words; None where there are no rules to check.

    An answer that breaks a rule is labelled NOT a solution with the rule it breaks, and with why
    it was kept: the step cap came first, or the halting rule asked for did not check the rules."""
    if solution.valid is None:
        return None
    if solution.valid:
        return "valid solution: yes"
    if solution.halt == "adaptive" and solution.steps < solution.max_steps:
        why = f"the halting head stopped it at step {solution.steps}; --halt valid would have gone on"
    elif solution.halt == "valid":
        why = f"the last answer: the {solution.max_steps}-step cap came before a valid one"
    else:
        why = f"the last answer, at the {solution.max_steps}-step cap" if solution.max_steps else "the last answer"
    return f"NOT a solution: {solution.problem} ({why})"


def _answer_title(solution: Solution) -> str:
    return "answer" if solution.valid is not False else "NOT a solution"


def format_solution(solution: Solution, colour: bool = True) -> str:
    """The puzzle beside the answer, then steps used, confidence and validity."""
    puzzle = solution.puzzle
    blocks = [
        ("puzzle", grid_lines(solution, puzzle.grid, colour=colour)),
        (_answer_title(solution), grid_lines(solution, solution.answer, colour=colour)),
    ]
    if puzzle.task == "arc" and len(solution.attempts) > 1:
        blocks.append(("attempt 2", grid_lines(solution, solution.attempts[1], colour=colour)))
    if puzzle.label is not None:
        blocks.append(("expected", grid_lines(solution, puzzle.label, colour=colour)))
    lines = [f"{TASK_NAMES[puzzle.task]}: {puzzle.name}", side_by_side(blocks)]
    steps = f"steps used: {solution.steps}" + (f" of at most {solution.max_steps}" if solution.max_steps else "")
    if solution.variants > 1:
        steps += f" (untransformed variant; mean {solution.mean_steps:.1f} over {solution.variants} variants)"
    lines.append(f"{steps}   halting confidence: {solution.confidence:.3f}")
    if solution.variants > 1:
        lines.append(f"votes for the answer: {solution.votes} of {solution.variants}")
    if solution.valid is not None:
        lines.append(verdict(solution))
    if solution.correct is not None:
        hits = [bool(np.array_equal(a, puzzle.label)) for a in solution.attempts]
        lines.append(
            "matches the test output: "
            + ", ".join(f"attempt {i + 1} {'yes' if h else 'no'}" for i, h in enumerate(hits))
        )
    if puzzle.task == "sudoku":
        label = "answer" if solution.valid is not False else "last answer (NOT a solution)"
        lines.append(f"{label}: " + "".join(str(d) for d in solution.answer.ravel()))
    lines += [f"note: {n}" for n in solution.notes]
    return "\n".join(lines)


def format_steps(
    solution: Solution, colour: bool = True, width: int | None = None, with_puzzle: bool = False
) -> str:
    """Every refinement step's answer, with its halting confidence (after the puzzle if asked)."""
    blocks, previous = [], None
    if with_puzzle:
        blocks.append(("puzzle", grid_lines(solution, solution.puzzle.grid, colour=colour)))
    for k, step in enumerate(solution.trajectory, start=1):
        blocks.append((f"step {k} ({step.confidence:.2f})", grid_lines(solution, step.answer, previous, colour)))
        previous = step.answer if step.answer.shape == solution.answer.shape else None
    return side_by_side(blocks, width=width)


# --- Pictures -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Style:
    cell: int
    caption: int = 22
    margin: int = 6


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has only the fixed bitmap font
        return ImageFont.load_default()


def _cell_size(task: str, shape: tuple[int, ...]) -> int:
    if task == "sudoku":
        return 32
    return max(6, min(24, 300 // max(max(shape), 1)))


def _draw_grid(
    draw, solution: Solution, grid: np.ndarray, previous: np.ndarray | None, top: int, left: int, cell: int
) -> None:
    """Draw one grid with its top-left corner at (left, top)."""
    task = solution.puzzle.task
    rows, cols = grid.shape if grid.size else (0, 0)
    for r in range(rows):
        for c in range(cols):
            box = (left + c * cell, top + r * cell, left + (c + 1) * cell - 1, top + (r + 1) * cell - 1)
            value = int(grid[r, c])
            if task == "arc":
                draw.rectangle(box, fill=ARC_COLOURS[value], outline=(85, 85, 85))
            elif task == "maze":
                draw.rectangle(box, fill=MAZE_COLOURS.get(value, MAZE_COLOURS[0]))
            else:
                changed = previous is not None and previous[r, c] != value
                draw.rectangle(box, fill=(255, 236, 160) if changed else (255, 255, 255), outline=(200, 200, 200))
    if task == "sudoku":
        _draw_sudoku_digits(draw, solution, grid, top, left, cell)


def _draw_sudoku_digits(draw, solution: Solution, grid: np.ndarray, top: int, left: int, cell: int) -> None:
    givens, conflicts, font = solution.puzzle.grid, _sudoku_conflicts(grid), _font(int(cell * 0.6))
    for r in range(9):
        for c in range(9):
            if grid[r, c]:
                wrong = conflicts[r, c] or (givens[r, c] and givens[r, c] != grid[r, c])
                colour = (210, 30, 30) if wrong else (0, 0, 0) if givens[r, c] else (20, 90, 200)
                centre = (left + c * cell + cell // 2, top + r * cell + cell // 2)
                draw.text(centre, str(grid[r, c]), fill=colour, font=font, anchor="mm")
    for k in (0, 3, 6, 9):  # box lines
        draw.line((left, top + k * cell, left + 9 * cell, top + k * cell), fill=(0, 0, 0), width=2)
        draw.line((left + k * cell, top, left + k * cell, top + 9 * cell), fill=(0, 0, 0), width=2)


def frames(solution: Solution):
    """One picture per step (the puzzle first), all of one size, each with a caption."""
    from PIL import Image, ImageDraw

    grids = [("puzzle", solution.puzzle.grid, None)]
    previous = None
    for k, step in enumerate(solution.trajectory, start=1):
        grids.append((f"step {k}  halt {step.confidence:.2f}", step.answer, previous))
        previous = step.answer if step.answer.shape == solution.answer.shape else None
    shapes = [g.shape for _, g, _ in grids if g.size]
    rows, cols = max(s[0] for s in shapes), max(s[1] for s in shapes)
    style = _Style(cell=_cell_size(solution.puzzle.task, (rows, cols)))
    width = max(cols * style.cell, 150) + 2 * style.margin
    height = rows * style.cell + style.caption + 2 * style.margin
    font = _font(14)
    out = []
    for caption, grid, before in grids:
        image = Image.new("RGB", (width, height), (255, 255, 255))
        draw = ImageDraw.Draw(image)
        draw.text((style.margin, style.margin), caption, fill=(0, 0, 0), font=font)
        _draw_grid(draw, solution, grid, before, style.margin + style.caption, style.margin, style.cell)
        out.append(image)
    return out


def save_picture(solution: Solution, path: str | os.PathLike, columns: int = 6) -> Path:
    """Write the steps as a PNG contact sheet or an animated GIF, by the file's suffix."""
    from PIL import Image

    path = Path(path)
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise ConfigError(f"{path}: pictures are written as .png (all steps side by side) or .gif (animated)")
    pictures = frames(solution)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".gif":
        durations = [1200] + [500] * (len(pictures) - 2) + [2500]
        pictures[0].save(path, save_all=True, append_images=pictures[1:], duration=durations, loop=0)
        return path
    w, h = pictures[0].size
    columns = min(columns, len(pictures))
    sheet = Image.new("RGB", (w * columns, h * -(-len(pictures) // columns)), (255, 255, 255))
    for k, picture in enumerate(pictures):
        sheet.paste(picture, ((k % columns) * w, (k // columns) * h))
    sheet.save(path)
    return path
