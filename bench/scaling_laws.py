"""Scaling laws for recursion: held-out exact accuracy of small Sudoku TRMs against test depth,
train depth, width, training puzzles, training compute and test-time trajectories.

    python bench/scaling_laws.py                     # build the data, train and measure every run not yet done
    python bench/scaling_laws.py --runs width 'D32-*' # some runs: axes, or shell globs on the names --list shows
    python bench/scaling_laws.py --list              # the runs, their length and which are done
    python bench/scaling_laws.py --report            # fits, figures, the section of docs/scaling.md
    python bench/scaling_laws.py --check             # exit 1 if docs/scaling.md differs from the saved runs

Every run trains one TRM-MLP from scratch on generated 9x9 Sudokus (34 to 40 givens) with
configs/cpu/scaling.yaml, then measures the final weights (never a chosen checkpoint) on 1,000
held-out puzzles of another seed, with one trajectory at step limits 1 to 16 (the base runs: 1
to 64). The base shape is D=64, T=2, n=3, 16,000 training puzzles and one compute unit: the
training FLOPs of 1,500 optimizer steps of that shape (batch 64). Each axis changes one thing:

    compute   0.25, 0.5, 1 and 2 units of the base shape
    width     D = 32, 64, 128, 256 at one unit (fewer steps for a wider model)
    depth     (T, n) = (1, 1), (1, 3), (2, 3), (3, 6) at one unit (fewer steps for deeper recursion)
    puzzles   1,000, 4,000 and 16,000 training puzzles at one unit

and the base runs also measure K = 1 to 64 trajectories (the verify rule, views, no noise) on
the first 300 held-out puzzles. Two seeds per point. A run saves its numbers atomically in
experiments/scaling/runs/NAME.json, so the study spans sessions: a saved run is never run again,
an interrupted one resumes from its checkpoint in WORK/runs/NAME. `--report` fits and draws
what is saved; a run not saved is listed as not run, never given a number.
"""

from __future__ import annotations

import argparse
import fnmatch
import functools
import importlib.util
import json
import math
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from trm.errors import ConfigError
from trm.files import atomic_write_text

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "configs" / "cpu" / "scaling.yaml"
RESULTS = ROOT / "experiments" / "scaling"
DOCUMENT = ROOT / "docs" / "scaling.md"
IMAGES = ROOT / "docs" / "images"
MARKERS = ("<!-- generated: scaling -->\n", "<!-- /generated -->")

TRAIN_SEED, HELDOUT_SEED = 2801, 2802  # used nowhere else in the repository
GIVENS = (34, 40)
BASE = {"D": 64, "T": 2, "n": 3, "puzzles": 16000, "units": 1.0}
AXES = {
    "compute": ("units", (0.25, 0.5, 1.0, 2.0)),
    "width": ("D", (32, 64, 128, 256)),
    "depth": ("Tn", ((1, 1), (1, 3), (2, 3), (3, 6))),
    "puzzles": ("puzzles", (1000, 4000, 16000)),
}
STEP_LIMITS = (1, 2, 4, 8, 16, 32, 64)
PAYS = 0.01  # a doubling that adds less exact accuracy than this "stops paying"


@dataclass(frozen=True)
class Study:
    """The sizes of the study (the defaults are the study; tests shrink them)."""

    unit_steps: int = 1500  # optimizer steps of the base shape in one compute unit
    heldout: int = 1000
    k_puzzles: int = 300
    max_k: int = 64
    test_depth: int = 64  # base runs; the others are measured up to 16 steps, the reference's evaluation
    seeds: tuple[int, ...] = (0, 1)
    batch_size: int = 64
    overrides: tuple[str, ...] = ()  # extra key=value for every run (tests: a tiny model)


@dataclass(frozen=True)
class Run:
    D: int
    T: int
    n: int
    puzzles: int
    units: float
    seed: int

    @property
    def name(self) -> str:
        return f"D{self.D}-T{self.T}-n{self.n}-p{self.puzzles}-c{self.units:g}-s{self.seed}"

    @property
    def is_base(self) -> bool:
        return (self.D, self.T, self.n, self.puzzles, self.units) == tuple(
            BASE[k] for k in ("D", "T", "n", "puzzles", "units")
        )

    def axes(self) -> list[str]:
        """The axes this run is a point of (the base run is a point of all four)."""
        return [axis for axis in AXES if self in runs_of_axis(axis, (self.seed,))]


