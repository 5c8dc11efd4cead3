"""`evaluate` and `trm eval`: reference semantics, adaptive halting, ARC end to end, clear errors."""

import importlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch

import trm
from tests.eval.fixtures import tiny_model, write_arc_dataset, write_maze_dataset, write_sudoku_dataset
from trm.cli import main
from trm.data.format import read_dataset
from trm.errors import CheckpointError, ConfigError
from trm.eval import evaluate, validate_submission
from trm.eval.adaptive import RunResult, run_steps
from trm.eval.arc import read_test_puzzles
from trm.eval.metrics import rules_check
from trm.model import load_model, save_model
from trm.tasks import SUDOKU
from trm.tasks.sudoku import validity as sudoku_validity

SUDOKU_MODEL = Path(trm.__file__).parent / "pretrained" / "sudoku-9x9"


@pytest.fixture(scope="module")
def sudoku_data(tmp_path_factory):
    return write_sudoku_dataset(tmp_path_factory.mktemp("data") / "sudoku", count=10)


@pytest.fixture(scope="module")
def sudoku_ckpt(tmp_path_factory):
    return save_model(tiny_model(11, 81), tmp_path_factory.mktemp("runs") / "sudoku")


def reference_metrics(model, data_dir, steps):
    """Exact accuracy per step and halting accuracy as the reference computes them: a rollout."""
    split = read_dataset(data_dir, "test")
    arrays = split.sets["all"]
    batch = {
        "inputs": torch.from_numpy(arrays.inputs.astype(np.int32)),
        "puzzle_identifiers": torch.zeros(arrays.num_examples, dtype=torch.int32),
    }
    out = model.rollout(batch, steps)
    labels = torch.from_numpy(arrays.labels.astype(np.int64))
    exact = (out["preds"] == labels).all(-1)
    halting = ((out["q_halt_logits"][-1] >= 0) == exact[-1]).float().mean()
    return exact.float().mean(-1).tolist(), float(halting)


def test_fixed_evaluation_matches_the_reference_semantics(sudoku_data, sudoku_ckpt):
    report = evaluate(sudoku_ckpt, sudoku_data, batch_size=4, progress=False)
    model = tiny_model(11, 81)
    per_step, halting = reference_metrics(model, sudoku_data, 4)
    assert report.task == "sudoku" and report.num_examples == 10 and report.max_steps == 4
    assert report.exact_accuracy_per_step == pytest.approx(per_step)
    assert report.exact_accuracy == pytest.approx(per_step[-1])
    assert report.halting_accuracy == pytest.approx(halting)
    assert report.mean_steps == 4 and report.supervision_steps == 40
    assert report.network_calls == 40 * report.network_calls_per_step == 40 * 2 * 3
    assert report.valid_rate is not None and report.valid_rate >= report.valid_not_label_rate


@pytest.mark.parametrize("backend", ["default", "onednn"])
def test_the_report_names_the_kernels_it_ran_on(sudoku_data, sudoku_ckpt, backend):
    # Rounding differs between them, and over many recursions so can a few answers: a figure
    # is reproduced with the kernels it was measured with.
    report = evaluate(str(sudoku_ckpt), sudoku_data, backend=backend, progress=False)
    assert report.backend == backend and report.to_json()["backend"] == backend
    assert any(line.split()[:2] == ["backend", backend] for line in report.table().splitlines())


def test_adaptive_evaluation_computes_fewer_steps(sudoku_data, sudoku_ckpt):
    fixed = evaluate(sudoku_ckpt, sudoku_data, batch_size=4, progress=False, max_steps=6)
    adaptive = evaluate(sudoku_ckpt, sudoku_data, batch_size=4, progress=False, max_steps=6, halt="adaptive")
    assert fixed.supervision_steps == 60
    assert adaptive.supervision_steps == round(adaptive.mean_steps * 10) < 60
    assert len(adaptive.exact_accuracy_per_step) == 6


