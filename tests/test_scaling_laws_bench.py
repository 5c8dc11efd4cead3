"""bench/scaling_laws.py: its runs at equal compute, the fits it reports, the docs section that
`--report` writes and `--check` compares, and (slow) one tiny run end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.bench_scripts import load_bench
from trm.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def bench():
    yield from load_bench("scaling_laws")


def test_runs_are_each_axis_once_with_the_base_shared(bench):
    study = bench.Study()
    runs = bench.all_runs(study)
    names = [r.name for r in runs]
    assert len(names) == len(set(names)) == 24  # 4 + 4 + 4 + 3 values, base shared by all four, 2 seeds
    base = [r for r in runs if r.is_base]
    assert [r.seed for r in base] == [0, 1]
    assert sorted(base[0].axes()) == sorted(bench.AXES)
    width = bench.select_runs(study, ["width"])
    assert sorted(r.name for r in width) == sorted(r.name for r in bench.runs_of_axis("width", (0, 1)))
    assert [r.name for r in bench.select_runs(study, ["D128-*"])] == [
        "D128-T2-n3-p16000-c1-s0",
        "D128-T2-n3-p16000-c1-s1",
    ]
    with pytest.raises(ConfigError, match="'height' matches no run; give an axis"):
        bench.select_runs(study, ["height"])


def test_runs_of_one_unit_spend_the_same_compute(bench):
    study = bench.Study()
    budget = study.unit_steps * bench.step_flops(bench.Run(64, 2, 3, 16000, 1.0, 0), study)
    for run in bench.runs_of_axis("width", (0,)) + bench.runs_of_axis("depth", (0,)):
        spent = bench.planned_steps(run, study) * bench.step_flops(run, study)
        assert abs(spent / budget - 1) < 0.5 / bench.planned_steps(run, study) + 1e-9, run.name
    steps = {r.D: bench.planned_steps(r, study) for r in bench.runs_of_axis("width", (0,))}
    assert steps[32] > steps[64] == study.unit_steps > steps[128] > steps[256]
    doubled = bench.Run(64, 2, 3, 16000, 2.0, 0)
    assert bench.planned_steps(doubled, study) == 2 * study.unit_steps


def fake_saved(bench, study, c50=4e13, width=0.4, seed=0):
    """Saved runs whose accuracy at 16 steps follows a logistic in ln FLOPs (half-way at `c50`),
    each the exact share of 1,000 puzzles drawn with that chance."""
    rng = np.random.default_rng(seed)
    saved = {}
    for run in bench.all_runs(study):
        flops = bench.planned_steps(run, study) * bench.step_flops(run, study)
        chance = 1 / (1 + (flops / c50) ** (-1 / width))
        exact = rng.binomial(1000, chance) / 1000
        per_step = [exact * (1 - 0.5**s if s < 16 else 1) for s in range(1, 17 if not run.is_base else 65)]
        saved[run.name] = {
            "run": {"D": run.D, "T": run.T, "n": run.n, "puzzles": run.puzzles, "units": run.units, "seed": run.seed},
            "steps": bench.planned_steps(run, study),
            "step_flops": bench.step_flops(run, study),
            "train_flops": flops,
            "train_seconds": 60.0,
            "heldout_puzzles": 1000,
            "exact_at_step": per_step,
            "environment": {"cpu": "test CPU", "capability": "AVX2"},
        }
        if run.is_base:
            saved[run.name]["exact_at_k"] = {"1": 0.5, "2": 0.7, "4": 0.8, "8": 0.805}
    return saved


def test_the_compute_law_recovers_a_known_logistic(bench):
    study = bench.Study()
    found = bench.fits(fake_saved(bench, study, c50=4e13, width=0.4), study)
    law = found["compute"]["law"]
    assert law["c50"] == pytest.approx(4e13, rel=0.1)
    assert law["width"] == pytest.approx(0.4, rel=0.15) and law["exponent"] == pytest.approx(-1 / law["width"])
    assert len(found["compute"]["per_seed"]) == 2
    assert found["trajectories"]["stops_paying_after"] == 4  # 4 -> 8 adds half a point
    exact = found["test_depth"]["exact"]
    assert exact == sorted(exact)


def test_the_logistic_counts_points_at_0_and_100_percent(bench):
    law = bench.logistic_in_log_compute([1e12, 1e13, 1e14], [0.0, 0.5, 1.0], [1000, 1000, 1000])
    assert law["c50"] == pytest.approx(1e13, rel=0.05)
    assert bench.logistic(law, 1e12) < 0.01 and bench.logistic(law, 1e14) > 0.99
    assert bench.logistic_in_log_compute([1e12, 1e13, 1e13], [0.0, 0.5, 0.6], [10, 10, 10]) is None


def test_compute_multiplier_inverts_the_compute_law_and_bounds_0_and_100_percent(bench):
    law = {"c50": 1e13, "width": 0.3}
    assert bench.compute_multiplier(law, float(bench.logistic(law, 2e13)), 1000, 1e13) == pytest.approx((2.0, "="))
    assert bench.compute_multiplier(law, 0.5, 1000, 4e13) == pytest.approx((0.25, "="))
    low, bound = bench.compute_multiplier(law, 0.0, 1000, 1e13)
    assert bound == "<=" and low == pytest.approx(float(np.exp(0.3 * np.log(0.0005 / 0.9995))))
    assert bench.compute_multiplier(law, 1.0, 1000, 1e13)[1] == ">="


def test_a_width_trend_gives_the_d512_prediction(bench):
    """Runs whose width D does with its FLOPs what the base shape does with (64 / D) times them: the
    multiplier falls as D^-1 and the prediction says how far a D=512 run needs to go for 50%."""
    study = bench.Study()
    saved = fake_saved(bench, study, c50=4e13, width=0.4)
    for run in bench.runs_of_axis("width", study.seeds):
        r = saved[run.name]
        chance = 1 / (1 + (r["train_flops"] * 64 / run.D / 4e13) ** (-1 / 0.4))
        r["exact_at_step"] = [chance] * len(r["exact_at_step"])
    found = bench.fits(saved, study)
    trend = found["width"]["law"]
    assert trend["widths"] == [64, 128, 256] and trend["exponent"] == pytest.approx(-1, abs=0.1)
    multipliers = {d: m for d, m, _ in found["width"]["multipliers"]}
    assert multipliers[32] == pytest.approx(2, rel=0.2) and multipliers[256] == pytest.approx(0.25, rel=0.2)
    claim = bench.predict(found, study)
    need = found["compute"]["law"]["c50"] / (trend["a"] * 512 ** trend["exponent"])
    assert f"reaches 50% at about {need:.2e} training FLOPs" in claim and "D^-" in claim


def test_stops_paying_and_power_law_edges(bench):
    assert bench.stops_paying([1, 2, 4, 8], [0.2, 0.5, 0.505, 0.9]) == 2
    assert bench.stops_paying([1, 2], [0.2, 0.5]) is None
    assert bench.power_law([1, 1], [0.5, 0.4]) is None  # one distinct x
    assert bench.power_law([1, 2], [0.5, 0.0]) is None  # no error left: no log
    law = bench.power_law([1, 10, 100], [1.0, 0.1, 0.01])
    assert law["exponent"] == pytest.approx(-1) and law["a"] == pytest.approx(1)


def test_report_writes_the_section_and_figures_and_check_sees_a_change(bench, tmp_path):
    study = bench.Study()
    results, images = tmp_path / "results", tmp_path / "images"
    document = tmp_path / "scaling.md"
    document.write_text("intro\n<!-- generated: scaling -->\nSTALE\n<!-- /generated -->\nend\n")
    saved = fake_saved(bench, study)
    missing = "D64-T3-n6-p16000-c1-s1"
    for name, value in saved.items():
        if name != missing:
            (results / "runs").mkdir(parents=True, exist_ok=True)
            (results / "runs" / f"{name}.json").write_text(json.dumps(value))
    assert bench.report(study, results, document, None) is False  # it was stale
    text = document.read_text()
    assert text.startswith("intro\n") and text.endswith("\nend\n") and "STALE" not in text
    assert "23 of 24 runs done" in text and "of the study's 1.1" in text and f"Not run yet (1): {missing}." in text
    assert "- Compute: exact accuracy at 16 steps = logistic" in text and "test CPU (AVX2)" in text
    assert not images.exists()
    assert json.loads((results / "results.json").read_text())["fits"]["compute"]["law"]["exponent"] < 0
    assert "Prediction, to check on a GPU" in text
    assert bench.report(study, results, document, None, write=False) is True
    changed = saved["D64-T2-n3-p16000-c1-s0"]
    changed["exact_at_step"][15] = 0.123
    (results / "runs" / "D64-T2-n3-p16000-c1-s0.json").write_text(json.dumps(changed))
    assert bench.report(study, results, document, None, write=False) is False


def test_report_draws_three_figures(bench, tmp_path):
    pytest.importorskip("matplotlib")
    study = bench.Study()
    results = tmp_path / "results"
    (results / "runs").mkdir(parents=True)
    for name, value in fake_saved(bench, study).items():
        (results / "runs" / f"{name}.json").write_text(json.dumps(value))
    document = tmp_path / "scaling.md"
    document.write_text("<!-- generated: scaling -->\n<!-- /generated -->\n")
    bench.report(study, results, document, tmp_path / "images")
    names = sorted(p.name for p in (tmp_path / "images").iterdir())
    assert names == ["scaling-compute.png", "scaling-depth.png", "scaling-width-data-k.png"]
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in (tmp_path / "images").iterdir())
    assert all(f"](images/{name})" in document.read_text() for name in names)


def test_committed_docs_section_is_what_the_saved_runs_give(bench):
    assert bench.main(["--check"]) == 0, "run: python bench/scaling_laws.py --report"


@pytest.mark.slow
def test_one_tiny_run_end_to_end_and_skipped_once_saved(bench, tmp_path, monkeypatch):
    monkeypatch.setitem(bench.BASE, "puzzles", 64)
    monkeypatch.setitem(bench.BASE, "D", 16)
    monkeypatch.setitem(bench.AXES, "puzzles", ("puzzles", (64,)))
    study = bench.Study(
        unit_steps=6, heldout=24, k_puzzles=6, max_k=4, test_depth=16, seeds=(0,),
        overrides=("model.N_sup=4", "compile=false", "lr_warmup_steps=2",
                   "data.eval_limit=16", "eval_batch_size=32", "log.tensorboard=false", "threads=1"),
    )  # fmt: skip
    base = [r for r in bench.all_runs(study) if r.is_base]
    results, work = tmp_path / "results", tmp_path / "work"
    assert bench.run_all(base, study, work, results, progress=False) == base
    saved = json.loads(bench.result_path(results, base[0]).read_text())
    assert saved["steps"] == saved["planned_steps"] == 6
    assert len(saved["exact_at_step"]) == 16 and saved["heldout_puzzles"] == 24
    assert list(saved["exact_at_k"]) == ["1", "2", "4"]
    assert saved["train_flops"] == 6 * saved["step_flops"] and saved["train_seconds"] > 0
    assert "model.hidden_size=16" in saved["command"] and saved["run"]["D"] == 16
    assert bench.run_all(base, study, work, results, progress=False) == []  # saved: not run again


def test_a_study_with_one_run_reports_it_without_a_law(bench, tmp_path):
    study = bench.Study()
    saved = fake_saved(bench, study)
    base = "D64-T2-n3-p16000-c1-s0"
    (tmp_path / "results" / "runs").mkdir(parents=True)
    (tmp_path / "results" / "runs" / f"{base}.json").write_text(json.dumps(saved[base]))
    found = bench.fits(bench.load_saved(tmp_path / "results"), study)
    assert found["compute"]["law"] is None and found["compute"]["per_seed"] == []
    document = tmp_path / "scaling.md"
    document.write_text("<!-- generated: scaling -->\n<!-- /generated -->\n")
    bench.report(study, tmp_path / "results", document, None)
    text = document.read_text()
    assert "1 of 24 runs done" in text and "- Compute:" not in text and "Prediction" not in text