def runs_of_axis(axis: str, seeds: tuple[int, ...]) -> list[Run]:
    key, values = AXES[axis]
    out = []
    for value in values:
        shape = dict(BASE)
        if key == "Tn":
            shape["T"], shape["n"] = value
        else:
            shape[key] = value
        out += [Run(shape["D"], shape["T"], shape["n"], shape["puzzles"], shape["units"], s) for s in seeds]
    return out


def all_runs(study: Study) -> list[Run]:
    """Every run of the study once, cheapest shapes first within each axis."""
    seen: list[Run] = []
    for axis in AXES:
        seen += [r for r in runs_of_axis(axis, study.seeds) if r not in seen]
    return seen


def select_runs(study: Study, patterns: list[str] | None) -> list[Run]:
    """The runs of the axes named in `patterns`, or whose names match them (shell globs)."""
    runs = all_runs(study)
    if not patterns:
        return runs
    chosen: list[Run] = []
    for pattern in patterns:
        matched = runs_of_axis(pattern, study.seeds) if pattern in AXES else []
        matched += [r for r in runs if fnmatch.fnmatchcase(r.name, pattern)]
        if not matched:
            raise ConfigError(
                f"--runs: {pattern!r} matches no run; give an axis ({', '.join(AXES)}) or a glob on the "
                "run names --list shows (e.g. 'D128-*')"
            )
        chosen += [r for r in matched if r not in chosen]
    return [r for r in runs if r in chosen]


# ---------------------------------------------------------------------------------------------
# Compute


@functools.cache
def step_flops(run: Run, study: Study) -> int:
    """Training FLOPs of one optimizer step of this run's shape (`trm.train.flops`)."""
    from trm.config import ModelConfig
    from trm.train.config import load_train_config
    from trm.train.flops import model_flops

    config = load_train_config(CONFIG, list(study.overrides)).model
    shape = config.model_copy(update=dict(hidden_size=run.D, T=run.T, n=run.n, vocab_size=11, seq_len=81))
    return model_flops(ModelConfig(**shape.model_dump()), study.batch_size)["total"]


def planned_steps(run: Run, study: Study) -> int:
    """Optimizer steps that spend the run's compute units at its shape."""
    base = Run(BASE["D"], BASE["T"], BASE["n"], BASE["puzzles"], 1.0, run.seed)
    budget = run.units * study.unit_steps * step_flops(base, study)
    return max(1, round(budget / step_flops(run, study)))


# ---------------------------------------------------------------------------------------------
# Data


def build_data(work: Path, study: Study, puzzles: set[int], progress: bool) -> None:
    """WORK/data/train-N for each N in `puzzles` (seed TRAIN_SEED, 200 test puzzles of its own for
    the trainer's log) and WORK/data/heldout (seed HELDOUT_SEED), those not built yet."""
    from trm.data.build import build_dataset
    from trm.data.sudoku import SudokuSource

    wanted = {f"train-{p}": (p, 200, TRAIN_SEED) for p in sorted(puzzles)}
    wanted["heldout"] = (1, study.heldout, HELDOUT_SEED)
    for name, (train, test, seed) in wanted.items():
        out = work / "data" / name
        if (out / "test" / "dataset.json").exists():
            continue
        source = SudokuSource(source="generate", output=out, givens=GIVENS, train_size=train, test_size=test, seed=seed)
        print(build_dataset(source, progress=progress), flush=True)


# ---------------------------------------------------------------------------------------------
# One run


def result_path(results: Path, run: Run) -> Path:
    return results / "runs" / f"{run.name}.json"


def train_overrides(run: Run, study: Study, work: Path) -> list[str]:
    """The run's `key=value` settings on top of configs/cpu/scaling.yaml."""
    return [
        f"run_dir={work / 'runs' / run.name}", f"name={run.name}", f"seed={run.seed}",
        f"data.path={work / 'data' / f'train-{run.puzzles}'}",
        f"model.hidden_size={run.D}", f"model.T={run.T}", f"model.n={run.n}",
        f"global_batch_size={study.batch_size}", f"max_steps={planned_steps(run, study)}",
        *study.overrides,
    ]  # fmt: skip