def test_limit_evaluates_the_first_examples(sudoku_data, sudoku_ckpt):
    report = evaluate(sudoku_ckpt, sudoku_data, batch_size=4, limit=5, progress=False)
    assert report.num_examples == 5 and report.supervision_steps == 20


def test_maze_validity_is_reported(tmp_path):
    data = write_maze_dataset(tmp_path / "maze")
    report = evaluate(tiny_model(6, 25), data, batch_size=3, progress=False)
    assert report.task == "maze" and report.num_examples == 4 and report.valid_rate is not None


def test_arc_with_true_answers_scores_one_and_writes_a_valid_submission(tmp_path, monkeypatch):
    data = write_arc_dataset(tmp_path / "arc")
    split = read_dataset(data, "test")
    labels = torch.from_numpy(split.sets["all"].labels.astype(np.int64))
    rows = iter(range(len(labels)))

    def oracle(model, batch, max_steps, adaptive=False, on_step=None, halt_threshold=0.0, accept=None):
        """Predict the label canvas of every row: the variants all vote for the truth."""
        n = batch["inputs"].shape[0]
        preds = labels[[next(rows) for _ in range(n)]]
        return RunResult(preds=preds, q_halt=torch.ones(n), steps=torch.ones(n, dtype=torch.long))

    # trm.eval.evaluate is also the name of the function trm.eval exports; take the module.
    monkeypatch.setattr(importlib.import_module("trm.eval.evaluate"), "run_steps", oracle)
    model = tiny_model(12, 900, puzzle_emb_ndim=32, puzzle_emb_len=1, num_puzzle_identifiers=20)
    report = evaluate(model, data, batch_size=5, progress=False)
    assert report.task == "arc" and report.arc_tasks_scored == 2
    assert report.pass_at_k == {k: 1.0 for k in (1, 2, 5, 10, 100, 1000)}
    tasks = read_test_puzzles(data)
    validate_submission(report.submission, tasks)
    assert report.submission["task_b"][0]["attempt_1"] == tasks["task_b"]["test"][0]["output"]


@pytest.mark.slow
def test_arc_evaluation_runs_a_real_model(tmp_path):
    data = write_arc_dataset(tmp_path / "arc", num_aug=1)
    model = tiny_model(
        12,
        900,
        puzzle_emb_ndim=16,
        puzzle_emb_len=1,
        num_puzzle_identifiers=20,
        mixer="attention",
        pos_encodings="rope",
        hidden_size=16,
    )
    report = evaluate(model, data, batch_size=8, max_steps=2, progress=False)
    assert set(report.pass_at_k) == {1, 2, 5, 10, 100, 1000}
    validate_submission(report.submission, read_test_puzzles(data))


