"""`trm solve`: one puzzle, its answer (or several), and the model's steps as text or pictures."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from trm.cli.eval import _add_common, _positive, _write, add_scaling_options

SOLVE_EXAMPLES = """\
examples:
  trm solve runs/sudoku 53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79
  trm solve runs/sudoku 53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79 \\
      --show --image steps.gif
  trm solve runs/maze my-maze.txt --show            # N lines of N characters: '#' wall, ' ' or '.' open, S, G
  trm solve runs/arc1 task.json --data data/arc1    # every test input, voted over the task's variants

halting: a Sudoku or a maze stops by default when its halting head says so (q_halt > Q) and its
answer keeps the puzzle's rules (--halt valid); ARC, which has no such check, when the halting head
says so (--halt adaptive, the rule the model was trained with).

exit status:
  0  every Sudoku or maze answer is a solution by the rules (for ARC: the answers were found)
  1  a Sudoku or maze answer breaks a rule (with --halt valid: still at the step cap); it is
     printed labelled NOT a solution, with the rule it breaks (for example "row 3 repeats 7")
  2  bad input: a malformed puzzle, a checkpoint for another task, an unknown device, ...
"""


def register(sub: argparse._SubParsersAction) -> None:
    so = sub.add_parser(
        "solve",
        help="solve one puzzle (Sudoku string, maze file, ARC task JSON) and watch the model think",
        description="Solve one puzzle with a checkpoint; the task (Sudoku, Maze, ARC) comes from the checkpoint's "
        "vocabulary and sequence length. Prints the answer, the supervision steps used and the halting confidence "
        "sigmoid(q_halt); --show prints every refinement step, --image draws them.",
        epilog=SOLVE_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_common(so, None)
    so.add_argument(
        "puzzle",
        metavar="PUZZLE",
        help="a Sudoku of 81 characters ('.' or '0' = blank), or the path of a maze text file or an ARC task JSON",
    )
    so.add_argument(
        "--data",
        metavar="DIR",
        help="ARC: the dataset the model was trained with; its identifiers "
        "give the task's puzzle embeddings and variants",
    )
    so.add_argument("--task", metavar="ID", help="ARC: the task to solve in a challenges file holding several")
    so.add_argument("--batch-size", type=_positive, default=64, help="ARC: variants per batch (default: %(default)s)")
    so.add_argument("--show", action="store_true", help="print the answer after every supervision step")
    so.add_argument("--image", metavar="PATH", help="draw the steps: .png (side by side) or .gif (animated)")
    so.add_argument("--no-color", action="store_true", help="plain text, no terminal colours")
    add_scaling_options(so)
    so.set_defaults(run=run_solve)


def run_solve(args: argparse.Namespace) -> int:
    """Solve and print; the exit status is 1 when a Sudoku or maze answer breaks the rules."""
    from trm.errors import ConfigError
    from trm.solve.render import IMAGE_SUFFIXES, format_solution, format_steps, save_picture, use_colour
    from trm.solve.solve import solve

    if args.image and Path(args.image).suffix.lower() not in IMAGE_SUFFIXES:
        raise ConfigError(f"--image {args.image}: pictures are written as .png (steps side by side) or .gif (animated)")
    colour = not args.no_color and use_colour(sys.stdout)
    solutions = solve(
        args.checkpoint,
        args.puzzle,
        halt=args.halt,
        max_steps=args.max_steps,
        halt_threshold=args.halt_threshold,
        data_dir=args.data,
        task_id=args.task,
        batch_size=args.batch_size,
        device=args.device,
        forward_dtype=args.dtype,
    )
    for k, solution in enumerate(solutions):
        if args.show:
            print(format_steps(solution, colour))
        print(format_solution(solution, colour))
        if args.image:
            path = Path(args.image)
            if len(solutions) > 1:
                path = path.with_name(f"{path.stem}-{k}{path.suffix}")
            _write("--image", path, lambda p: save_picture(solution, p))  # noqa: B023 (called at once)
            print(f"steps drawn in {path}")
        if k + 1 < len(solutions):
            print()
    return 1 if any(s.valid is False for s in solutions) else 0
