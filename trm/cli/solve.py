"""`trm solve`: one puzzle, its answer (or several), and the model's steps as text or pictures."""

from __future__ import annotations

import argparse
import json
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
  trm solve trm/pretrained/sudoku-9x9 \\
      .......1298..........6.....1..7...8.4.2.........3..6...7....3...5..4........1.... --trajectories 64
      # a hard 17-clue puzzle: one run misses it, a few symmetric views of it solve it
  trm solve trm/pretrained/sudoku-9x9 PUZZLE --trajectories 64 --json   # one JSON object on stdout
  trm solve trm/pretrained/sudoku-9x9 PUZZLE --trajectories 64 --answers 2   # two distinct solutions, if any

test-time scaling (Sudoku, Maze): --trajectories K runs the puzzle as given and K-1 random symmetries
of it (--noise adds noise to the latent state), each until its first answer that keeps the rules,
doubling the trajectories (1, 2, 4, ... K) while none has one; --select chooses the answer (verify:
one that keeps the rules, the most confident). --halt is the rule of one plain run and is refused
with these options. --answers N prints up to N distinct answers that keep the rules, most confident
first, and says how many it found among how many trajectories when fewer. --show and --image draw
the trajectory that gave the answer.

--json prints one JSON object on stdout and nothing else:
  {"task", "puzzle", "answers": [{"answer", "valid", "steps", "confidence", "trajectory"}],
   "trajectories", "network_calls", "wall_time_s"}
where puzzle and answer are in the puzzle's own text form: 81 digits for Sudoku (0 = blank), a list
of the maze's lines ('#' wall, ' ' open, S, G, 'o' path), a list of rows of colours for ARC; valid
is null for ARC, whose answers are its two voted attempts. An ARC task with several test inputs
gives {"task", "questions": [one object as above, less "task", per test input], "network_calls",
"wall_time_s"}. Notes go to stderr.

halting: a Sudoku or a maze stops by default when its halting head says so (q_halt > Q) and its
answer keeps the puzzle's rules (--halt valid); ARC, which has no such check, when the halting head
says so (--halt adaptive, the rule the model was trained with).

exit status:
  0  every Sudoku or maze answer is a solution by the rules (for ARC: the answers were found);
     with --answers N, the first answer is, however many were found
  1  a Sudoku or maze answer breaks a rule (with --halt valid: still at the step cap; with
     --trajectories: no trajectory found one that keeps the rules); it is printed labelled
     NOT a solution, with the rule it breaks (for example "row 3 repeats 7")
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
    so.add_argument(
        "--batch-size",
        type=_positive,
        default=64,
        help="ARC: variants per batch; with --trajectories: trajectories stepping together (default: %(default)s)",
    )
    so.add_argument("--show", action="store_true", help="print the answer after every supervision step")
    so.add_argument("--image", metavar="PATH", help="draw the steps: .png (side by side) or .gif (animated)")
    so.add_argument("--no-color", action="store_true", help="plain text, no terminal colours")
    add_scaling_options(so)
    so.add_argument(
        "--answers",
        type=_positive,
        default=1,
        metavar="N",
        help="Sudoku, Maze: print up to N distinct answers that keep the rules, most confident first (test-time "
        "scaling; a puzzle with several solutions may need --trajectories to find them) (default: %(default)s). "
        "Example: --answers 2",
    )
    so.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object on stdout and nothing else: the puzzle, the answers with their validity, steps, "
        "confidence and trajectory, the trajectories, network calls and wall time (see below)",
    )
    so.set_defaults(run=run_solve)


def run_solve(args: argparse.Namespace) -> int:
    """Solve and print; the exit status is 1 when a Sudoku or maze answer breaks the rules."""
    from trm.backends import reuse_freed_memory
    from trm.errors import ConfigError
    from trm.solve.render import IMAGE_SUFFIXES, format_solution, format_steps, save_picture, use_colour
    from trm.solve.solve import solve

    if args.image and Path(args.image).suffix.lower() not in IMAGE_SUFFIXES:
        raise ConfigError(f"--image {args.image}: pictures are written as .png (steps side by side) or .gif (animated)")
    if args.json and args.show:
        raise ConfigError(
            "--show prints the steps as text, but --json keeps stdout for the JSON object alone: "
            "draw the steps with --image instead"
        )
    if not (args.device or "cpu").startswith("cuda"):
        reuse_freed_memory()  # as trm eval: many trajectories' activations are reused step after step
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
        trajectories=args.trajectories,
        noise=args.noise,
        select=args.select,
        views=args.views,
        seed=args.seed,
        answers=args.answers,
        cycles=args.cycles,
    )
    report = sys.stderr if args.json else sys.stdout
    for k, solution in enumerate(solutions):
        if args.show:
            print(format_steps(solution, colour))
        if args.json:
            for note in solution.notes:
                print(f"note: {note}", file=sys.stderr)
        else:
            print(format_solution(solution, colour))
        if args.image:
            path = Path(args.image)
            if len(solutions) > 1:
                path = path.with_name(f"{path.stem}-{k}{path.suffix}")
            _write("--image", path, lambda p: save_picture(solution, p))  # noqa: B023 (called at once)
            print(f"steps drawn in {path}", file=report)
        if k + 1 < len(solutions) and not args.json:
            print()
    if args.json:
        from trm.solve.render import solutions_json

        print(json.dumps(solutions_json(solutions)))
    return 1 if any(s.valid is False for s in solutions) else 0
