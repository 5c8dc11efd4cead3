"""`trm data ...`: the dataset builders on the command line (`trm.data.build.build_dataset`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from trm.data import maze, sudoku
from trm.data.arc import ArcSource
from trm.data.arc_files import DEFAULT_PREFIX, PRESETS
from trm.data.build import build_dataset
from trm.data.maze import MazeSource
from trm.data.maze_generator import MAZE_HARD_MIN_PATH, MAZE_HARD_SIZE
from trm.data.sudoku import SudokuSource


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("data", help="build datasets in the reference on-disk format")
    tasks = parser.add_subparsers(dest="data_command", metavar="TASK", required=True)
    _add_arc(tasks)
    _add_sudoku(tasks)
    _add_maze(tasks)


# --- trm data sudoku ------------------------------------------------------------------------

SUDOKU_DESCRIPTION = """\
Build a 9x9 Sudoku dataset in the reference on-disk format: train/ and test/ with seq_len 81
and vocab 11 (0 = PAD, digit d = token d + 1, blank = digit 0), one puzzle identifier. Train
puzzles can be augmented (digit relabelling, band/row and stack/column permutations,
transpose); test puzzles never are. The same options and seed give the same dataset, and a
failed build leaves nothing at the output path.
"""

SUDOKU_EXAMPLES = """\
examples:
  # the paper's training set: 1000 Sudoku-Extreme puzzles x 1000 augmentations, full test split
  trm data sudoku --source hf --train-size 1000 --num-aug 1000 -o data/sudoku-extreme-1k-aug-1000
  # the same from train.csv and test.csv downloaded elsewhere (no hub access needed)
  trm data sudoku --source csv --input downloads/sudoku-extreme --train-size 1000 --num-aug 1000 \\
      -o data/sudoku-extreme-1k-aug-1000
  # Royle's 17-clue puzzles, solved here, 1000 held out for test
  trm data sudoku --source royle17 --input shared/data/sudoku/royle-17-clue.txt -o data/sudoku-royle17
  # 1000 + 1000 generated 30-given puzzles, 8 augmentations each: seconds, no download
  trm data sudoku --source generate --givens 30 --num-aug 8 -o data/sudoku-gen30
