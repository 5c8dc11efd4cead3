"""The paper's comparisons at CPU scale: TRM against its ablations and baselines, equal budgets.

Every row trains on the same generated 9x9 Sudokus (40 givens) for the same number of
optimizer steps with the same batch, schedule and seed list, starting from the CPU recipe
(configs/cpu/sudoku-mlp.yaml: D=64, T=2, n=3, bfloat16 forward); a row changes only what the
paper's row changes. Each run is evaluated on the same 1,000 held-out puzzles during training
(accuracy against training time) and at the end (accuracy after every supervision step).

    python experiments/paper_comparisons.py --steps 1200 --seeds 0 1

writes experiments/paper-comparisons/results.md (the table), results.json (every number),
accuracy_vs_steps.png and accuracy_vs_time.png. Runs train in runs/comparisons/ROW-sSEED; a
finished run's config.yaml and metrics.jsonl are copied to experiments/paper-comparisons/runs/
(committed with the table), and a run found there is not trained again, so an interrupted
sweep continues where it stopped (`--only ROW ...` trains some rows; the table always covers
every finished run).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BASE_CONFIG = ROOT / "configs" / "cpu" / "sudoku-mlp.yaml"
DATA_COMMAND = [
    "trm", "data", "sudoku", "--source", "generate", "--givens", "40", "--train-size", "20000",
    "--test-size", "1000", "--seed", "0",
]
ATTENTION = ["model.mixer=attention", "model.pos_encodings=rope"]


@dataclass(frozen=True)
class Row:
    key: str
    name: str
    overrides: list[str]
    paper: str  # the paper's Sudoku-Extreme result for this row


ROWS = [
    Row("trm-mlp", "TRM-MLP (T=2, n=3, 2 layers)", [], "87.4%"),
    Row("trm-att", "TRM-Att (attention, rotary)", ATTENTION, "74.7%"),
    Row("act-continue", "TRM w/ ACT continue loss", ["model.act_continue=true"], "86.1%"),
    Row("separate-nets", "TRM w/ separate y and z networks", ["model.separate_nets=true"], "82.4%"),
    Row("no-ema", "TRM w/o EMA", ["ema=false"], "79.9%"),
    Row("four-layers", "TRM, 4 layers (n=3)", ["model.num_layers=4"], "79.5%"),
    Row("T2-n2", "TRM, T=2, n=2", ["model.n=2"], "73.7%"),
    Row("one-step-gradient", "TRM w/ 1-step gradient", ["model.one_step_gradient=true"], "56.5%"),
    Row("single-z", "TRM, single z", ["model.latent=single_z"], "below TRM"),
    Row("multiscale-z", "TRM, multi-scale z", ["model.latent=multiscale_z"], "below TRM"),
    Row("hrm", "HRM (4+4 layers, T=2, n=2, 1-step gradient, ACT)",
        ATTENTION + ["model.separate_nets=true", "model.num_layers=4", "model.y_layers=4", "model.T=2", "model.n=2",
                     "model.one_step_gradient=true", "model.act_continue=true"], "55.0%"),
    Row("direct", "Direct prediction (8 layers, one pass)",
        ATTENTION + ["model.latent=none", "model.T=1", "model.n=0", "model.num_layers=8", "model.N_sup=1"], "0.0%"),
    Row("direct-ds", "Deep-supervision transformer (8 layers, N_sup=16)",
        ATTENTION + ["model.latent=none", "model.T=1", "model.n=0", "model.num_layers=8"], "-"),
]
STEPS_SHOWN = (1, 2, 4, 8, 16)
# The paper's comparative claims on Sudoku-Extreme: (better row, worse row, the claim).
ORDERINGS = [
    ("trm-mlp", "hrm", "TRM beats HRM"),
    ("trm-att", "hrm", "TRM beats HRM with the same mixer, attention (74.7% vs 55.0%)"),
    ("trm-mlp", "one-step-gradient", "back-propagating through the full recursion beats the 1-step gradient"),
    ("trm-mlp", "no-ema", "EMA helps"),
    ("trm-mlp", "four-layers", "2 layers beat 4 layers"),
    ("trm-mlp", "T2-n2", "more recursion (n=3) beats less (n=2)"),
    ("trm-mlp", "separate-nets", "one network for y and z beats two"),
    ("trm-mlp", "single-z", "y and z beat a single z"),
    ("trm-mlp", "multiscale-z", "y and z beat multi-scale z"),
    ("trm-mlp", "act-continue", "no ACT continue loss is at least as good (87.4% vs 86.1%)"),
    ("trm-mlp", "trm-att", "on Sudoku, the MLP mixer beats attention"),
    ("trm-mlp", "direct", "recursion beats direct prediction"),
    ("trm-mlp", "direct-ds", "recursion beats a deep-supervision transformer without recursion"),
]


def run_dir(runs: Path, row: Row, seed: int) -> Path:
    return runs / f"{row.key}-s{seed}"


def read_metrics(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def finished(directory: Path, steps: int) -> bool:
    evals = [m for m in read_metrics(directory / "metrics.jsonl") if "test/exact_accuracy" in m]
    return bool(evals) and evals[-1]["step"] >= steps


def relative(path: Path) -> str:
    """`path` relative to the repository when it is inside it (saved configs name no machine paths)."""
    path = path.resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def train(row: Row, seed: int, args: argparse.Namespace) -> None:
    directory, record = run_dir(args.runs, row, seed), run_dir(args.out / "runs", row, seed)
    if finished(record, args.steps):
        print(f"{row.key} seed {seed}: finished earlier, kept", flush=True)
        return
    resume = (directory / "checkpoints").exists()
    command = ["trm", "train"]
    command += ["--resume", relative(directory)] if resume else [relative(BASE_CONFIG)]
    command += [
        f"name={row.key}-s{seed}", f"run_dir={relative(directory)}", f"seed={seed}", f"data.path={relative(args.data)}",
        f"max_steps={args.steps}", "max_minutes=null", f"eval_interval={max(args.steps // args.evals, 1)}",
        f"compile={'true' if args.compile else 'false'}", "log.tensorboard=false",
    ]
    if not resume:
        command += row.overrides
    print(f"{row.key} seed {seed}: {' '.join(command)}", flush=True)
    subprocess.run(command, check=True, cwd=ROOT)
    record.mkdir(parents=True, exist_ok=True)
    for name in ("config.yaml", "metrics.jsonl"):
        shutil.copyfile(directory / name, record / name)


def summarise(args: argparse.Namespace) -> dict:
    results = {}
    for row in ROWS:
        seeds = {}
        for seed in args.seeds:
            directory = run_dir(args.out / "runs", row, seed)
            if not finished(directory, args.steps):
                continue
            metrics = read_metrics(directory / "metrics.jsonl")
            evals = [m for m in metrics if "test/exact_accuracy" in m]
            last = evals[-1]
            config = (directory / "config.yaml").read_text()
            seeds[seed] = {
                "final_exact": last["test/exact_accuracy"],
                "best_exact": max(m["test/exact_accuracy"] for m in evals),
                "per_step": [last.get(f"test/exact_accuracy@{k}") for k in range(1, 17)],
                "curve": [(m["step"], m["train_seconds"] / 60, m["test/exact_accuracy"]) for m in evals],
                "train_minutes": last["train_seconds"] / 60,
                "config": config,
            }
        if seeds:
            results[row.key] = {"name": row.name, "paper": row.paper, "overrides": row.overrides, "seeds": seeds}
    return results


def pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def write_table(results: dict, args: argparse.Namespace, out: Path) -> None:
    seeds = args.seeds
    lines = [
        "# The paper's comparisons at CPU scale",
        "",
        f"9x9 Sudoku, 40 givens: 20,000 generated training puzzles (augmented as drawn), 1,000 held-out "
        f"test puzzles; every run {args.steps} optimizer steps of batch 64 from the CPU recipe "
        f"(`configs/cpu/sudoku-mlp.yaml`), seeds {', '.join(map(str, seeds))}. Exact accuracy (%) on the "
        "held-out puzzles at the end of training, after 16 supervision steps unless the column says otherwise. "
        "The paper's column is its Sudoku-Extreme result for the row, at full scale (not comparable in "
        "absolute terms; the ordering is what is checked). Runs are evaluated during training for the time "
        "plot (2 to 5 times each: the sweep's default was lowered partway to save time); evaluation reads "
        "no random numbers, so it does not change a run's training or its final numbers.",
        "",
        "Regenerate: `python experiments/paper_comparisons.py "
        + " ".join(a for a in sys.argv[1:] if a != "--summarise-only") + "`",
        "",
        "| row | " + " | ".join(f"seed {s}" for s in seeds) + " | mean | after 1 / 2 / 4 / 8 steps (mean) "
        "| train minutes (mean) | paper |",
        "|---|" + "---|" * (len(seeds) + 4),
    ]
    for row in ROWS:
        r = results.get(row.key)
        if r is None:
            lines.append(f"| {row.name} | " + " | ".join("not run" for _ in seeds) + " | | | | " + row.paper + " |")
            continue
        runs = [r["seeds"].get(s) for s in seeds]
        done = [x for x in runs if x is not None]
        mean = mean_exact(r)
        per_step = [
            sum(x["per_step"][k - 1] or 0 for x in done) / len(done) if done[0]["per_step"][k - 1] is not None
            else None
            for k in STEPS_SHOWN[:-1]
        ]
        minutes = sum(x["train_minutes"] for x in done) / len(done)
        cells = [pct(x["final_exact"]) if x else "not run" for x in runs]
        lines.append(
            f"| {row.name} | " + " | ".join(cells) + f" | **{pct(mean)}** | "
            + " / ".join(pct(p) for p in per_step) + f" | {minutes:.1f} | {row.paper} |"
        )
    lines += orderings_table(results, seeds)
    lines += ["", "![accuracy against supervision step](accuracy_vs_steps.png)",
              "![accuracy against training time](accuracy_vs_time.png)", ""]
    (out / "results.md").write_text("\n".join(lines))


def mean_exact(row: dict) -> float:
    """A row's final exact accuracy, averaged over its finished seeds."""
    return sum(x["final_exact"] for x in row["seeds"].values()) / len(row["seeds"])