def train_command(run: Run, study: Study, work: Path, progress: bool = True) -> list[str]:
    """The command that trains the run, or resumes it where an earlier start stopped."""
    run_dir = work / "runs" / run.name
    quiet = [] if progress else ["--quiet"]
    if (run_dir / "config.yaml").exists():
        return [sys.executable, "-m", "trm", "train", *quiet, "--resume", str(run_dir)]
    return [sys.executable, "-m", "trm", "train", *quiet, str(CONFIG), *train_overrides(run, study, work)]


def measure(run: Run, study: Study, work: Path, progress: bool) -> dict[str, Any]:
    """Held-out accuracy of the run's final weights at each step limit (one trajectory), and for a
    base run the verify rule's accuracy at K = 1, 2, 4, ... trajectories."""
    from trm.eval import evaluate
    from trm.eval.scaling import evaluate_trajectories
    from trm.eval.trajectories import Plan
    from trm.train.checkpoint import checkpoint_dirs

    run_dir = work / "runs" / run.name
    final = checkpoint_dirs(run_dir)[-1]
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    seconds = next((line["train_seconds"] for line in reversed(lines) if "train_seconds" in line), None)
    heldout = work / "data" / "heldout"
    depth = study.test_depth if run.is_base else min(16, study.test_depth)
    report = evaluate(final, heldout, halt="fixed", max_steps=depth, progress=progress)
    out: dict[str, Any] = {
        "run": asdict(run),
        "steps": int(final.name.split("_")[1]),
        "planned_steps": planned_steps(run, study),
        "step_flops": step_flops(run, study),
        "train_seconds": seconds,
        "heldout_puzzles": report.num_examples,
        "exact_at_step": report.exact_accuracy_per_step,
        "valid_rate": report.valid_rate,
        "command": " ".join(["trm train", str(CONFIG.relative_to(ROOT)), *train_overrides(run, study, work)]),
    }
    out["train_flops"] = out["steps"] * out["step_flops"]
    if run.is_base:
        plan = Plan(trajectories=study.max_k, select="verify", noise=0.0, views=True, max_steps=16, seed=0)
        k_report = evaluate_trajectories(final, heldout, plan, limit=study.k_puzzles, progress=progress)
        out["k_puzzles"] = k_report.num_puzzles
        out["exact_at_k"] = {str(k): v for k, v in k_report.accuracy_at_k["verify"].items()}
    return out


def environment() -> dict[str, Any]:
    import platform

    import torch

    cpu = platform.machine()
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return {"cpu": cpu, "capability": torch.backends.cpu.get_cpu_capability(), "torch": torch.__version__}


def run_all(runs: list[Run], study: Study, work: Path, results: Path, progress: bool = True) -> list[Run]:
    """Train and measure the runs not saved yet; return those done now."""
    todo = [r for r in runs if not result_path(results, r).exists()]
    build_data(work, study, {r.puzzles for r in todo}, progress)
    for i, run in enumerate(todo, 1):
        print(f"[{i}/{len(todo)}] {run.name}: {planned_steps(run, study)} steps", flush=True)
        started = time.time()
        done = subprocess.run(train_command(run, study, work, progress), cwd=ROOT)
        if done.returncode != 0:
            raise SystemExit(f"{run.name}: training exited with status {done.returncode}; rerun to resume it")
        saved = {
            **measure(run, study, work, progress),
            "environment": environment(),
            "wall_seconds": round(time.time() - started, 1),
            "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
        }
        result_path(results, run).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(result_path(results, run), json.dumps(saved, indent=1) + "\n")
        print(f"  exact {saved['exact_at_step'][15]:.2%} at 16 steps, {saved['wall_seconds']:.0f} s", flush=True)
    return todo


# ---------------------------------------------------------------------------------------------
# Fits