def test_a_checkpoint_for_another_task_is_refused(sudoku_data, tmp_path):
    with pytest.raises(CheckpointError, match=r"vocab_size 6 and seq_len 25, but .*dataset.json has vocab_size 11"):
        evaluate(tiny_model(6, 25), sudoku_data, progress=False)
    with pytest.raises(CheckpointError, match="seq_len 16"):
        evaluate(tiny_model(11, 16), sudoku_data, progress=False)
    arc_data = write_arc_dataset(tmp_path / "arc")
    few = tiny_model(12, 900, puzzle_emb_ndim=32, puzzle_emb_len=1, num_puzzle_identifiers=3)
    with pytest.raises(CheckpointError, match="3 puzzle embeddings"):
        evaluate(few, arc_data, progress=False)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(halt="sometimes"), "halt must be one of"),
        (dict(max_steps=0), "max_steps must be at least 1"),
        (dict(batch_size=0), "batch_size must be at least 1"),
        (dict(device="tpu"), "device 'tpu' is not a device name"),
        (dict(cycles=0), "cycles \\(the model's T\\) must be a whole number of at least 1, got 0"),
    ],
)
def test_bad_options_are_refused(sudoku_data, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        evaluate(tiny_model(11, 81), sudoku_data, progress=False, **kwargs)


def test_valid_halting_counts_the_steps_and_stops_only_on_answers_that_keep_the_rules(tmp_path, capsys):
    data = write_sudoku_dataset(tmp_path / "sudoku", count=24)
    reports = {
        halt: evaluate(SUDOKU_MODEL, data, halt=halt, batch_size=8, progress=False)
        for halt in ("fixed", "adaptive", "valid")
    }
    fixed, adaptive, valid = reports.values()
    assert valid.halt == "valid" and valid.to_json()["halt"] == "valid"
    assert valid.supervision_steps == round(valid.mean_steps * 24) < fixed.supervision_steps == 24 * 16
    assert valid.mean_steps >= adaptive.mean_steps and valid.valid_rate >= adaptive.valid_rate
    assert fixed.capped_rate is None and "ran to the step cap" in valid.table()
    assert valid.capped_rate < 1 and 16 * valid.capped_rate <= valid.mean_steps  # a capped puzzle took 16 steps
    assert len(valid.exact_accuracy_per_step) == 16
    # The halting loop itself: every puzzle that stopped before the cap stopped on a valid answer
    # its halting head was sure of.
    split = read_dataset(data, "test").sets["all"]
    batch = {
        "inputs": torch.from_numpy(split.inputs.astype(np.int64)),
        "puzzle_identifiers": torch.zeros(24, dtype=torch.long),
    }
    model = load_model(SUDOKU_MODEL)
    result = run_steps(model, batch, 16, adaptive=True, accept=rules_check(SUDOKU))
    early = (result.steps < 16).numpy()
    assert early.any() and (result.q_halt.numpy()[early] > 0).all()
    assert sudoku_validity(split.inputs, result.preds.numpy())[early].all()
    # ... and from the command line, with its own report.
    out = tmp_path / "valid.json"
    argv = ["eval", str(SUDOKU_MODEL), "--data", str(data), "--halt", "valid", "--quiet", "--output", str(out)]
    assert main(argv) == 0
    assert "valid halting" in capsys.readouterr().out
    assert json.loads(out.read_text())["mean_steps"] == pytest.approx(valid.mean_steps)


def test_valid_halting_needs_a_task_with_rules(tmp_path):
    model = tiny_model(12, 900, puzzle_emb_ndim=32, puzzle_emb_len=1, num_puzzle_identifiers=20)
    with pytest.raises(ConfigError, match="ARC has no verifier: use 'adaptive' or 'fixed'"):
        evaluate(model, write_arc_dataset(tmp_path / "arc"), halt="valid", progress=False)


def test_command_line_writes_the_report_and_says_when_it_replaces_one(sudoku_data, sudoku_ckpt, capsys):
    argv = ["eval", str(sudoku_ckpt), "--data", str(sudoku_data), "--batch-size", "5", "--quiet"]
    assert main(argv) == 0
    printed = capsys.readouterr()
    path = sudoku_ckpt / "eval" / "sudoku-test-fixed" / "report.json"
    assert "exact accuracy" in printed.out and f"report written to {path}" in printed.out
    report = json.loads(path.read_text())
    assert report["num_examples"] == 10 and len(report["exact_accuracy_per_step"]) == 4
    assert main(argv + ["--halt", "adaptive", "--max-steps", "8"]) == 0
    assert (sudoku_ckpt / "eval" / "sudoku-test-adaptive-k8" / "report.json").exists()
    assert "replacing" not in capsys.readouterr().err
    assert main(argv) == 0
    assert f"note: replacing the existing {path}" in capsys.readouterr().err


def test_command_line_errors_are_one_line_and_exit_2(sudoku_data, tmp_path, capsys):
    maze_ckpt = save_model(tiny_model(6, 25), tmp_path / "maze")
    cases = [
        (["eval", str(maze_ckpt), "--data", str(sudoku_data)], "trained for another task"),
        (["eval", str(tmp_path / "missing"), "--data", str(sudoku_data)], "checkpoint not found"),
        (["eval", str(maze_ckpt), "--data", str(tmp_path / "nodata")], "dataset directory not found"),
        (["eval", str(maze_ckpt), "--data", str(sudoku_data), "--device", "cuda:0"], "CUDA is not available"),
        (["eval", str(maze_ckpt), "--data", str(sudoku_data), "--device", "tpu"], "'tpu' is not a device name"),
        (["eval", str(maze_ckpt), "--data", str(sudoku_data), "--device", "meta"], "valid here: cpu"),
        (
            ["eval", str(save_model(tiny_model(11, 81), tmp_path / "s")), "--data", str(sudoku_data), "--limit", "1"]
            + ["--output", "/dev/null/report.json"],
            "--output /dev/null/report.json: cannot be written",
        ),
    ]
    for argv, message in cases:
        if "cuda" in argv[-1] and torch.cuda.is_available():
            continue
        assert main(argv + ["--quiet"]) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err


def test_help_has_examples(capsys):
    with pytest.raises(SystemExit):
        main(["eval", "--help"])
    out = capsys.readouterr().out
    assert "examples:" in out and "--halt" in out and "--max-steps" in out and "--device" in out


def test_a_training_run_directory_evaluates_its_best_checkpoint(sudoku_data, tmp_path, capsys):
    from trm.eval.evaluate import resolve_checkpoint

    run = tmp_path / "run"
    for step in (500, 1000):
        save_model(tiny_model(11, 81), run / "checkpoints" / f"step_{step:08d}")
    assert resolve_checkpoint(run) == run / "checkpoints" / "step_00001000"
    save_model(tiny_model(11, 81), run / "best")
    assert resolve_checkpoint(run) == run / "best"
    assert main(["eval", str(run), "--data", str(sudoku_data), "--quiet", "--limit", "2"]) == 0
    report = json.loads((run / "eval" / "best-sudoku-test-fixed" / "report.json").read_text())
    assert report["checkpoint"] == str(run / "best")
    step = run / "checkpoints" / "step_00000500"
    assert main(["eval", str(step), "--data", str(sudoku_data), "--quiet", "--limit", "2"]) == 0
    assert (run / "eval" / "step_00000500-sudoku-test-fixed" / "report.json").exists()


def test_a_shipped_model_reports_to_the_working_directory_not_into_the_package(tmp_path, monkeypatch):
    from pathlib import Path

    import trm
    from trm.cli.eval import default_report_path

    shipped = Path(trm.__file__).parent / "pretrained" / "sudoku-9x9"
    monkeypatch.chdir(tmp_path)
    path = default_report_path(str(shipped), "data/sudoku-test-40", "test", "adaptive", None, 2.0)
    assert path == Path("eval") / "sudoku-9x9-sudoku-test-40-test-adaptive-q2" / "report.json"
    (tmp_path / "mine").mkdir()
    own = default_report_path(str(tmp_path / "mine"), "data/sudoku-test-40", "test", "fixed", None)
    assert own == tmp_path / "mine" / "eval" / "sudoku-test-40-test-fixed" / "report.json"


# ---------------------------------------------------------------------- exactness with a trained model


@pytest.fixture(scope="module")
def card_28_givens(tmp_path_factory):
    """The shipped Sudoku model's hardest held-out set, as its model card builds it (card.json)."""
    from trm.data.build import build_dataset as build_sudoku_dataset
    from trm.data.sudoku import SudokuSource as SudokuBuildConfig

    card = json.loads((SUDOKU_MODEL / "card.json").read_text())
    spec = card["datasets"]["data/sudoku-test-28"]
    out = tmp_path_factory.mktemp("card") / "sudoku-test-28"
    build_sudoku_dataset(SudokuBuildConfig(output=out, **spec), progress=False)
    return card["data"]["data/sudoku-test-28"], out


def test_evaluation_of_a_trained_model_counts_exactly_what_its_rollouts_predict(card_28_givens):
    """On 28-given puzzles the shipped model is right on 6% after one step and 97% after 16, so
    every per-step count depends on each puzzle's own predictions. Batches of 48 leave a short
    last batch (300 = 6 x 48 + 12); the direct computation runs the same batches."""
    stated, data = card_28_givens
    count, batch_size = 300, 48
    report = evaluate(SUDOKU_MODEL, data, halt="fixed", limit=count, batch_size=batch_size, progress=False)

    model = load_model(SUDOKU_MODEL)
    arrays = read_dataset(data, "test").sets["all"]
    inputs = torch.from_numpy(arrays.inputs[:count].astype(np.int64))
    labels = torch.from_numpy(arrays.labels[:count].astype(np.int64))
    preds, q_halt = [], []
    with torch.no_grad():
        for rows in torch.arange(count).split(batch_size):
            batch = {"inputs": inputs[rows], "puzzle_identifiers": torch.zeros(len(rows), dtype=torch.long)}
            out = model.rollout(batch)
            preds.append(out["preds"])
            q_halt.append(out["q_halt_logits"][-1])
    preds, q_halt = torch.cat(preds, dim=1), torch.cat(q_halt)  # (16, 300, 81), (300,)
    right = preds == labels  # Sudoku labels every cell
    exact = right.all(-1)  # (16, 300)

    assert report.num_examples == count
    assert [round(a * count) for a in report.exact_accuracy_per_step] == exact.sum(-1).tolist()
    assert report.exact_accuracy * count == pytest.approx(int(exact[-1].sum()), abs=1e-9)
    assert report.token_accuracy == pytest.approx(right[-1].double().mean().item(), abs=1e-12)
    assert report.halting_accuracy * count == pytest.approx(int(((q_halt >= 0) == exact[-1]).sum()), abs=1e-9)
    valid = sudoku_validity(arrays.inputs[:count], preds[-1].numpy())
    assert report.valid_rate * count == pytest.approx(int(valid.sum()), abs=1e-9)
    # ... and these 300 puzzles are a sample of the card's 1,000: its figures within 3 standard errors.
    for k in (1, 2, 4, 16):
        p = stated["fixed_exact_per_step"][k - 1]
        assert abs(report.exact_accuracy_per_step[k - 1] - p) <= 3 * (p * (1 - p) / count) ** 0.5 + 1e-9, k


def test_a_deeper_t_computes_in_one_step_what_the_model_computes_in_several(card_28_givens):
    """The weights do not depend on T: the shipped model (T=2) run with cycles=4 is, after each of
    8 steps, exactly the model after every second of 16 steps, for twice the calls per step."""
    _, data = card_28_givens
    own = evaluate(SUDOKU_MODEL, data, max_steps=16, limit=100, backend="default", progress=False)
    deeper = evaluate(SUDOKU_MODEL, data, max_steps=8, limit=100, backend="default", progress=False, cycles=4)
    assert own.model["T"] == 2 and deeper.model["T"] == 4
    assert deeper.network_calls_per_step == 2 * own.network_calls_per_step
    assert deeper.exact_accuracy_per_step == own.exact_accuracy_per_step[1::2]
    assert deeper.exact_accuracy_per_step[0] > own.exact_accuracy_per_step[0]  # the counts differ step by step


def test_the_command_line_runs_another_t_and_reports_it_apart(sudoku_data, sudoku_ckpt, capsys):
    argv = ["eval", str(sudoku_ckpt), "--data", str(sudoku_data), "--quiet"]
    assert main(argv + ["--cycles", "4"]) == 0
    report = json.loads((sudoku_ckpt / "eval" / "sudoku-test-fixed-T4" / "report.json").read_text())
    assert report["model"]["T"] == 4 and report["network_calls_per_step"] == 4 * 3
    with pytest.raises(SystemExit) as refused:
        main(argv + ["--cycles", "0"])
    assert refused.value.code == 2
    assert "--cycles: must be a positive integer, got 0" in capsys.readouterr().err