"""


def _givens(text: str) -> int | tuple[int, int] | None:
    if text == "minimal":
        return None
    try:
        if "-" in text:
            low, high = (int(part) for part in text.split("-"))
            if not 17 <= low <= high <= 81:
                raise ValueError
            return low, high
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number of givens, a range LOW-HIGH within 17..81, or 'minimal', got {text!r}"
        ) from None


def _add_sudoku(tasks: argparse._SubParsersAction) -> None:
    """Add `trm data sudoku` to the `trm data` sub-commands."""
    parser = tasks.add_parser(
        "sudoku",
        help="Sudoku 9x9 (Sudoku-Extreme CSV, a puzzle file such as Royle's 17-clue set, or generated)",
        description=SUDOKU_DESCRIPTION,
        epilog=SUDOKU_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--source",
        required=True,
        choices=sudoku.SOURCES,
        help="hf: download Sudoku-Extreme (train.csv, test.csv) from the Hugging Face hub (needs "
        "pip install 'trm[hf]' and network); csv: local CSV files in that format (header "
        "source,question,answer,rating); royle17: a text file of puzzles, one per line, solved "
        "here; generate: our generator of unique-solution puzzles",
    )
    parser.add_argument(
        "--input",
        type=Path,
        metavar="PATH",
        help="csv: a directory holding train.csv and test.csv, or one CSV file that is split into "
        "train and test; royle17: the puzzle file",
    )
    parser.add_argument("-o", "--output", type=Path, required=True, metavar="DIR", help="dataset directory to create")
    parser.add_argument(
        "--repo", default=sudoku.HF_REPO, metavar="ID", help="hf: the dataset repository (default %(default)s)"
    )
    parser.add_argument(
        "--train-size",
        type=int,
        metavar="N",
        help="number of train puzzles: a random subset of the source's train puzzles (default all); "
        f"for generate, how many to generate (default {sudoku.DEFAULT_GENERATED})",
    )
    parser.add_argument(
        "--test-size",
        type=int,
        metavar="N",
        help="number of test puzzles: hf and a csv directory, a random subset of the test split "
        f"(default all); royle17 and one csv file, how many to hold out (default {sudoku.DEFAULT_HELD_OUT}); "
        f"generate, how many to generate (default {sudoku.DEFAULT_GENERATED})",
    )
    parser.add_argument(
        "--num-aug",
        type=int,
        default=0,
        metavar="N",
        help="augmented copies added to each train puzzle (default 0; the paper uses 1000)",
    )
    parser.add_argument(
        "--min-difficulty",
        type=int,
        metavar="N",
        help="keep puzzles rated at least this (hf/csv: the rating column, a backtrack count of the "
        "tdoku solver; royle17/generate: the backtrack count of our solver)",
    )
    parser.add_argument(
        "--givens",
        type=_givens,
        default=30,
        metavar="N|LOW-HIGH|minimal",
        help="generate: givens per puzzle, 17..81 (24 and up is fast), a range such as 28-40 (each "
        "puzzle draws its number uniformly), or 'minimal' to remove all a "
        "unique solution allows (default 30)",
    )
    parser.add_argument("--seed", type=int, default=0, metavar="N", help="seed of every random choice (default 0)")
    parser.add_argument("--overwrite", action="store_true", help="replace the output directory if it exists")
    parser.set_defaults(run=_run_sudoku)


def _run_sudoku(args: argparse.Namespace) -> int:
    source = SudokuSource(
        source=args.source,
        output=args.output,
        input=args.input,
        repo=args.repo,
        train_size=args.train_size,
        test_size=args.test_size,
        num_aug=args.num_aug,
        min_difficulty=args.min_difficulty,
        givens=args.givens,
        seed=args.seed,
        overwrite=args.overwrite,
    )
    print(build_dataset(source))
    return 0


# --- trm data maze --------------------------------------------------------------------------

MAZE_EXAMPLES = """examples:
  trm data maze --source hf --output data/maze-30x30-hard-1k
  trm data maze --source csv --input ~/maze-30x30-hard-1k/ --output data/maze-30x30-hard-1k
  trm data maze --source generate --size 30 --min-path-length 110 --output data/maze-30x30-gen
  trm data maze --source generate --size 9 --train-count 1000 --test-count 200 --output data/maze-9x9
"""


def _add_maze(tasks: argparse._SubParsersAction) -> None:
    """Add `trm data maze` to the `trm data` sub-commands."""
    parser = tasks.add_parser(
        "maze",
        help="Maze-Hard 30x30 (its Hugging Face CSV, a local copy, or generated with unique shortest paths)",
        description="Build a maze dataset in the reference on-disk format: vocab 6 (PAD + '# SGo'),\n"
        "sequence length N*N, one puzzle identifier; the label marks the shortest S->G path with 'o'.",
        epilog=MAZE_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--source",
        choices=("hf", "csv", "generate"),
        required=True,
        help=f"where the mazes come from (required, as for trm data sudoku): hf = {maze.HF_REPO} from the "
        "Hugging Face hub (the paper's data; needs pip install 'trm[hf]' and network), csv = local files "
        "in its format, generate = our generator (unique shortest paths). Example: --source generate",
    )
    parser.add_argument(
        "--input",
        help="csv: a directory with train.csv and test.csv, or one CSV file split at random into "
        "train and test (half each, or --test-count test mazes); hf: the dataset repository "
        f"(default {maze.HF_REPO}). Example: --input ~/maze-30x30-hard-1k/",
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
    parser.set_defaults(run=_run_maze)


def _run_maze(args: argparse.Namespace) -> int:
    source = MazeSource(
        source=args.source,
        output=Path(args.output),
        input=args.input,
        size=args.size,
        min_path_length=args.min_path_length,
        train_count=args.train_count,
        test_count=args.test_count,
        augment=args.augment,
        seed=args.seed,
        overwrite=args.overwrite,
    )
    print(build_dataset(source))
    return 0


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


# --- trm data arc ---------------------------------------------------------------------------

ARC_DESCRIPTION = """\
Build an ARC-AGI dataset in the reference on-disk format (trm-spec section 7).