def power_law(x: list[float], y: list[float]) -> dict[str, float] | None:
    """Least squares of log y = log a + b log x; None with fewer than two distinct x or y <= 0."""
    x_arr, y_arr = np.asarray(x, float), np.asarray(y, float)
    if len(set(x_arr)) < 2 or (y_arr <= 0).any():
        return None
    b, log_a = np.polyfit(np.log(x_arr), np.log(y_arr), 1)
    residual = np.log(y_arr) - (log_a + b * np.log(x_arr))
    spread = float(
        np.sqrt((residual**2).sum() / max(1, len(x_arr) - 2))
        / np.sqrt(((np.log(x_arr) - np.log(x_arr).mean()) ** 2).sum())
    )
    return {"a": float(math.exp(log_a)), "exponent": float(b), "stderr": spread}


def logistic_in_log_compute(flops: list[float], exact: list[float], puzzles: list[int]) -> dict[str, float] | None:
    """Exact accuracy = 1 / (1 + exp(-(ln FLOPs - ln C50) / w)), fitted by binomial maximum
    likelihood (each point is `puzzles` held-out puzzles, so 0% and 100% points count too) on a
    grid refined twice. Past the midpoint the error falls as FLOPs^(-1/w): `exponent` is -1/w.
    None with fewer than three distinct compute budgets (two fit any steepness)."""
    x, acc, n = np.log(np.asarray(flops, float)), np.asarray(exact, float), np.asarray(puzzles, float)
    if len(set(x.tolist())) < 3:
        return None
    solved = acc * n

    def log_likelihood(mid: np.ndarray, width: np.ndarray) -> np.ndarray:
        z = (x[None, None, :] - mid[:, None, None]) / width[None, :, None]
        log_p, log_q = -np.logaddexp(0, -z), -np.logaddexp(0, z)  # log sigmoid(z), log sigmoid(-z)
        return (solved * log_p + (n - solved) * log_q).sum(-1)

    mids = np.linspace(x.min() - 3, x.max() + 3, 241)
    widths = np.geomspace(0.01, 10, 241)
    for _ in range(3):
        ll = log_likelihood(mids, widths)
        i, j = np.unravel_index(np.argmax(ll), ll.shape)
        mid, width = mids[i], widths[j]
        mids = np.linspace(mid - 2 * (mids[1] - mids[0]), mid + 2 * (mids[1] - mids[0]), 81)
        widths = np.geomspace(width / (widths[1] / widths[0]) ** 2, width * (widths[1] / widths[0]) ** 2, 81)
    return {"c50": float(np.exp(mid)), "width": float(width), "exponent": float(-1 / width)}


def logistic(law: dict[str, float], flops: float | np.ndarray) -> float | np.ndarray:
    return 1 / (1 + np.exp(-(np.log(flops) - np.log(law["c50"])) / law["width"]))


def compute_multiplier(law: dict[str, float], exact: float, puzzles: int, flops: float) -> tuple[float, str]:
    """The base shape's training compute that reaches `exact` by the compute law, over `flops`,
    the compute that reached it with another setting: above 1, a FLOP of that setting is worth
    more than one of the base shape. At 0% or 100% only a bound ("<=" or ">="), from half a puzzle."""
    floor = 0.5 / puzzles
    clipped = min(max(exact, floor), 1 - floor)
    bound = "<=" if exact <= floor else ">=" if exact >= 1 - floor else "="
    equivalent = law["c50"] * math.exp(law["width"] * math.log(clipped / (1 - clipped)))
    return equivalent / flops, bound


def stops_paying(xs: list[float], ys: list[float]) -> float | None:
    """The first x after which the next x (a doubling or more) adds less than PAYS; None if all pay."""
    for i in range(len(xs) - 1):
        if ys[i + 1] - ys[i] < PAYS:
            return xs[i]
    return None


def by_axis(saved: dict[str, dict[str, Any]], axis: str, study: Study) -> list[tuple[Any, list[dict[str, Any]]]]:
    """(value, the saved runs of that value: one per seed done) along `axis`."""
    values = AXES[axis][1]
    runs, per = runs_of_axis(axis, study.seeds), len(study.seeds)
    return [
        (v, [saved[r.name] for r in runs[i * per : (i + 1) * per] if r.name in saved]) for i, v in enumerate(values)
    ]


