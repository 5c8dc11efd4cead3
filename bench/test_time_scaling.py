"""Test-time scaling benchmark: accuracy against trajectories K and the step limit, per dataset.

    python bench/test_time_scaling.py --royle FILE          # build the data, run every point not yet done
    python bench/test_time_scaling.py --royle FILE --puzzles 50          # a quick run: 50 puzzles per dataset
    python bench/test_time_scaling.py --points 'royle:both:verify:32'    # some points (globs; see --points)
    python bench/test_time_scaling.py --list                 # the points and which are done
    python bench/test_time_scaling.py --report               # results.json, the docs table, the plots
    python bench/test_time_scaling.py --check                # exit 1 if the docs table differs from results.json
    python bench/test_time_scaling.py --rate 1000            # the difficulty rating of minimal Sudokus

Datasets (built once into WORK/data, reused when present): `hard`, 1,000 generated minimal
Sudokus rated hard (our solver's backtracks at least --min-difficulty); `royle`, 1,000 of
Gordon Royle's 17-clue puzzles held out from --royle FILE; `maze`, 300 fresh 11x11 mazes made
as the maze-11x11 model's test set was, with another seed. Each dataset's seed is used nowhere
else in the repository.

A point is DATASET:VARIANT:RUN:STEPS: VARIANT is views (random symmetries, no noise), noise
(the puzzle as given, Gaussian noise on z) or both; RUN is verify (scored by the verify rule)
or halt (one run scored by the halt and the vote rules); STEPS is the step limit, 16, 32, 64 or 128.
Each point runs K trajectories per puzzle (`trm.eval.scaling.evaluate_trajectories`) and
saves its report in WORK/points/ atomically; a saved point is not run again, so an interrupted
run continues where it stopped. `--report` collects the saved points that match the settings
(K, sigma, seed, puzzles) into experiments/test-time-scaling/results.json and regenerates the
section of docs/test-time-scaling.md between its `<!-- generated: ... -->` markers and the
plots docs/images/tts-*.png; a point not run is listed as such, never given a number.
`--sudoku-model MODEL` measures another model on the Sudoku sets; its points are saved under
names of their own, and its report belongs in files of its own (--results, --doc, --images).
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import json
import os
import platform
import re
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from trm.backends import reuse_freed_memory
from trm.config import BACKEND_CHOICES
from trm.errors import ConfigError, DataError
from trm.eval.evaluate import resolve_checkpoint
from trm.eval.scaling import evaluate_trajectories
from trm.eval.trajectories import Plan, ks_up_to
from trm.files import atomic_write_text
from trm.model.checkpoint import CONFIG, WEIGHTS

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "experiments" / "test-time-scaling" / "results.json"
DOCUMENT = ROOT / "docs" / "test-time-scaling.md"
IMAGES = ROOT / "docs" / "images"
PRETRAINED = ROOT / "trm" / "pretrained"
GENERATED = re.compile(r"(<!-- generated: test-time-scaling -->\n)(?P<body>.*?)(<!-- /generated -->)", re.S)

HARD_DIFFICULTY = 4  # backtracks of our solver; docs/test-time-scaling.md#rated-hard says why
RATING_SEED = 2700  # the sample of minimal puzzles `--rate` measures
VARIANTS = ("views", "noise", "both")
RUNS = ("verify", "halt")
STEP_LIMITS = (16, 32, 64, 128)
RULES_OF_RUN = {"verify": ("verify",), "halt": ("halt", "vote")}


@dataclass(frozen=True)
class Dataset:
    """One test set: how it is built, the model that solves it and its default K."""

    name: str
    title: str
    model: str
    trajectories: int
    seed: int
    spec: dict[str, Any]


DATASETS = {
    "hard": Dataset(
        "hard",
        "1,000 generated minimal Sudokus rated hard",
        "sudoku-9x9",
        64,
        2701,
        {
            "source": "generate",
            "givens": "minimal",
            "min_difficulty": HARD_DIFFICULTY,
            "train_size": 1,
            "test_size": 1000,
        },
    ),
    "royle": Dataset(
        "royle",
        "1,000 of Royle's 17-clue Sudokus",
        "sudoku-9x9",
        64,
        2702,
        {"source": "royle17", "train_size": 1, "test_size": 1000},
    ),
    "maze": Dataset(
        "maze",
        "300 fresh 11x11 mazes",
        "maze-11x11",
        32,
        2703,
        {"source": "generate", "size": 11, "min_path_length": 35, "train_count": 1, "test_count": 300},
    ),
}


@dataclass(frozen=True)
class Settings:
    """What every point of a run shares; a saved point counts only for the same settings."""

    trajectories: int | None  # None: each dataset's own default K
    noise: float
    seed: int
    puzzles: int | None  # None: every puzzle of the test set
    batch_size: int = 256
    sudoku_model: str | None = None  # None: each Sudoku dataset's own model (trm/pretrained/sudoku-9x9)

    def k_for(self, dataset: Dataset) -> int:
        return self.trajectories or dataset.trajectories

    def model_for(self, dataset: Dataset) -> Path:
        """The model directory that solves `dataset`: --sudoku-model for the Sudoku sets when given
        (a shipped model's name or a directory), else the dataset's own shipped model."""
        if self.sudoku_model is None or dataset.name == "maze":
            return PRETRAINED / dataset.model
        given = Path(self.sudoku_model)
        return given if given.exists() or len(given.parts) > 1 else PRETRAINED / self.sudoku_model

    def model_label(self, dataset: Dataset) -> str:
        path = self.model_for(dataset).resolve()
        return path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else str(self.sudoku_model)

    def to_json(self) -> dict[str, Any]:
        """The settings as saved; sudoku_model only when given, so that results saved before the
        option existed still count as the default model's."""
        saved = asdict(self)
        if saved["sudoku_model"] is None:
            del saved["sudoku_model"]
        return saved


@dataclass(frozen=True)
class Point:
    dataset: str
    variant: str
    run: str
    steps: int

    @property
    def name(self) -> str:
        return f"{self.dataset}:{self.variant}:{self.run}:{self.steps}"

    def plan(self, settings: Settings) -> Plan:
        """The trajectories plan of this point under `settings`."""
        return Plan(
            trajectories=settings.k_for(DATASETS[self.dataset]),
            select=self.run,
            noise=0.0 if self.variant == "views" else settings.noise,
            views=self.variant != "noise",
            max_steps=self.steps,
            seed=settings.seed,
            batch_size=settings.batch_size,
        )

    def file_name(self, settings: Settings) -> str:
        """The point's file in WORK/points: every setting that changes its numbers is in the name."""
        plan = self.plan(settings)
        parts = [self.dataset, self.variant, self.run, f"{self.steps}steps", f"K{plan.trajectories}"]
        if plan.noise:
            parts.append(f"sigma{plan.noise:g}")
        parts += [f"seed{plan.seed}", f"n{settings.puzzles}" if settings.puzzles else "all"]
        if settings.sudoku_model is not None and self.dataset != "maze":
            parts.append("model-" + settings.model_label(DATASETS[self.dataset]).replace("/", "_"))
        return "-".join(parts) + ".json"


def all_points() -> list[Point]:
    return [Point(d, v, r, s) for d in DATASETS for v in VARIANTS for r in RUNS for s in STEP_LIMITS]


def select_points(patterns: list[str] | None) -> list[Point]:
    """The points whose name DATASET:VARIANT:RUN:STEPS matches one of `patterns` (shell globs; a
    pattern with fewer parts matches any value of the missing ones, so 'royle' is every royle
    point and 'maze:*:halt' every halt run on mazes). No patterns: every point."""
    points = all_points()
    if not patterns:
        return points
    chosen, unmatched = [], []
    for pattern in patterns:
        parts = pattern.split(":")
        if len(parts) > 4 or not all(parts):
            raise ConfigError(
                f"--points: {pattern!r} is not DATASET:VARIANT:RUN:STEPS (globs allowed, e.g. royle:*:verify)"
            )
        full = ":".join(parts + ["*"] * (4 - len(parts)))
        matched = [p for p in points if fnmatch.fnmatchcase(p.name, full)]
        if not matched:
            unmatched.append(pattern)
        chosen += [p for p in matched if p not in chosen]
    if unmatched:
        raise ConfigError(
            f"--points: {', '.join(map(repr, unmatched))} matches no point; datasets {', '.join(DATASETS)}, "
            f"variants {', '.join(VARIANTS)}, runs {', '.join(RUNS)}, steps {', '.join(map(str, STEP_LIMITS))}"
        )
    return [p for p in points if p in chosen]  # in the canonical order


# ---------------------------------------------------------------------------------------------
# Datasets


def dataset_dir(work: Path, name: str) -> Path:
    return work / "data" / name


def build_datasets(work: Path, names: list[str], royle: Path | None, progress: bool) -> None:
    """Build the datasets `names` into WORK/data that are not there yet, recording each build's time."""
    from trm.data.build import build_dataset
    from trm.data.maze import MazeSource
    from trm.data.sudoku import SudokuSource

    log_path = work / "datasets.json"
    log = json.loads(log_path.read_text()) if log_path.exists() else {}
    for name in names:
        out = dataset_dir(work, name)
        if (out / "test" / "dataset.json").exists():
            continue
        d = DATASETS[name]
        spec = dict(d.spec)
        if name == "maze":
            source = MazeSource(output=out, seed=d.seed, **spec)
        else:
            if name == "royle":
                if royle is None:
                    raise ConfigError(
                        "the royle points need Gordon Royle's 17-clue puzzle file: pass --royle FILE "
                        "(or leave them out with --points)"
                    )
                spec["input"] = royle
            if spec.get("givens") == "minimal":
                spec["givens"] = None
            source = SudokuSource(output=out, seed=d.seed, **spec)
        built = build_dataset(source, progress=progress)
        print(built, flush=True)
        log[name] = {"seconds": round(built.seconds, 2)}
        write_json_atomically(log_path, log)


# ---------------------------------------------------------------------------------------------
# Points


def environment() -> dict[str, Any]:
    """What ran the point: the CPU and the instruction set torch uses on it, its cores and torch's
    threads, torch's version."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),  # AVX2, AVX512, ...: the kernels torch picks
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


def write_json_atomically(path: Path, value: Any) -> None:
    """Write JSON through a temporary file renamed over `path`: a killed run leaves the old file or none."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(value, indent=1) + "\n")


def model_fingerprint(model: Path) -> str | None:
    """What a point was measured with: a hash of the model's weights and of its config's model
    section (T included), so that the numbers of a model since changed are never reported as
    its own. None for a path that holds no model of ours (there is nothing to compare)."""
    path = resolve_checkpoint(model)
    config, weights = path / CONFIG, path / WEIGHTS
    if not (config.is_file() and weights.is_file()):
        return None
    digest = hashlib.sha256(json.dumps(json.loads(config.read_text()).get("model"), sort_keys=True).encode())
    digest.update(weights.read_bytes())
    return digest.hexdigest()[:16]


def point_path(work: Path, point: Point, settings: Settings) -> Path:
    return work / "points" / point.file_name(settings)


def run_point(
    work: Path, point: Point, settings: Settings, device: str | None, progress: bool, backend: str | None = None
) -> dict[str, Any]:
    """Run one point and save its report; return what was saved."""
    d = DATASETS[point.dataset]
    plan = point.plan(settings)
    fingerprint = model_fingerprint(settings.model_for(d))
    report = evaluate_trajectories(
        settings.model_for(d),
        dataset_dir(work, point.dataset),
        plan,
        limit=settings.puzzles,
        device=device,
        backend=backend,
        progress=progress,
    )
    saved = {
        "point": point.name,
        "settings": settings.to_json(),
        "report": report.to_json(),
        "model_fingerprint": fingerprint,
        "environment": environment(),
        "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    write_json_atomically(point_path(work, point, settings), saved)
    return saved


def run_points(
    work: Path,
    points: list[Point],
    settings: Settings,
    device: str | None = None,
    progress: bool = True,
    royle: Path | None = None,
    backend: str | None = None,
) -> list[Point]:
    """Run the points not yet saved under `settings` (building their datasets first); return those run."""
    todo = [p for p in points if not point_path(work, p, settings).exists()]
    build_datasets(work, sorted({p.dataset for p in todo}, key=list(DATASETS).index), royle, progress)
    for i, point in enumerate(todo, 1):
        print(f"[{i}/{len(todo)}] {point.name}: {point.plan(settings)}", flush=True)
        saved = run_point(work, point, settings, device, progress, backend)
        r = saved["report"]
        print(f"  exact {r['exact_accuracy']:.2%}, pass@K {r['pass_at_k']:.2%}, {r['wall_time_s']:.1f} s", flush=True)
    return todo


def list_points(work: Path, points: list[Point], settings: Settings) -> str:
    lines = [f"{len(points)} points, settings {settings.to_json()} (work directory {work}):"]
    for p in points:
        path = point_path(work, p, settings)
        state = "done" if path.exists() else "not run"
        lines.append(f"  {p.name:<24} {state:<8} {path.name}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# results.json


def point_numbers(saved: dict[str, Any]) -> dict[str, Any]:
    """The numbers of a saved point that results.json keeps."""
    r = saved["report"]
    keep = (
        "num_puzzles",
        "exact_accuracy",
        "pass_at_k",
        "valid_rate",
        "valid_not_label_rate",
        "accuracy_at_k",
        "mean_trajectories",
        "mean_steps",
        "network_calls",
        "wall_time_s",
        "puzzles_per_second",
        "time_per_puzzle_s",
        "plan",
        "device",
    )
    fingerprint = {"model_fingerprint": saved["model_fingerprint"]} if saved.get("model_fingerprint") else {}
    return {
        **{k: r[k] for k in keep},
        **fingerprint,
        "environment": saved["environment"],
        "finished": saved.get("finished"),
    }


def collect(work: Path | None, settings: Settings, previous: dict[str, Any] | None) -> dict[str, Any]:
    """results.json: the settings, the datasets and every point saved under `settings` in `work`
    (None: no work directory); points of `previous` (the committed results) with the same
    settings are kept unless rerun. A point measured with another model than the one its dataset
    names now (its model fingerprint differs: new weights, another T) is left out, with a note;
    points saved before fingerprints were recorded have none and are kept."""
    log_path = None if work is None else work / "datasets.json"
    log = json.loads(log_path.read_text()) if log_path is not None and log_path.exists() else {}
    same = previous is not None and previous.get("settings") == settings.to_json()
    points = dict(previous["points"]) if same else {}
    datasets = dict(previous["datasets"]) if same else {}
    for name, d in DATASETS.items():
        entry = {
            "title": d.title,
            "model": settings.model_label(d),
            "seed": d.seed,
            **d.spec,
            "trajectories": settings.k_for(d),
        }
        seconds = log.get(name, {}).get("seconds", datasets.get(name, {}).get("build_seconds"))
        datasets[name] = {**entry, **({"build_seconds": seconds} if seconds is not None else {})}
    for p in all_points() if work is not None else ():
        path = point_path(work, p, settings)
        if path.exists():
            points[p.name] = point_numbers(json.loads(path.read_text()))
    current = {name: model_fingerprint(settings.model_for(d)) for name, d in DATASETS.items()}
    for name, numbers in list(points.items()):
        dataset, measured = name.split(":")[0], numbers.get("model_fingerprint")
        if measured and current[dataset] and measured != current[dataset]:
            del points[name]
            print(
                f"note: {name} left out: it was measured with another {datasets[dataset]['model']} (model "
                f"fingerprint {measured}, now {current[dataset]}); run it again",
                file=sys.stderr,
            )
    ordered = {p.name: points[p.name] for p in all_points() if p.name in points}
    return {"settings": settings.to_json(), "datasets": datasets, "points": ordered}


def empty_results(settings: Settings) -> dict[str, Any]:
    """results.json before any point has run: the settings and the datasets, no points."""
    return collect(None, settings, None)


# ---------------------------------------------------------------------------------------------
# The docs table


def pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def dataset_table(results: dict[str, Any], name: str) -> list[str]:
    """One row per variant, rule and step limit that ran: accuracy at each K, pass@K, valid rate,
    cost; then one line naming the points not run yet (never a number for them)."""
    d = results["datasets"][name]
    ks = ks_up_to(d["trajectories"])
    header = [
        "variant",
        "rule",
        "steps",
        *(f"K={k}" for k in ks),
        "pass@K",
        "valid",
        "trajectories",
        "steps/puzzle",
        "s/puzzle median (mean)",
        "puzzles/s",
    ]
    rows = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    missing = []
    for variant in VARIANTS:
        for run in RUNS:
            for steps in STEP_LIMITS:
                p = results["points"].get(f"{name}:{variant}:{run}:{steps}")
                if p is None:
                    missing.append(f"{variant}:{run}:{steps}")
                    continue
                for rule in RULES_OF_RUN[run]:
                    by_k = p["accuracy_at_k"][rule]
                    t = p["time_per_puzzle_s"]
                    cells = [variant, rule, str(steps)]
                    cells += [pct(by_k[str(k)]) if str(k) in by_k else "-" for k in ks]
                    cells += [
                        pct(p["pass_at_k"]),
                        pct(p["valid_rate"]) if rule == run else "-",  # the rule the run chose by
                        f"{p['mean_trajectories']:.1f}",
                        f"{p['mean_steps']:.1f}",
                        f"{t['median']:.3f} ({t['mean']:.3f})",
                        f"{p['puzzles_per_second']:.2f}",
                    ]
                    rows.append("| " + " | ".join(cells) + " |")
    if len(rows) == 2:
        rows = []
    if missing:
        rows += ["", f"Not run yet ({len(missing)} points, VARIANT:RUN:STEPS): " + ", ".join(missing) + "."]
    return rows


def generated_section(results: dict[str, Any], images: str = "images") -> list[str]:
    """The markdown between the markers: settings, then per dataset its table and plots (`images`:
    the plots' folder, relative to the document)."""
    s = results["settings"]
    puzzles = "every puzzle of each test set" if s["puzzles"] is None else f"the first {s['puzzles']} puzzles of each"
    run = sum(1 for _ in results["points"])
    lines = [
        f"Settings: sigma {s['noise']:g} (the noise and both variants), trajectory seed {s['seed']}, "
        f"batch {s['batch_size']}, {puzzles}; {run} of {len(all_points())} points run.",
        "",
    ]
    for name, d in results["datasets"].items():
        built = f"; built in {d['build_seconds']:.1f} s" if "build_seconds" in d else ""
        lines += [
            f"### {d['title']} (`{name}`)",
            "",
            f"Model `{d['model']}`, K = {d['trajectories']}, dataset seed {d['seed']}{built}.",
            "",
        ]
        lines += dataset_table(results, name)
        lines.append("")
        if any(key.startswith(f"{name}:") for key in results["points"]):
            lines += [
                f"![accuracy against K, {name}]({images}/tts-k-{name}.png)",
                "",
                f"![accuracy against the step limit, {name}]({images}/tts-steps-{name}.png)",
                "",
            ]
    environments = {json.dumps(p["environment"], sort_keys=True) for p in results["points"].values()}
    if environments:
        lines.append(
            "Measured on: "
            + "; ".join(
                f"{e['cpu']}{f' ({cap})' if (cap := e.get('cpu_capability')) else ''}, {e['cores']} cores, "
                f"{e['torch_threads']} torch threads, torch {e['torch']}"
                for e in map(json.loads, sorted(environments))
            )
            + "."
        )
        lines.append("")
    return lines


def regenerate(text: str, results: dict[str, Any], images: str = "images") -> str:
    """The document with its generated section rebuilt from `results`."""
    if not GENERATED.search(text):
        raise SystemExit("no '<!-- generated: test-time-scaling -->' ... '<!-- /generated -->' section in the document")
    body = "\n".join(generated_section(results, images)) + "\n"
    return GENERATED.sub(lambda m: m[1] + "\n" + body + m[3], text)


# ---------------------------------------------------------------------------------------------
# Plots


def plot(results: dict[str, Any], images: Path) -> list[Path]:
    """Accuracy against K (log2 axis; one panel per step limit) and against the step limit (at
    the largest K) for each dataset with points run; lines per variant (colour) and rule (style)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = dict(zip(VARIANTS, ("tab:blue", "tab:orange", "tab:green")))
    styles = {"verify": "-", "halt": "--", "vote": ":"}
    written = []
    images.mkdir(parents=True, exist_ok=True)
    for name, d in results["datasets"].items():
        points = {k: v for k, v in results["points"].items() if k.startswith(f"{name}:")}
        if not points:
            continue
        ks = ks_up_to(d["trajectories"])
        fig, axes = plt.subplots(1, len(STEP_LIMITS), figsize=(4.2 * len(STEP_LIMITS), 3.8), sharey=True)
        for ax, steps in zip(axes, STEP_LIMITS):
            for variant in VARIANTS:
                for run in RUNS:
                    p = points.get(f"{name}:{variant}:{run}:{steps}")
                    for rule in RULES_OF_RUN[run] if p else ():
                        by_k = p["accuracy_at_k"][rule]
                        xs = [k for k in ks if str(k) in by_k]
                        ax.plot(
                            xs,
                            [100 * by_k[str(k)] for k in xs],
                            styles[rule],
                            color=colours[variant],
                            marker="o",
                            markersize=3,
                            label=f"{variant}, {rule}",
                        )
            ax.set_xscale("log", base=2)
            ax.set_xticks(ks, [str(k) for k in ks])
            ax.set_title(f"at most {steps} steps")
            ax.set_xlabel("trajectories K")
            ax.grid(alpha=0.3)
        axes[0].set_ylabel("exact accuracy (%)")
        handles, labels = axes[0].get_legend_handles_labels()
        for ax in axes[1:]:
            for h, label in zip(*ax.get_legend_handles_labels()):
                if label not in labels:
                    handles.append(h)
                    labels.append(label)
        fig.legend(handles, labels, loc="lower center", ncol=5, fontsize=8, frameon=False)
        fig.suptitle(d["title"])
        fig.tight_layout(rect=(0, 0.12, 1, 1))
        written.append(images / f"tts-k-{name}.png")
        fig.savefig(written[-1], dpi=110)
        plt.close(fig)

        fig, ax = plt.subplots(figsize=(5.5, 4))
        k = str(d["trajectories"])
        for variant in VARIANTS:
            for run in RUNS:
                for rule in RULES_OF_RUN[run]:
                    xs = [s for s in STEP_LIMITS if f"{name}:{variant}:{run}:{s}" in points]
                    ys = [100 * points[f"{name}:{variant}:{run}:{s}"]["accuracy_at_k"][rule][k] for s in xs]
                    if xs:
                        ax.plot(xs, ys, styles[rule], color=colours[variant], marker="o", label=f"{variant}, {rule}")
        ax.set_xscale("log", base=2)
        ax.set_xlim(STEP_LIMITS[0] / 1.3, STEP_LIMITS[-1] * 1.3)
        ax.set_xticks(list(STEP_LIMITS), [str(s) for s in STEP_LIMITS])
        ax.set_xlabel("step limit (supervision steps per trajectory)")
        ax.set_ylabel(f"exact accuracy at K={k} (%)")
        ax.set_title(d["title"], fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        fig.tight_layout()
        written.append(images / f"tts-steps-{name}.png")
        fig.savefig(written[-1], dpi=110)
        plt.close(fig)
    return written


# ---------------------------------------------------------------------------------------------
# The difficulty rating of minimal puzzles


def rate(count: int, seed: int = RATING_SEED) -> str:
    """The difficulty rating (our solver's backtracks) of `count` minimal puzzles, and what
    generating 200 puzzles at each threshold costs: the measurement behind HARD_DIFFICULTY."""
    from trm.data.sudoku_solver import generate_puzzle

    rng = np.random.default_rng(seed)
    generate_puzzle(rng, None)  # numba load
    start = time.perf_counter()
    made = [generate_puzzle(rng, None) for _ in range(count)]
    seconds = time.perf_counter() - start
    ratings = np.array([g.backtracks for g in made])
    givens = np.array([(g.puzzle != 0).sum() for g in made])
    lines = [
        f"{count} minimal puzzles (seed {seed}) in {seconds:.2f} s; givens {givens.min()}..{givens.max()} "
        f"(mean {givens.mean():.1f}); rating mean {ratings.mean():.2f}, max {ratings.max()}",
        "rating  puzzles  share  share at least",
    ]
    counts = np.bincount(ratings)
    for r, c in enumerate(counts):
        if c:
            lines.append(f"{r:>6}  {c:>7}  {c / count:>5.1%}  {(ratings >= r).mean():>14.1%}")
    for threshold in (1, 2, 3, 4, 5, 8):
        rng = np.random.default_rng(seed + 1)
        start = time.perf_counter()
        for _ in range(200):
            generate_puzzle(rng, None, threshold)
        lines.append(f"generating 200 rated >= {threshold}: {time.perf_counter() - start:.2f} s")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Command line


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--work",
        type=Path,
        default=Path("runs/test-time-scaling"),
        metavar="DIR",
        help="datasets and saved points (default %(default)s)",
    )
    parser.add_argument(
        "--royle",
        type=Path,
        metavar="FILE",
        help="Gordon Royle's 17-clue puzzle file (one puzzle a line); needed to build `royle`",
    )
    parser.add_argument(
        "--points",
        nargs="+",
        metavar="PATTERN",
        help="points to run or list: DATASET:VARIANT:RUN:STEPS with shell globs, missing parts "
        f"match anything (datasets {', '.join(DATASETS)}; variants {', '.join(VARIANTS)}; runs "
        f"{', '.join(RUNS)}; steps {', '.join(map(str, STEP_LIMITS))}). Examples: royle:both:verify:32,"
        " 'maze:*:halt', 'hard:views'. Default: every point",
    )
    parser.add_argument(
        "--trajectories", type=int, metavar="K", help="trajectories per puzzle (default 64 for Sudoku, 32 for mazes)"
    )
    parser.add_argument(
        "--noise",
        type=float,
        default=0.2,
        metavar="SIGMA",
        help="standard deviation of the noise on z, for the noise and both variants (default %(default)s)",
    )
    parser.add_argument("--seed", type=int, default=0, metavar="N", help="seed of the trajectories (default 0)")
    parser.add_argument(
        "--puzzles",
        type=int,
        metavar="N",
        help="only the first N puzzles of each test set (a quick run; saved apart from full runs)",
    )
    parser.add_argument("--batch-size", type=int, default=256, metavar="N", help="rows stepping together (default 256)")
    parser.add_argument(
        "--sudoku-model",
        metavar="MODEL",
        help="the model for the Sudoku sets (hard, royle): a shipped model's name, e.g. sudoku-hard, or a "
        "model or checkpoint directory (default: sudoku-9x9); saved and reported apart from the default's points",
    )
    parser.add_argument("--device", help="torch device (default: the evaluator's choice)")
    parser.add_argument(
        "--backend",
        default="auto",
        choices=BACKEND_CHOICES,
        help="kernels for the model's products, as trm eval's --backend (default auto)",
    )
    parser.add_argument("--list", action="store_true", help="show the points and which are done; run nothing")
    parser.add_argument(
        "--report",
        action="store_true",
        help="run nothing; write results.json, the docs section and the plots from the points saved under "
        "the settings given (--trajectories, --noise, --seed, --puzzles, --batch-size)",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="run nothing; exit 1 if the docs section differs from what results.json gives",
    )
    parser.add_argument(
        "--rate", type=int, metavar="N", help="run nothing; print the difficulty rating of N generated minimal Sudokus"
    )
    parser.add_argument(
        "--results",
        type=Path,
        default=RESULTS,
        metavar="FILE",
        help="where --report writes (default experiments/test-time-scaling/results.json)",
    )
    parser.add_argument(
        "--doc",
        type=Path,
        default=DOCUMENT,
        metavar="FILE",
        help="where --report writes (default docs/test-time-scaling.md)",
    )
    parser.add_argument(
        "--images", type=Path, default=IMAGES, metavar="DIR", help="where --report writes (default docs/images)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    for name in ("trajectories", "puzzles", "batch_size"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1, got {value}")
    if not args.noise > 0:
        parser.error(f"--noise must be above 0 (the noise and both variants need it), got {args.noise}")
    return args


def settings_of(args: argparse.Namespace) -> Settings:
    if args.sudoku_model is not None:
        model = Settings(None, args.noise, args.seed, None, sudoku_model=args.sudoku_model).model_for(DATASETS["hard"])
        if not model.is_dir():
            raise SystemExit(f"test_time_scaling.py: error: --sudoku-model: {model} is not a model directory")
    return Settings(args.trajectories, args.noise, args.seed, args.puzzles, args.batch_size, args.sudoku_model)


def images_from(doc: Path, images: Path) -> str:
    """The plots' folder as the document links it."""
    return Path(os.path.relpath(images.resolve(), doc.resolve().parent)).as_posix()


def report(args: argparse.Namespace) -> int:
    previous = json.loads(args.results.read_text()) if args.results.exists() else None
    results = collect(args.work, settings_of(args), previous)
    write_json_atomically(args.results, results)
    args.doc.write_text(regenerate(args.doc.read_text(), results, images_from(args.doc, args.images)))
    written = plot(results, args.images)
    print(f"{len(results['points'])} points: wrote {args.results}, {args.doc}" + "".join(f", {p}" for p in written))
    return 0


def check(args: argparse.Namespace) -> int:
    if not args.results.exists():
        print(f"{args.results}: absent; nothing to check")
        return 0
    text = args.doc.read_text()
    if regenerate(text, json.loads(args.results.read_text()), images_from(args.doc, args.images)) != text:
        print(f"out of date: {args.doc} (run: python bench/test_time_scaling.py --report)")
        return 1
    print(f"{args.doc} matches {args.results}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    actions: dict[str, Callable[[], int]] = {
        "rate": lambda: print(rate(args.rate)) or 0,
        "check": lambda: check(args),
        "report": lambda: report(args),
    }
    try:
        for name, action in actions.items():
            if getattr(args, name):
                return action()
        points = select_points(args.points)
        if args.list:
            print(list_points(args.work, points, settings_of(args)))
            return 0
        if not (args.device or "cpu").startswith("cuda"):
            reuse_freed_memory()  # as trm eval: without it every step's activations page-fault in again
        run_points(args.work, points, settings_of(args), args.device, not args.quiet, args.royle, args.backend)
    except (ConfigError, DataError) as e:
        print(f"test_time_scaling.py: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