Reads Kaggle-style files (<prefix>_<subset>_challenges.json and _solutions.json) from a
directory or a URL, or a directory with one folder of task files (<task id>.json) per subset.
Each task gets up to --num-aug variants (dihedral transform + permutation of colours 1..9);
the training split holds all demonstrations and the test pairs of non-evaluation subsets,
the test split the test pairs of the evaluation subsets in all their variants.
"""

ARC_EXAMPLES = """\
examples:
  trm data arc --input ../shared/data/arc --preset arc-agi-1 --output data/arc1 --num-aug 1000
  trm data arc --input ../shared/data/arc --preset arc-agi-2 --output data/arc2
  trm data arc --input ARC-AGI/data --subsets training evaluation --output data/arc-small --num-aug 10
"""


def _add_arc(tasks: argparse._SubParsersAction) -> None:
    """Register `trm data arc` on the `trm data` sub-parsers."""
    parser = tasks.add_parser(
        "arc",
        help="ARC-AGI-1 / ARC-AGI-2 (+ ConceptARC) with dihedral and colour augmentation",
        description=ARC_DESCRIPTION,
        epilog=ARC_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--input",
        required=True,
        metavar="DIR_OR_URL",
        help="directory or http(s) URL with the ARC files, e.g. --input ../shared/data/arc",
    )
    parser.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="DIR",
        help="dataset directory to create, e.g. --output data/arc1 (written atomically)",
    )
    parser.add_argument(
        "--preset",
        default="arc-agi-1",
        choices=sorted(PRESETS),
        help="arc-agi-1: training + evaluation + concept, evaluated on evaluation; arc-agi-2: "
        "training2 + evaluation2 + concept, evaluated on evaluation2 (default: %(default)s)",
    )
    parser.add_argument(
        "--subsets",
        nargs="+",
        metavar="NAME",
        help="subsets to read instead of the preset's, e.g. --subsets training evaluation",
    )
    parser.add_argument(
        "--eval-subsets",
        nargs="+",
        metavar="NAME",
        help="subsets whose test pairs form the test split instead of the preset's, e.g. --eval-subsets evaluation",
    )
    parser.add_argument(
        "--prefix",
        metavar="PREFIX",
        help=f"file name prefix of the Kaggle files, e.g. --prefix arc-agi (default: found in the "
        f"directory; '{DEFAULT_PREFIX}' for a URL)",
    )
    parser.add_argument(
        "--num-aug",
        type=int,
        default=1000,
        metavar="N",
        help="augmented variants per task besides the original, e.g. --num-aug 100 (default: %(default)s)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=42,
        help="random seed; the same seed gives the same dataset, e.g. --seed 0 (default: %(default)s)",
    )
    parser.add_argument(
        "--first-identifier",
        type=int,
        default=1,
        metavar="ID",
        help="first puzzle identifier, to combine datasets, e.g. --first-identifier 1 (default: %(default)s)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace --output if it exists, e.g. --overwrite")
    parser.add_argument("--quiet", action="store_true", help="no progress bars, e.g. --quiet")
    parser.set_defaults(run=_run_arc)


def _run_arc(args: argparse.Namespace) -> int:
    source = ArcSource(
        input=args.input,
        output=Path(args.output),
        preset=args.preset,
        subsets=args.subsets and tuple(args.subsets),
        eval_subsets=args.eval_subsets and tuple(args.eval_subsets),
        prefix=args.prefix,
        num_aug=args.num_aug,
        seed=args.seed,
        first_identifier=args.first_identifier,
        overwrite=args.overwrite,
    )
    print(build_dataset(source, progress=not args.quiet))
    return 0