def fits(saved: dict[str, dict[str, Any]], study: Study) -> dict[str, Any]:
    """Each axis's fitted law on the exact accuracy at 16 steps (the reference's evaluation)."""
    at16 = lambda r: r["exact_at_step"][15]  # noqa: E731
    out: dict[str, Any] = {}
    compute = [r for _, rs in by_axis(saved, "compute", study) for r in rs]
    if compute:

        def fit(rs: list[dict[str, Any]]) -> dict[str, float] | None:
            return logistic_in_log_compute(
                [r["train_flops"] for r in rs], [at16(r) for r in rs], [r["heldout_puzzles"] for r in rs]
            )

        per_seed = [fit([r for r in compute if r["run"]["seed"] == seed]) for seed in study.seeds]
        out["compute"] = {"law": fit(compute), "per_seed": [law for law in per_seed if law]}
    puzzles = [(r["run"]["puzzles"], 1 - at16(r)) for _, rs in by_axis(saved, "puzzles", study) for r in rs]
    if puzzles:
        out["puzzles"] = {"law": power_law([p[0] for p in puzzles], [p[1] for p in puzzles])}
    law = out.get("compute", {}).get("law")
    for axis in ("width", "depth"):
        points = [(v, rs) for v, rs in by_axis(saved, axis, study) if rs]
        means = [(v, float(np.mean([at16(r) for r in rs]))) for v, rs in points]
        if len(means) > 1:  # a best of one is no finding
            best = max(means, key=lambda m: m[1])
            out[axis] = {"best": best[0], "best_exact": best[1]}
            if law:
                out[axis]["multipliers"] = [
                    (v, *compute_multiplier(law, exact, sum(r["heldout_puzzles"] for r in rs) // len(rs),
                                            float(np.mean([r["train_flops"] for r in rs]))))
                    for (v, rs), (_, exact) in zip(points, means)
                ]  # fmt: skip
    multipliers = out.get("width", {}).get("multipliers", [])
    measured = [(d, m) for d, m, bound in multipliers if bound == "=" and d >= BASE["D"]]
    if len(measured) >= 2:  # the trend toward the paper's width, from the base width up
        out["width"]["law"] = power_law([d for d, _ in measured], [m for _, m in measured])
        out["width"]["law"]["widths"] = [d for d, _ in measured]
    base = [r for _, rs in by_axis(saved, "compute", study) for r in rs if Run(**r["run"]).is_base]
    if base:
        mean = [float(np.mean([r["exact_at_step"][s - 1] for r in base])) for s in STEP_LIMITS if s <= study.test_depth]
        out["test_depth"] = {"exact": mean, "stops_paying_after": stops_paying(list(STEP_LIMITS[: len(mean)]), mean)}
        with_k = [r for r in base if "exact_at_k" in r]
        if with_k:
            ks = [int(k) for k in with_k[0]["exact_at_k"]]
            kmean = [float(np.mean([r["exact_at_k"][str(k)] for r in with_k])) for k in ks]
            out["trajectories"] = {
                "ks": ks,
                "exact": kmean,
                "law": power_law(ks, [1 - a for a in kmean]),
                "stops_paying_after": stops_paying(ks, kmean),
            }
    return out


def predict(found: dict[str, Any], study: Study) -> str | None:
    """The claim to check when a GPU is lent: the compute law extrapolated to 16 units (minutes on
    a GPU) for the base shape, and what the width trend says of the paper's D=512 at that compute."""
    law = found.get("compute", {}).get("law")
    if law is None:
        return None
    base = Run(BASE["D"], BASE["T"], BASE["n"], BASE["puzzles"], 1.0, 0)
    flops = 16 * study.unit_steps * step_flops(base, study)
    error = 1 - float(logistic(law, flops))
    claim = (
        f"Prediction, to check on a GPU: the base shape trained for 16 units ({flops:.2e} FLOPs) reaches "
        f"{100 * max(0.0, 1 - error):.1f}% held-out exact accuracy at 16 steps (error {error:.1e}, "
        f"{error * 1000:.2g} of 1,000 puzzles wrong), if accuracy keeps following the logistic."
    )
    width = found.get("width")
    if width is None:
        return claim
    if width.get("law"):
        trend, widths = width["law"], width["law"]["widths"]
        paper = Run(512, BASE["T"], BASE["n"], BASE["puzzles"], 1.0, 0)
        multiplier = trend["a"] * paper.D ** trend["exponent"]
        need = law["c50"] / multiplier
        spread = f" (stderr {trend['stderr']:.2f})" if len(widths) > 2 else ""
        return claim + (
            f" Width: at one unit the compute multiplier scales as D^{trend['exponent']:.2f}{spread} from "
            f"D={widths[0]} to D={widths[-1]}, so a D=512 run of this recipe (the paper's width; T=2, n=3, "
            f"batch 64) reaches 50% at about {need:.2e} training FLOPs ({need / step_flops(paper, study):,.0f} "
            f"optimizer steps), {1 / multiplier:.3g} times the base shape's {law['c50']:.2e}, if the "
            "multiplier measured at one unit holds at that budget."
        )
    widest = max(AXES["width"][1])
    if width["best"] < widest:
        return claim + (
            f" Width stopped paying at equal compute beyond D={width['best']}, so a D=512 run (the paper's "
            "width) given the same compute does no better than that."
        )
    return claim + (
        f" Width still paid at equal compute up to D={widest}, so a D=512 run (the paper's width) given the "
        "same compute does better than that."
    )