def ordering_verdict(better: dict, worse: dict, seeds: list[int]) -> tuple[str, list[str]]:
    """Whether `better` beats `worse`: in the mean over seeds and seed by seed (same seed, same data order)."""
    mean_better = mean_exact(better)
    diff = mean_better - mean_exact(worse)
    per_seed = [better["seeds"][s]["final_exact"] - worse["seeds"][s]["final_exact"]
                for s in seeds if s in better["seeds"] and s in worse["seeds"]]
    cells = [f"{100 * d:+.1f}" for d in per_seed]
    if diff == 0:
        return ("tie: both at 0%, not decided at this budget" if mean_better == 0 else "tie"), cells
    agree = all(d * diff > 0 for d in per_seed)
    if diff > 0:
        return ("holds" if agree else "holds in the mean; the seeds disagree"), cells
    return ("does not hold" if agree else "reversed in the mean; the seeds disagree"), cells


def orderings_table(results: dict, seeds: list[int]) -> list[str]:
    lines = ["", "## The paper's orderings at this scale", "",
             "Difference in final exact accuracy (points), better row minus worse row as the paper has them: "
             "the mean over seeds, then seed by seed.", "",
             "| paper's claim | rows | mean | " + " | ".join(f"seed {s}" for s in seeds) + " | at this scale |",
             "|---|---|---|" + "---|" * (len(seeds) + 1)]
    for better, worse, claim in ORDERINGS:
        if better not in results or worse not in results:
            lines.append(f"| {claim} | {better} vs {worse} | not run | " + " | ".join("" for _ in seeds) + " | |")
            continue
        b, w = results[better], results[worse]
        verdict, cells = ordering_verdict(b, w, seeds)
        diff = mean_exact(b) - mean_exact(w)
        cells += [""] * (len(seeds) - len(cells))
        lines.append(f"| {claim} | {better} vs {worse} | {100 * diff:+.1f} | " + " | ".join(cells) + f" | {verdict} |")
    return lines


