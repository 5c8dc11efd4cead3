"""bench/test_time_scaling.py: its point filter, resumable runs, and the docs section that
`--report` writes and `--check` (and this file) compares with the committed results."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tests.bench_scripts import load_bench
from trm.errors import ConfigError
from trm.eval.scaling import ScalingReport

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench():
    yield from load_bench("test_time_scaling")


def names(points) -> list[str]:
    return [p.name for p in points]


def fake_report(plan, accuracy: float = 0.5) -> ScalingReport:
    """A report as evaluate_trajectories makes it, with made-up numbers."""
    rules = ["verify"] if plan.select == "verify" else ["halt", "vote"]
    ks = [k for k in (1, 2, 4, 8, 16, 32, 64) if k <= plan.trajectories]
    return ScalingReport(
        checkpoint="model",
        data="data",
        split="test",
        task="sudoku",
        plan=vars(plan).copy(),
        num_puzzles=10,
        exact_accuracy=accuracy,
        pass_at_k=0.9,
        valid_rate=0.8,
        valid_not_label_rate=0.0,
        accuracy_at_k={rule: {k: accuracy * k / ks[-1] for k in ks} for rule in rules},
        mean_trajectories=3.0,
        mean_steps=40.0,
        network_calls_per_step=4,
        network_calls=1600,
        wall_time_s=2.0,
        puzzles_per_second=5.0,
        time_per_puzzle_s={"median": 0.1, "mean": 0.2, "p90": 0.3, "max": 0.4},
        device="cpu",
    )


@pytest.fixture
def fake_runs(bench, monkeypatch):
    """evaluate_trajectories and the dataset builder replaced: records the plans run."""
    plans, built = [], []

    def evaluate(model, data_dir, plan, **kwargs):
        plans.append(plan)
        return fake_report(plan)

    monkeypatch.setattr(bench, "evaluate_trajectories", evaluate)
    monkeypatch.setattr(bench, "build_datasets", lambda work, names, royle, progress: built.append(names))
    return plans, built


@pytest.mark.parametrize(
    "results, doc, images",
    [
        ("results.json", "test-time-scaling.md", "images"),
        ("sudoku-hard-results.json", "test-time-scaling-sudoku-hard.md", "images/sudoku-hard"),
    ],
)
def test_the_committed_section_equals_the_regenerated_one(bench, results, doc, images):
    results = ROOT / "experiments" / "test-time-scaling" / results
    if not results.exists():
        pytest.skip("no committed results")
    text, committed = (ROOT / "docs" / doc).read_text(), json.loads(results.read_text())
    regenerated = bench.regenerate(text, committed, images)
    assert regenerated == text, f"run: python bench/test_time_scaling.py --report ... (docs/{doc} is stale)"
    for plot in ("tts-k", "tts-steps"):  # the plots it links exist
        for name in committed["datasets"]:
            link = f"({images}/{plot}-{name}.png)"
            assert link not in text or (ROOT / "docs" / images / f"{plot}-{name}.png").exists(), link


def test_every_point_once_and_patterns_select_by_part(bench):
    every = names(bench.select_points(None))
    assert len(every) == len(set(every)) == 3 * 3 * 2 * len(bench.STEP_LIMITS)
    assert names(bench.select_points(["royle:both:verify:32"])) == ["royle:both:verify:32"]
    halt = names(bench.select_points(["maze:*:halt"]))
    limits = len(bench.STEP_LIMITS)
    assert len(halt) == 3 * limits and all(n.startswith("maze:") and ":halt:" in n for n in halt)
    assert len(bench.select_points(["hard"])) == 3 * 2 * limits
    assert names(bench.select_points(["*:noise:verify:1?"])) == [
        "hard:noise:verify:16",
        "royle:noise:verify:16",
        "maze:noise:verify:16",
    ]
    # overlapping patterns give each point once, in the grid's order
    both = names(bench.select_points(["maze:views:verify:64", "maze:views:verify"]))
    assert both == [f"maze:views:verify:{s}" for s in bench.STEP_LIMITS]


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("maze:*:*:17", "matches no point"),
        ("sudoku", "matches no point"),
        ("a:b:c:d:e", "is not DATASET"),
        ("maze::verify", "is not DATASET"),
    ],
)
def test_a_bad_pattern_is_refused(bench, pattern, message):
    with pytest.raises(ConfigError, match=message):
        bench.select_points([pattern])


def test_a_point_is_its_plan(bench):
    settings = bench.Settings(trajectories=None, noise=0.3, seed=5, puzzles=None)
    views = bench.Point("hard", "views", "verify", 32).plan(settings)
    assert (views.trajectories, views.views, views.noise, views.max_steps, views.seed) == (64, True, 0.0, 32, 5)
    noise = bench.Point("maze", "noise", "halt", 16).plan(settings)
    assert (noise.trajectories, noise.views, noise.noise, noise.select) == (32, False, 0.3, "halt")
    both = bench.Point("royle", "both", "verify", 64).plan(bench.Settings(8, 0.1, 0, 50))
    assert (both.trajectories, both.views, both.noise) == (8, True, 0.1)


def test_a_saved_point_is_not_run_again(bench, fake_runs, tmp_path):
    plans, built = fake_runs
    settings = bench.Settings(trajectories=4, noise=0.2, seed=0, puzzles=10)
    points = bench.select_points(["maze:*:*:16"])
    assert bench.run_points(tmp_path, points, settings, progress=False) == points
    assert len(plans) == 6 and built == [["maze"]]
    saved = json.loads(bench.point_path(tmp_path, points[0], settings).read_text())
    assert saved["point"] == "maze:views:verify:16" and saved["report"]["plan"]["trajectories"] == 4

    assert bench.run_points(tmp_path, points, settings, progress=False) == []
    assert len(plans) == 6 and built[-1] == []
    # another sigma reruns the points with noise, not the views ones; fewer puzzles rerun all
    rerun = bench.run_points(tmp_path, points, bench.Settings(4, 0.1, 0, 10), progress=False)
    assert {p.variant for p in rerun} == {"noise", "both"} and len(rerun) == 4
    assert len(bench.run_points(tmp_path, points, bench.Settings(4, 0.2, 0, 5), progress=False)) == 6
    assert "done" in bench.list_points(tmp_path, points, settings)
    assert "not run" not in bench.list_points(tmp_path, points, settings)


def test_the_table_shows_what_ran_and_marks_the_rest_not_run(bench, fake_runs, tmp_path):
    settings = bench.Settings(trajectories=4, noise=0.2, seed=0, puzzles=10)
    bench.run_points(tmp_path, bench.select_points(["hard:views"]), settings, progress=False)
    results = bench.collect(tmp_path, settings, None)
    assert sorted(results["points"]) == sorted(names(bench.select_points(["hard:views"])))
    table = bench.dataset_table(results, "hard")
    assert table[0].startswith("| variant | rule | steps | K=1 | K=2 | K=4 | pass@K |")
    rows = {tuple(cell.strip() for cell in line.split("|")[1:4]): line for line in table[2:] if line.startswith("|")}
    limits = len(bench.STEP_LIMITS)
    assert len(rows) == 3 * limits  # the views points ran: verify, halt and vote at every step limit
    # fake accuracy at K is 0.5 * K / 4
    assert "| 12.5% | 25.0% | 50.0% | 90.0% | 80.0% |" in rows[("views", "verify", "16")]
    assert "| 50.0% | 90.0% | - |" in rows[("views", "vote", "32")]  # valid rate belongs to the halt rule
    assert not any(key[0] in ("noise", "both") for key in rows)
    assert table[-1].startswith(f"Not run yet ({2 * 2 * limits} points") and "noise:verify:16" in table[-1]
    maze = bench.dataset_table(results, "maze")
    assert maze[0] == "" and maze[1].startswith(f"Not run yet ({3 * 2 * limits} points") and "%" not in maze[1]
    measured_on = [line for line in bench.generated_section(results) if line.startswith("Measured on: ")]
    assert measured_on and f"({torch.backends.cpu.get_cpu_capability()}), " in measured_on[0]  # the kernels' CPU kind


def test_a_changed_number_fails_the_check(bench, fake_runs, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    settings = ["--trajectories", "4", "--puzzles", "10"]
    files = ["--results", str(tmp_path / "results.json"), "--doc", str(tmp_path / "doc.md")]
    files += ["--images", str(tmp_path / "images")]
    (tmp_path / "doc.md").write_text("before\n<!-- generated: test-time-scaling -->\n<!-- /generated -->\nafter\n")
    bench.run_points(tmp_path / "work", bench.select_points(["royle:both"]), bench.Settings(4, 0.2, 0, 10), False)
    assert bench.main([*settings, *files, "--work", str(tmp_path / "work"), "--report"]) == 0
    text = (tmp_path / "doc.md").read_text()
    assert text.startswith("before\n") and text.endswith("\nafter\n")
    assert f"{len(bench.select_points(['royle:both']))} of {len(bench.all_points())} points run" in text
    assert sorted(p.name for p in (tmp_path / "images").iterdir()) == ["tts-k-royle.png", "tts-steps-royle.png"]
    assert "](../images/tts-k-royle.png)" not in text and "](images/tts-k-royle.png)" in text
    assert bench.main([*files, "--check"]) == 0
    # a document elsewhere links the same plots from where it is
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "doc.md").write_text((tmp_path / "doc.md").read_text())
    moved = ["--results", str(tmp_path / "results.json"), "--doc", str(tmp_path / "docs" / "doc.md")]
    assert bench.main([*moved, "--images", str(tmp_path / "images"), "--check"]) == 1
    assert bench.main([*settings, *moved, "--images", str(tmp_path / "images"), "--work", str(tmp_path / "work"),
                       "--report"]) == 0  # fmt: skip
    assert "](../images/tts-k-royle.png)" in (tmp_path / "docs" / "doc.md").read_text()
    results = json.loads((tmp_path / "results.json").read_text())
    results["points"]["royle:both:halt:16"]["accuracy_at_k"]["vote"]["4"] = 0.123
    (tmp_path / "results.json").write_text(json.dumps(results))
    assert bench.main([*files, "--check"]) == 1
    assert "out of date" in capsys.readouterr().out


def test_the_report_keeps_committed_points_of_the_same_settings(bench, fake_runs, tmp_path):
    settings = bench.Settings(trajectories=4, noise=0.2, seed=0, puzzles=10)
    bench.run_points(tmp_path / "a", bench.select_points(["maze:views:verify"]), settings, progress=False)
    bench.run_points(tmp_path / "b", bench.select_points(["hard:noise:halt:64"]), settings, progress=False)
    merged = bench.collect(tmp_path / "b", settings, bench.collect(tmp_path / "a", settings, None))
    assert len(merged["points"]) == 1 + len(bench.STEP_LIMITS)
    assert list(merged["points"]) == ["hard:noise:halt:64", *names(bench.select_points(["maze:views:verify"]))]
    other = bench.Settings(trajectories=4, noise=0.5, seed=0, puzzles=10)
    assert len(bench.collect(tmp_path / "b", other, bench.collect(tmp_path / "a", settings, None))["points"]) == 0


def test_points_of_a_model_since_changed_are_left_out_of_the_report(bench, fake_runs, tmp_path, capsys):
    from tests.eval.fixtures import tiny_model
    from trm.model import save_model

    model = save_model(tiny_model(11, 81), tmp_path / "mine")
    settings = bench.Settings(trajectories=4, noise=0.2, seed=0, puzzles=10, sudoku_model=str(model))
    bench.run_points(tmp_path / "work", bench.select_points(["royle:views:verify:16"]), settings, progress=False)
    committed = bench.collect(tmp_path / "work", settings, None)
    assert list(committed["points"]) == ["royle:views:verify:16"] and capsys.readouterr().err == ""

    config = json.loads((model / "config.json").read_text())
    config["model"]["T"] += 1  # the same weights run deeper: not the model the numbers were measured with
    (model / "config.json").write_text(json.dumps(config))
    assert bench.collect(tmp_path / "work", settings, None)["points"] == {}
    assert bench.collect(None, settings, committed)["points"] == {}
    assert "royle:views:verify:16 left out: it was measured with another" in capsys.readouterr().err
    # the model as it was: its points count again, and so do points saved before fingerprints existed
    config["model"]["T"] -= 1
    (model / "config.json").write_text(json.dumps(config))
    assert list(bench.collect(None, settings, committed)["points"]) == ["royle:views:verify:16"]
    del committed["points"]["royle:views:verify:16"]["model_fingerprint"]
    config["model"]["T"] += 1
    (model / "config.json").write_text(json.dumps(config))
    assert list(bench.collect(None, settings, committed)["points"]) == ["royle:views:verify:16"]


def test_another_sudoku_model_runs_apart_from_the_default(bench, monkeypatch, tmp_path):
    models = []

    def evaluate(model, data_dir, plan, **kwargs):
        models.append(Path(model))
        return fake_report(plan)

    monkeypatch.setattr(bench, "evaluate_trajectories", evaluate)
    monkeypatch.setattr(bench, "build_datasets", lambda work, names, royle, progress: None)
    default = bench.Settings(trajectories=4, noise=0.2, seed=0, puzzles=10)
    other = bench.Settings(trajectories=4, noise=0.2, seed=0, puzzles=10, sudoku_model=str(tmp_path / "mine"))
    points = bench.select_points(["royle:views:verify:16", "maze:views:verify:16"])
    bench.run_points(tmp_path / "work", points, default, progress=False)
    assert models == [bench.PRETRAINED / "sudoku-9x9", bench.PRETRAINED / "maze-11x11"]
    # the Sudoku point runs again with the other model (the maze keeps its own model and its saved point)
    assert bench.run_points(tmp_path / "work", points, other, progress=False) == points[:1]
    assert models[-1] == tmp_path / "mine"
    assert "sudoku_model" not in default.to_json() and other.to_json()["sudoku_model"] == str(tmp_path / "mine")
    results = bench.collect(tmp_path / "work", other, bench.collect(tmp_path / "work", default, None))
    assert results["datasets"]["royle"]["model"] == str(tmp_path / "mine")
    assert results["datasets"]["maze"]["model"] == "trm/pretrained/maze-11x11"
    shipped = bench.Settings(None, 0.2, 0, None, sudoku_model="sudoku-hard")
    assert shipped.model_for(bench.DATASETS["hard"]) == bench.PRETRAINED / "sudoku-hard"
    assert shipped.model_label(bench.DATASETS["hard"]) == "trm/pretrained/sudoku-hard"


def test_a_missing_sudoku_model_is_a_clear_error(bench, tmp_path):
    with pytest.raises(SystemExit, match="no-such-model is not a model directory"):
        bench.settings_of(bench.parse_args(["--sudoku-model", "no-such-model"]))


def test_running_points_on_the_cpu_keeps_freed_memory_for_the_next_step(bench, fake_runs, monkeypatch, tmp_path):
    # Without it glibc hands every step's large activations back and faults them in again: the
    # full Royle point took 2.4 times as long, half its CPU time in the kernel.
    calls = []
    monkeypatch.setattr(bench, "reuse_freed_memory", lambda: calls.append(True))
    options = ["--points", "maze:views:verify:16", "--puzzles", "10", "--trajectories", "4", "--quiet"]
    assert bench.main([*options, "--work", str(tmp_path / "cpu")]) == 0
    assert calls == [True] and len(fake_runs[0]) == 1
    assert bench.main([*options, "--work", str(tmp_path / "gpu"), "--device", "cuda"]) == 0
    assert calls == [True] and len(fake_runs[0]) == 2  # the GPU's memory is not glibc's