# ---------------------------------------------------------------------------------------------
# Report: results.json, figures, the docs section


def load_saved(results: Path) -> dict[str, dict[str, Any]]:
    folder = results / "runs"
    return {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))} if folder.is_dir() else {}


def pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def section(saved: dict[str, dict[str, Any]], found: dict[str, Any], study: Study) -> list[str]:
    runs = all_runs(study)
    done = [r for r in runs if r.name in saved]
    hours = sum(saved[r.name].get("train_seconds") or 0 for r in done) / 3600
    flops = sum(saved[r.name]["train_flops"] for r in done)
    planned = sum(planned_steps(r, study) * step_flops(r, study) for r in runs)
    lines = [
        f"{len(done)} of {len(runs)} runs done: {hours:.2f} hours of training, {flops:.2e} of the study's "
        f"{planned:.2e} training FLOPs.",
        "",
    ]
    header = ["run", "axes", "D", "T, n", "puzzles", "units", "steps", "train FLOPs"]
    header += [f"{s} step{'s' * (s > 1)}" for s in STEP_LIMITS] + ["minutes"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for run in runs:
        r = saved.get(run.name)
        if r is None:
            continue
        axes = "all (base)" if run.is_base else ", ".join(run.axes())
        cells = [f"`{run.name}`", axes, str(run.D), f"{run.T}, {run.n}", f"{run.puzzles:,}", f"{run.units:g}"]
        cells += [f"{r['steps']:,}", f"{r['train_flops']:.2e}"]
        cells += [pct(r["exact_at_step"][s - 1]) if s <= len(r["exact_at_step"]) else "-" for s in STEP_LIMITS]
        cells.append(f"{(r.get('train_seconds') or 0) / 60:.1f}")
        lines.append("| " + " | ".join(cells) + " |")
    missing = [r.name for r in runs if r.name not in saved]
    if missing:
        lines += ["", f"Not run yet ({len(missing)}): " + ", ".join(missing) + "."]
    lines.append("")
    if "compute" in found and found["compute"]["law"]:
        law, seeds = found["compute"]["law"], found["compute"]["per_seed"]
        lines.append(
            f"- Compute: exact accuracy at 16 steps = logistic in ln FLOPs, half-way at {law['c50']:.3g} FLOPs, "
            f"width {law['width']:.3f} (so past it the error falls as FLOPs^{law['exponent']:.2f}); each seed alone: "
            + "; ".join(f"{s['c50']:.3g} FLOPs, FLOPs^{s['exponent']:.2f}" for s in seeds)
            + "."
        )
    if "puzzles" in found and found["puzzles"]["law"]:
        law = found["puzzles"]["law"]
        lines.append(
            f"- Training puzzles: error = {law['a']:.3g} x puzzles^{law['exponent']:.3f} (stderr {law['stderr']:.3f}): "
            + (
                "more puzzles lowered the error at one unit."
                if law["exponent"] < 0
                else "at one unit more puzzles did not lower the error (each is drawn fewer times, augmented as drawn)."
            )
        )
    for axis, what in (("width", "width D"), ("depth", "(T, n)")):
        if axis in found:
            lines.append(
                f"- At equal compute the best {what} is {found[axis]['best']} ({pct(found[axis]['best_exact'])})."
            )
            if found[axis].get("multipliers"):
                name = (lambda v: f"D={v}") if axis == "width" else (lambda v: f"(T, n) = ({v[0]}, {v[1]})")
                sign = {"=": "", "<=": "at most ", ">=": "at least "}
                lines.append(
                    "  Compute multiplier (the base shape's training FLOPs that reach the same accuracy by the "
                    "compute law, over the run's own): "
                    + ", ".join(f"{name(v)} {sign[b]}x{m:.3g}" for v, m, b in found[axis]["multipliers"])
                    + "."
                )
    if "test_depth" in found:
        t = found["test_depth"]
        lines.append(
            f"- Test depth (base runs): {', '.join(pct(a) for a in t['exact'])} at "
            f"{', '.join(map(str, STEP_LIMITS[: len(t['exact'])]))} steps; more steps stop paying "
            f"(a doubling adds under {PAYS:.0%}) after {t['stops_paying_after'] or 'none of them'}."
        )
    if "trajectories" in found:
        t = found["trajectories"]
        lines.append(
            f"- Trajectories (verify rule, base runs, {study.k_puzzles} puzzles): "
            + ", ".join(f"K={k} {pct(a)}" for k, a in zip(t["ks"], t["exact"]))
            + f"; stops paying after K={t['stops_paying_after'] or 'none'}."
        )
    if predict(found, study):
        lines += ["", predict(found, study)]
    if done:
        envs = sorted(
            {f"{saved[r.name]['environment']['cpu']} ({saved[r.name]['environment']['capability']})" for r in done}
        )
        lines += ["", "Measured on: " + "; ".join(envs) + "."]
        lines += [
            "",
            "![error against compute](images/scaling-compute.png)",
            "",
            "![accuracy against test and train depth](images/scaling-depth.png)",
            "",
            "![accuracy against width, training puzzles and trajectories](images/scaling-width-data-k.png)",
        ]
    return lines


def plot(saved: dict[str, dict[str, Any]], found: dict[str, Any], study: Study, images: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    images.mkdir(parents=True, exist_ok=True)
    written = []
    at16 = lambda r: r["exact_at_step"][15]  # noqa: E731

    fig, ax = plt.subplots(figsize=(5.5, 4))
    for axis, marker in (("compute", "o"), ("width", "s"), ("depth", "^"), ("puzzles", "D")):
        pts = [(r["train_flops"], 100 * at16(r)) for _, rs in by_axis(saved, axis, study) for r in rs]
        if pts:
            ax.scatter(*zip(*pts), marker=marker, label=axis, alpha=0.7)
    law = found.get("compute", {}).get("law")
    if law:
        low = min(r["train_flops"] for r in saved.values())
        xs = np.geomspace(low, 16 * study.unit_steps * step_flops(Run(**{**BASE, "seed": 0}), study))
        ax.plot(xs, 100 * logistic(law, xs), "k--", label="logistic fit (compute axis), to 16 units")
    ax.set(xscale="log", xlabel="training FLOPs", ylabel="held-out exact accuracy at 16 steps (%)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    written.append(images / "scaling-compute.png")
    fig.savefig(written[-1], dpi=110)
    plt.close(fig)

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for _, rs in by_axis(saved, "compute", study):
        for r in rs:
            u = r["run"]["units"]
            left.plot(
                range(1, len(r["exact_at_step"]) + 1),
                [100 * a for a in r["exact_at_step"]],
                alpha=0.8,
                label=f"{u:g} units, seed {r['run']['seed']}",
            )
    left.set_xscale("log", base=2)
    left.set_xticks(list(STEP_LIMITS), [str(x) for x in STEP_LIMITS])
    left.set(xlabel="test depth: supervision steps", ylabel="held-out exact accuracy (%)")
    left.legend(fontsize=7)
    left.grid(alpha=0.3)
    depth = [(v[0] * (v[1] + 1), 100 * at16(r)) for v, rs in by_axis(saved, "depth", study) for r in rs]
    if depth:
        right.scatter(*zip(*depth))
    right.set(
        xscale="log",
        xlabel="train depth: network calls per step, T(n+1), at equal compute",
        ylabel="exact accuracy at 16 steps (%)",
    )
    calls = sorted({t * (n + 1) for t, n in AXES["depth"][1]})
    right.set_xticks(
        calls,
        [f"{c}\n(T, n) = ({t}, {n})" for c, (t, n) in zip(calls, sorted(AXES["depth"][1]))],
        minor=False,
        fontsize=8,
    )
    right.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    right.grid(alpha=0.3)
    fig.tight_layout()
    written.append(images / "scaling-depth.png")
    fig.savefig(written[-1], dpi=110)
    plt.close(fig)

    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    for ax, axis, label in ((axes[0], "width", "width D (equal compute)"), (axes[1], "puzzles", "training puzzles")):
        pts = [(v, 100 * at16(r)) for v, rs in by_axis(saved, axis, study) for r in rs]
        if pts:
            ax.scatter(*zip(*pts))
        ax.set_xscale("log", base=2)
        ax.set_xticks(list(AXES[axis][1]), [f"{v:,}" for v in AXES[axis][1]])
        ax.set(xlabel=label, ylabel="exact accuracy at 16 steps (%)")
        ax.grid(alpha=0.3)
    if "trajectories" in found:
        t = found["trajectories"]
        axes[2].plot(t["ks"], [100 * a for a in t["exact"]], "o-")
        axes[2].set_xscale("log", base=2)
        axes[2].set_xticks(t["ks"], [str(k) for k in t["ks"]])
    axes[2].set(xlabel="trajectories K (verify rule, base runs)", ylabel="exact accuracy (%)")
    axes[2].grid(alpha=0.3)
    fig.tight_layout()
    written.append(images / "scaling-width-data-k.png")
    fig.savefig(written[-1], dpi=110)
    plt.close(fig)
    return written


def regenerate(text: str, lines: list[str], where: Path) -> str:
    start, end = MARKERS
    if start not in text or end not in text:
        raise SystemExit(f"{where}: no '{start.strip()}' ... '{end}' section")
    head, rest = text.split(start, 1)
    return head + start + "\n" + "\n".join(lines) + "\n" + end + rest.split(end, 1)[1]


def report(study: Study, results: Path, document: Path, images: Path | None, write: bool = True) -> bool:
    """Fit, draw (into `images`; None: no figures) and write results.json and the document's
    section; return whether the document was already up to date (with write=False, only that)."""
    saved = load_saved(results)
    found = fits(saved, study)
    text = document.read_text()
    new = regenerate(text, section(saved, found, study), document)
    if write:
        atomic_write_text(
            results / "results.json", json.dumps({"study": asdict(study), "fits": found}, indent=1) + "\n"
        )
        if saved and images is not None:
            plot(saved, found, study, images)
        atomic_write_text(document, new)
    return new == text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", nargs="+", metavar="PATTERN", help="axes or run-name globs (default: all)")
    parser.add_argument("--work", default="runs/scaling", help="data and run directories (default: runs/scaling)")
    parser.add_argument("--list", action="store_true", help="list the runs and exit")
    parser.add_argument("--report", action="store_true", help="fit, plot and write the docs section; run nothing")
    parser.add_argument("--check", action="store_true", help="exit 1 if docs/scaling.md is not what --report writes")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    study = Study()
    if not (args.list or args.check) and importlib.util.find_spec("matplotlib") is None:
        print("error: the figures need matplotlib: pip install 'trm[experiments]'", file=sys.stderr)
        return 2
    try:
        runs = select_runs(study, args.runs)
        if args.check:
            same = report(study, RESULTS, DOCUMENT, IMAGES, write=False)
            print("docs/scaling.md is up to date" if same else "docs/scaling.md differs: run --report")
            return 0 if same else 1
        if args.report:
            report(study, RESULTS, DOCUMENT, IMAGES)
            print(f"wrote {RESULTS / 'results.json'}, {DOCUMENT} and its figures")
            return 0
        if args.list:
            for r in runs:
                state = "done" if result_path(RESULTS, r).exists() else "not run"
                print(f"{r.name:<32} {planned_steps(r, study):>6} steps  {state:<8} {', '.join(r.axes())}")
            return 0
        run_all(runs, study, Path(args.work), RESULTS, progress=not args.no_progress)
        report(study, RESULTS, DOCUMENT, IMAGES)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