def plot(results: dict, out: Path) -> None:
    try:
        import matplotlib
    except ImportError:
        print('the plots need matplotlib: pip install -e ".[experiments]"', file=sys.stderr)
        return
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = plt.get_cmap("tab20").colors[::2] + plt.get_cmap("tab20").colors[1::2]  # 20 distinct, dark first
    fig, ax = plt.subplots(figsize=(9, 5.5))
    for i, r in enumerate(results.values()):
        runs = list(r["seeds"].values())
        steps = [k for k in range(1, 17) if runs[0]["per_step"][k - 1] is not None]
        mean = [100 * sum(x["per_step"][k - 1] for x in runs) / len(runs) for k in steps]
        ax.plot(steps, mean, marker="o", markersize=3, label=r["name"], color=colours[i % len(colours)])
    ax.set(xlabel="supervision steps at test time", ylabel="held-out exact accuracy (%, mean over seeds)",
           xscale="log", title="Accuracy against supervision step")
    ax.set_xticks([1, 2, 4, 8, 16], labels=["1", "2", "4", "8", "16"])
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(out / "accuracy_vs_steps.png", dpi=110)

    fig, ax = plt.subplots(figsize=(9, 5.5))
    for i, (_key, r) in enumerate(results.items()):
        colour = colours[i % len(colours)]
        for j, run in enumerate(r["seeds"].values()):
            minutes = [c[1] for c in run["curve"]]
            acc = [100 * c[2] for c in run["curve"]]
            ax.plot(minutes, acc, color=colour, linestyle="-" if j == 0 else "--", label=r["name"] if j == 0 else None)
    ax.set(xlabel="minutes of training (2 CPU cores, evaluation excluded)", ylabel="held-out exact accuracy (%)",
           title="Accuracy against training time (solid: first seed, dashed: second)")
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(out / "accuracy_vs_time.png", dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=1200, help="optimizer steps per run (default: 1200)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="seeds of every row (default: 0 1)")
    parser.add_argument("--evals", type=int, default=2, help="evaluations per run (default: 2)")
    parser.add_argument("--only", nargs="+", choices=[r.key for r in ROWS], help="train these rows only")
    parser.add_argument("--data", type=Path, default=ROOT / "data" / "sudoku-40", help="dataset (built if missing)")
    parser.add_argument("--runs", type=Path, default=ROOT / "runs" / "comparisons", help="run directories")
    parser.add_argument("--out", type=Path, default=ROOT / "experiments" / "paper-comparisons",
                        help="where the table and plots go")
    parser.add_argument("--no-compile", dest="compile", action="store_false", help="train without torch.compile")
    parser.add_argument("--summarise-only", action="store_true", help="write the table from finished runs")
    args = parser.parse_args()

    if not args.summarise_only:
        if not args.data.exists():
            subprocess.run([*DATA_COMMAND, "-o", relative(args.data)], check=True, cwd=ROOT)
        start = time.perf_counter()
        for row in ROWS:
            if args.only and row.key not in args.only:
                continue
            for seed in args.seeds:
                train(row, seed, args)
        print(f"sweep took {(time.perf_counter() - start) / 60:.1f} minutes", flush=True)
    results = summarise(args)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(
        {"steps": args.steps, "seeds": args.seeds, "data_command": DATA_COMMAND, "results": results}, indent=1))
    write_table(results, args, args.out)
    if results:
        plot(results, args.out)
    print((args.out / "results.md").read_text())


if __name__ == "__main__":
    main()
