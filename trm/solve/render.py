"""Drawing puzzles and the model's answers: coloured terminal text, PNG and animated GIF.

Kept apart from `trm.solve.solve`, which computes; nothing here runs a model. `solutions_json`
is the object `trm solve --json` prints. Grids are the
decoded ones a `Solution` holds; the puzzle's task says how they look (its terminal lines and
its cells' colours and text, `trm.tasks`), and one renderer draws every task's pictures.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from trm.errors import ConfigError
from trm.solve.solution import Solution
from trm.tasks import Cells

IMAGE_SUFFIXES = (".png", ".gif")

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def visible_width(text: str) -> int:
    return len(_ANSI.sub("", text))


def use_colour(stream) -> bool:
    """Colour when writing to a terminal, unless NO_COLOR is set (https://no-color.org)."""
    return hasattr(stream, "isatty") and stream.isatty() and "NO_COLOR" not in os.environ


# --- Terminal -------------------------------------------------------------------------------


def grid_lines(
    solution: Solution, grid: np.ndarray, previous: np.ndarray | None = None, colour: bool = True
) -> list[str]:
    """A grid of the solution's puzzle as terminal lines, drawn by its task."""
    return solution.puzzle.task.terminal_lines(solution.puzzle, grid, previous, colour)


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
    if solution.plan is not None:
        ran = f"{solution.trajectories} trajectories of at most {solution.max_steps} steps"
        if solution.plan.select == "verify":
            why = f"none of {ran} found an answer that keeps the rules"
        else:
            why = f"--select {solution.plan.select} chose it among {ran}"
        return f"NOT a solution: {solution.problem} ({why})"
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
    if len(solution.attempts) > 1:
        blocks.append(("attempt 2", grid_lines(solution, solution.attempts[1], colour=colour)))
    for k, choice in enumerate(solution.answers[1:] if solution.plan else [], start=2):
        blocks.append((f"answer {k}", grid_lines(solution, choice.answer, colour=colour)))
    if puzzle.label is not None:
        blocks.append(("expected", grid_lines(solution, puzzle.label, colour=colour)))
    lines = [f"{puzzle.task.title}: {puzzle.name}", side_by_side(blocks)]
    steps = f"steps used: {solution.steps}" + (f" of at most {solution.max_steps}" if solution.max_steps else "")
    if solution.variants > 1:
        steps += f" (untransformed variant; mean {solution.mean_steps:.1f} over {solution.variants} variants)"
    lines.append(f"{steps}   halting confidence: {solution.confidence:.3f}")
    if solution.variants > 1:
        lines.append(f"votes for the answer: {solution.votes} of {solution.variants}")
    if solution.valid is not None:
        lines.append(verdict(solution))
    if solution.plan is not None:
        lines += _scaling_lines(solution)
    if solution.correct is not None:
        hits = [bool(np.array_equal(a, puzzle.label)) for a in solution.attempts]
        lines.append(
            "matches the test output: "
            + ", ".join(f"attempt {i + 1} {'yes' if h else 'no'}" for i, h in enumerate(hits))
        )
    one_line = puzzle.task.one_line(solution.answer)
    if one_line is not None:
        label = "answer" if solution.valid is not False else "last answer (NOT a solution)"
        lines.append(f"{label}: {one_line}")
    for k, choice in enumerate(solution.answers[1:] if solution.plan else [], start=2):
        one_line = puzzle.task.one_line(choice.answer)
        if one_line is not None:
            lines.append(f"answer {k}: {one_line}")
    lines += [f"note: {n}" for n in solution.notes]
    return "\n".join(lines)


def _scaling_lines(solution: Solution) -> list[str]:
    """Where a scaled answer came from, what it cost, and how many distinct answers were found."""
    plan = solution.plan
    view = "the puzzle as given" if solution.trajectory_index == 0 else "a symmetry of the puzzle"
    lines = [
        f"trajectories run: {solution.trajectories} of at most {plan.trajectories} (--select {plan.select}); "
        f"the answer is trajectory {solution.trajectory_index}'s ({view})",
        f"network calls: {solution.network_calls}   wall time: {solution.wall_time_s:.2f} s",
    ]
    valid = sum(bool(c.valid) for c in solution.answers)
    if plan.answers > 1:
        for k, choice in enumerate(solution.answers[1:], start=2):
            lines.append(
                f"answer {k}: trajectory {choice.trajectory}, steps {choice.steps}, "
                f"halting confidence {choice.confidence:.3f}"
            )
        if valid < plan.answers:
            lines.append(
                f"found {valid} distinct answer{'s that keep' if valid != 1 else ' that keeps'} the rules (of "
                f"{plan.answers} asked for) among {solution.trajectories} trajectories"
            )
    return lines


# --- JSON -----------------------------------------------------------------------------------


def _question_json(solution: Solution) -> dict:
    puzzle = solution.puzzle
    return {
        "puzzle": puzzle.task.json_form(puzzle.grid),
        "answers": [
            {
                "answer": puzzle.task.json_form(c.answer),
                "valid": c.valid,
                "steps": c.steps,
                "confidence": c.confidence,
                "trajectory": c.trajectory,
            }
            for c in solution.answers
        ],
        "trajectories": solution.trajectories,
        "network_calls": solution.network_calls,
        "wall_time_s": round(solution.wall_time_s, 4),
    }


def solutions_json(solutions: list[Solution]) -> dict:
    """One JSON object for `trm solve --json`: {"task", "puzzle", "answers": [{"answer", "valid",
    "steps", "confidence", "trajectory"}], "trajectories", "network_calls", "wall_time_s"}. An ARC
    task with several test inputs gives {"task", "questions": [the same less "task", one per test
    input], "network_calls", "wall_time_s"} with the totals."""
    task = solutions[0].puzzle.task.name
    if len(solutions) == 1:
        return {"task": task, **_question_json(solutions[0])}
    return {
        "task": task,
        "questions": [_question_json(s) for s in solutions],
        "network_calls": sum(s.network_calls for s in solutions),
        "wall_time_s": round(sum(s.wall_time_s for s in solutions), 4),
    }


def format_steps(solution: Solution, colour: bool = True, width: int | None = None, with_puzzle: bool = False) -> str:
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


def _draw_grid(draw, cells: Cells, top: int, left: int, size: int) -> None:
    """Draw one grid, as its task describes its cells, with its top-left corner at (left, top)."""
    for r, row in enumerate(cells.fill):
        for c, fill in enumerate(row):
            box = (left + c * size, top + r * size, left + (c + 1) * size - 1, top + (r + 1) * size - 1)
            draw.rectangle(box, fill=fill, outline=cells.outline)
    if cells.text is not None:
        font = _font(int(size * 0.6))
        for r, row in enumerate(cells.text):
            for c, text in enumerate(row):
                if text:
                    centre = (left + c * size + size // 2, top + r * size + size // 2)
                    draw.text(centre, text, fill=cells.text_colour[r][c], font=font, anchor="mm")
    if cells.box:
        rows, cols = len(cells.fill), len(cells.fill[0])
        for k in range(0, rows + 1, cells.box):
            draw.line((left, top + k * size, left + cols * size, top + k * size), fill=(0, 0, 0), width=2)
        for k in range(0, cols + 1, cells.box):
            draw.line((left + k * size, top, left + k * size, top + rows * size), fill=(0, 0, 0), width=2)


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
    style = _Style(cell=solution.puzzle.task.cell_pixels or max(6, min(24, 300 // max(rows, cols, 1))))
    width = max(cols * style.cell, 150) + 2 * style.margin
    height = rows * style.cell + style.caption + 2 * style.margin
    font = _font(14)
    out = []
    for caption, grid, before in grids:
        image = Image.new("RGB", (width, height), (255, 255, 255))
        draw = ImageDraw.Draw(image)
        draw.text((style.margin, style.margin), caption, fill=(0, 0, 0), font=font)
        cells = solution.puzzle.task.cells(solution.puzzle, grid, before)
        _draw_grid(draw, cells, style.margin + style.caption, style.margin, style.cell)
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
