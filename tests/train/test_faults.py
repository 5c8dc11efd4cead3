"""Faults a run must survive: divergence, signals, kill -9, corrupted checkpoints, a second run
in the same directory, bad overrides on resume."""

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.train.test_train import final_weights, read_metrics, tiny_config
from tests.train.test_train import sudoku_data as _sudoku_data
from trm.cli import main
from trm.errors import CheckpointError, TRMError
from trm.model import TRM
from trm.model.checkpoint import load_model, save_model
from trm.train.checkpoint import checkpoint_dirs, first_non_finite, run_lock
from trm.train.config import dump_config
from trm.train.loop import Trainer, TrainingDiverged, train
from trm.train.metrics_log import metrics_up_to
from trm.train.optim import AdamATan2

REPO = Path(__file__).resolve().parents[2]
sudoku_data = _sudoku_data  # the training tests' module-scoped dataset fixture, shared here


def saved_tensors(run: Path) -> dict[str, dict]:
    """Every tensor of every checkpoint and of best/ on disk, by file."""
    found = {}
    for checkpoint in checkpoint_dirs(run):
        found[str(checkpoint / "train_state.pt")] = torch.load(checkpoint / "train_state.pt", weights_only=True)
    for directory in [*checkpoint_dirs(run), run / "best"]:
        if (directory / "model.safetensors").exists():
            found[str(directory / "model.safetensors")] = load_file(directory / "model.safetensors")
    return found


def assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


# ---------------------------------------------------------------------- no non-finite state on disk


def _poison(trainer: Trainer, target: str) -> None:
    with torch.no_grad():
        if target == "weights":
            next(trainer.model.parameters()).view(-1)[0] = float("inf")
        elif target == "ema":
            next(iter(trainer.ema.shadow.values())).view(-1)[0] = float("nan")
        elif target == "puzzle_embeddings":
            trainer.model.puzzle_emb.weight[0, 0] = float("nan")
        elif target == "optimizer":
            state = next(iter(trainer.optimizer.state.values()))
            state["exp_avg_sq"].view(-1)[0] = float("inf")


@pytest.mark.parametrize("target", ["weights", "ema", "puzzle_embeddings", "optimizer"])
@pytest.mark.parametrize("at_step", [4, 6])  # 4: the first checkpoint; 6: an evaluation after it
def test_non_finite_state_is_never_saved(sudoku_data, tmp_path, monkeypatch, target, at_step):
    run = tmp_path / "run"
    original = Trainer.train_step

    def step_then_poison(self, batch):
        metrics = original(self, batch)  # the loss of this step is finite; the update is not
        if self.progress.step == at_step:
            _poison(self, target)
        return metrics

    monkeypatch.setattr(Trainer, "train_step", step_then_poison)
    with pytest.raises(TrainingDiverged, match=f"by step {at_step}") as caught:
        train(tiny_config(sudoku_data, run, "threads=1"))
    message = str(caught.value)
    assert "although the loss was still finite" in message
    if at_step == 4:
        assert checkpoint_dirs(run) == [] and not (run / "best").exists()
        assert "No checkpoint was saved before" in message
    else:
        assert [p.name for p in checkpoint_dirs(run)] == ["step_00000004"]
        assert f"The last checkpoint, {run / 'checkpoints' / 'step_00000004'}," in message
        assert f"trm train --resume {run}" in message
    for path, tensors in saved_tensors(run).items():
        assert first_non_finite(tensors) is None, path


def test_a_diverging_learning_rate_exits_with_a_true_message(sudoku_data, tmp_path):
    run = tmp_path / "run"
    config = tiny_config(sudoku_data, run, "threads=1", "lr=1e6", "lr_warmup_steps=1", "eval_interval=1",
                         "checkpoint_interval=1", "keep_last=40", "max_steps=40")
    with pytest.raises(TrainingDiverged) as caught:
        train(config)
    found = checkpoint_dirs(run)
    if found:
        assert f"The last checkpoint, {found[-1]}," in str(caught.value)
    else:
        assert "No checkpoint was saved before" in str(caught.value)
    for path, tensors in saved_tensors(run).items():
        assert first_non_finite(tensors) is None, path


def test_the_cli_exits_2_on_divergence(sudoku_data, tmp_path, monkeypatch, capsys):
    original = AdamATan2.step

    def poisoned(self, closure=None):
        original(self)
        with torch.no_grad():
            self.param_groups[0]["params"][0].fill_(float("nan"))

    monkeypatch.setattr(AdamATan2, "step", poisoned)
    config = tmp_path / "config.yaml"
    config.write_text(dump_config(tiny_config(sudoku_data, tmp_path / "run", "threads=1")))
    assert main(["train", str(config)]) == 2
    assert "trm train: error: the" in capsys.readouterr().err
    assert checkpoint_dirs(tmp_path / "run") == []


def test_load_model_refuses_non_finite_weights(tmp_path):
    model = TRM(tiny_config(Path("unused"), tmp_path).model.model_copy(update=dict(vocab_size=11, seq_len=81)))
    with torch.no_grad():
        model.lm_head.weight[0, 0] = float("inf")
    save_model(model, tmp_path / "model")
    with pytest.raises(CheckpointError, match=r"model\.safetensors: tensor 'lm_head\.weight' holds NaN or infinite"):
        load_model(tmp_path / "model")


# ---------------------------------------------------------------------- signals and kill -9

# Runs `trm train` with a pause in every step, so that a signal lands in the middle of the run.
SLOW_TRAIN = """
import sys, time
from trm.cli import main
from trm.train.loop import Trainer
step = Trainer.train_step
def slow_step(self, batch):
    time.sleep(float(sys.argv[1]))
    return step(self, batch)
Trainer.train_step = slow_step
sys.exit(main(sys.argv[2:]))
"""


def start_slow_train(config_file: Path, pause: float, *args: str) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-c", SLOW_TRAIN, str(pause), "train", *args, str(config_file)],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(condition, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def metrics_lines(run: Path) -> int:
    path = run / "metrics.jsonl"
    return path.read_text().count("\n") if path.exists() else 0


# These runs are compared bit for bit across processes, where backend "auto" is timed anew in each
# and, on a loaded machine, may pick the other kernels (equal within float32 rounding only).
PINNED = "backend=default"
LONG = ("threads=1", "max_steps=30", "eval_interval=10", "checkpoint_interval=100", "checkpoint_minutes=null", PINNED)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_saves_the_step_reached_and_resumes_exactly(sudoku_data, tmp_path, capsys, signum):
    run = tmp_path / "cut"
    config_file = tmp_path / "config.yaml"
    config_file.write_text(dump_config(tiny_config(sudoku_data, run, *LONG)))
    # 0.4 s a step: the 30 steps outlast the second run's check below (up to 5 s) on a loaded machine.
    process = start_slow_train(config_file, 0.4)
    wait_for(lambda: metrics_lines(run) >= 4, process)

    # A second run in the same directory stops at once, naming the live one.
    started = time.monotonic()
    assert main(["train", "--resume", str(run)]) == 2
    assert f"PID {process.pid} on " in capsys.readouterr().err
    assert time.monotonic() - started < 5

    process.send_signal(signum)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 128 + signum, err
    step = read_metrics(run)[-1]["step"]
    assert 4 <= step < 30
    assert [p.name for p in checkpoint_dirs(run)] == [f"step_{step:08d}"]
    assert f"stopped by {signal.Signals(signum).name} at step {step}" in err
    assert f"Resume with: trm train --resume {run}" in err

    train(tiny_config(sudoku_data, run, *LONG), resume=True)
    train(tiny_config(sudoku_data, tmp_path / "full", *LONG))
    assert read_metrics(run) == read_metrics(tmp_path / "full")
    assert_same_weights(final_weights(run), final_weights(tmp_path / "full"))


@pytest.mark.slow
def test_kill_9_at_random_moments_then_resume_equals_an_uninterrupted_run(sudoku_data, tmp_path):
    settings = ("threads=1", "max_steps=30", "eval_interval=10", "checkpoint_interval=1", "keep_last=2", PINNED)
    train(tiny_config(sudoku_data, tmp_path / "full", *settings))
    draw = random.Random(0)
    for attempt in range(4):
        run = tmp_path / f"cut{attempt}"
        config_file = tmp_path / f"config{attempt}.yaml"
        config_file.write_text(dump_config(tiny_config(sudoku_data, run, *settings)))
        process = start_slow_train(config_file, 0.03)
        wait_for(lambda run=run: (run / "config.yaml").exists(), process)
        time.sleep(draw.uniform(0.0, 1.5))  # about the length of the run
        process.kill()
        process.communicate()
        train(tiny_config(sudoku_data, run, *settings), resume=True)
        assert not list(run.rglob(".*.tmp-*")), "leftovers of the killed writes are removed"
        assert read_metrics(run) == read_metrics(tmp_path / "full"), attempt
        assert_same_weights(final_weights(run), final_weights(tmp_path / "full"))


# ---------------------------------------------------------------------- unreadable checkpoints


@pytest.fixture(scope="module")
def finished_run(sudoku_data, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("finished") / "run"
    train(tiny_config(sudoku_data, run, "threads=1", "keep_last=3"))  # checkpoints at steps 4, 8 and 12
    return run


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _flip_a_bit(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) * 2 // 3] ^= 0x10
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(("damage", "name"), [(_truncate, "train_state.pt"), (_truncate, "model.safetensors"),
                                              (_flip_a_bit, "train_state.pt"), (_flip_a_bit, "model.safetensors")])
def test_an_unreadable_newest_checkpoint_falls_back_to_the_one_before(finished_run, sudoku_data, tmp_path, capsys,
                                                                      damage, name):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    expected = final_weights(run)
    bad = run / "checkpoints" / "step_00000012"
    damage(bad / name)

    train(tiny_config(sudoku_data, run, "threads=1", "keep_last=3"), resume=True)
    err = capsys.readouterr().err
    assert f"warning: {bad / name}: " in err
    assert f"resuming from {run / 'checkpoints' / 'step_00000008'}" in err
    assert (run / "checkpoints" / "step_00000012.unreadable").is_dir()
    assert [p.name for p in checkpoint_dirs(run)] == ["step_00000004", "step_00000008", "step_00000012"]
    assert_same_weights(final_weights(run), expected)  # steps 9-12 trained again, to the same weights
    assert read_metrics(run) == read_metrics(finished_run)


def test_no_readable_checkpoint_is_a_clear_error(finished_run, sudoku_data, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    for checkpoint in checkpoint_dirs(run):
        _truncate(checkpoint / "train_state.pt")
    config_before = (run / "config.yaml").read_bytes()
    with pytest.raises(CheckpointError, match=r"no readable checkpoint to resume from: .*step_00000012.*step_00000004"):
        train(tiny_config(sudoku_data, run, "threads=1", "keep_last=3"), resume=True)
    assert (run / "config.yaml").read_bytes() == config_before
    assert len(checkpoint_dirs(run)) == 3  # nothing set aside when there is nothing to fall back to


def test_a_non_finite_train_state_is_refused_naming_the_tensor(finished_run, sudoku_data, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    for checkpoint in checkpoint_dirs(run):
        state = torch.load(checkpoint / "train_state.pt", weights_only=True)
        state["ema"]["lm_head.weight"][0, 0] = float("nan")
        torch.save(state, checkpoint / "train_state.pt")
        (checkpoint / "checksums.json").unlink()  # as an older checkpoint would be: the values are checked
    with pytest.raises(CheckpointError, match=r"train_state\.pt: tensor 'ema\.lm_head\.weight' holds NaN"):
        train(tiny_config(sudoku_data, run, "threads=1", "keep_last=3"), resume=True)


# ---------------------------------------------------------------------- one run per directory, resume


def test_a_second_run_in_a_live_run_directory_stops_at_once(sudoku_data, tmp_path, capsys):
    run = tmp_path / "run"
    config_file = tmp_path / "config.yaml"
    config_file.write_text(dump_config(tiny_config(sudoku_data, run, "threads=1")))
    with run_lock(run):
        assert main(["train", str(config_file)]) == 2
    err = capsys.readouterr().err
    assert f"another trm train is running in this directory (PID {os.getpid()} on " in err
    assert sorted(p.name for p in run.iterdir()) == [".lock"]
    assert main(["train", str(config_file)]) == 0  # the lock went with its holder


@pytest.mark.parametrize("override", ["model.hidden_size=32", "data.path=/no/such/data", "no_such_key=1", "lr=fast",
                                      "global_batch_size=24"])
def test_resume_with_a_bad_override_changes_nothing(finished_run, tmp_path, override):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file() and p.name != ".lock"}
    assert main(["train", "--resume", str(run), override, "max_steps=20"]) == 2
    after = {p: p.read_bytes() for p in run.rglob("*") if p.is_file() and p.name != ".lock"}
    assert after == before


def test_resume_keeps_the_metrics_history_up_to_its_step(finished_run, sudoku_data, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    shutil.rmtree(run / "checkpoints" / "step_00000012")  # as if killed between steps 8 and 12
    with (run / "metrics.jsonl").open("a") as f:
        f.write('{"step": 13, "train/lo')  # a line cut short by the kill
    train(tiny_config(sudoku_data, run, "threads=1", "keep_last=3"), resume=True)
    assert read_metrics(run) == read_metrics(finished_run)


def test_metrics_up_to_keeps_earlier_lines_and_lines_it_cannot_read():
    text = '{"step": 1}\nnot json\n{"step": 2}\n\n{"step": 3}\n{"step": 4, "x'
    assert metrics_up_to(text, 2) == '{"step": 1}\nnot json\n{"step": 2}\n'
    assert metrics_up_to(text, 0) == "not json\n"


def test_a_fresh_run_never_truncates_an_earlier_runs_metrics(sudoku_data, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text('{"step": 10, "train/loss": 1.0}\n')
    with pytest.raises(TRMError, match=r"metrics\.jsonl: holds the metrics of an earlier run that saved no checkpoint"):
        train(tiny_config(sudoku_data, run, "threads=1"))
    assert (run / "metrics.jsonl").read_text() == '{"step": 10, "train/loss": 1.0}\n'
    assert not (run / "config.yaml").exists()


def test_resume_before_the_first_checkpoint_starts_again_from_step_0(sudoku_data, tmp_path, monkeypatch):
    original = Trainer.save

    def killed_at_the_first_save(self, eval_metrics):
        raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "save", killed_at_the_first_save)
    with pytest.raises(KeyboardInterrupt):
        train(tiny_config(sudoku_data, tmp_path / "cut", "threads=1"))
    assert read_metrics(tmp_path / "cut") and checkpoint_dirs(tmp_path / "cut") == []
    monkeypatch.setattr(Trainer, "save", original)
    train(tiny_config(sudoku_data, tmp_path / "cut", "threads=1"), resume=True)
    train(tiny_config(sudoku_data, tmp_path / "full", "threads=1"))
    assert read_metrics(tmp_path / "cut") == read_metrics(tmp_path / "full")
    assert_same_weights(final_weights(tmp_path / "cut"), final_weights(tmp_path / "full"))


def test_a_resumed_run_keeps_what_auto_chose_when_it_started(sudoku_data, tmp_path, monkeypatch, capsys):
    # "auto" times the kernels (and looks at the CPU) on each start; a resume that chose anew could
    # compute with other kernels or another dtype, and would not continue the run exactly.
    from trm.model import backend_choice, precision

    def machine(backend: str, native_bfloat16: bool) -> None:
        timings = {"onednn": (("default", 2.0), ("onednn", 1.0)), "default": (("default", 1.0), ("onednn", 2.0))}
        monkeypatch.setattr(backend_choice, "_timed_choice", lambda *args: (backend, timings[backend]))
        monkeypatch.setattr(precision, "_cpu_has_native_bfloat16", lambda: native_bfloat16)

    auto = ("threads=1", "backend=auto", "model.forward_dtype=auto")
    original = Trainer.train_step

    def crash_after_step_9(self, batch):
        if self.progress.step == 9:
            raise KeyboardInterrupt
        return original(self, batch)

    machine("onednn", native_bfloat16=True)
    monkeypatch.setattr(Trainer, "train_step", crash_after_step_9)
    with pytest.raises(KeyboardInterrupt):
        train(tiny_config(sudoku_data, tmp_path / "cut", *auto))
    monkeypatch.setattr(Trainer, "train_step", original)
    out = capsys.readouterr().out
    assert "backend onednn (auto: " in out and "forward_dtype auto: bfloat16 (native" in out

    machine("default", native_bfloat16=False)  # the same run resumed where auto would choose otherwise
    train(tiny_config(sudoku_data, tmp_path / "cut", *auto), resume=True)
    out = capsys.readouterr().out
    assert "backend onednn (auto: as chosen when the run started)" in out
    assert "forward_dtype auto: bfloat16 (as chosen when the run started)" in out
    train(tiny_config(sudoku_data, tmp_path / "full", "threads=1", "backend=onednn", "model.forward_dtype=bfloat16"))
    assert read_metrics(tmp_path / "cut") == read_metrics(tmp_path / "full")
    assert_same_weights(final_weights(tmp_path / "cut"), final_weights(tmp_path / "full"))

    # Settings given on the resume's command line win over what auto chose.
    train(tiny_config(sudoku_data, tmp_path / "cut", "threads=1", "backend=default", "model.forward_dtype=float32",
                      "max_steps=14"), resume=True)  # fmt: skip
    assert "backend default (as configured)" in capsys.readouterr().out
    saved = json.loads((checkpoint_dirs(tmp_path / "cut")[-1] / "config.json").read_text())
    assert saved["model"]["forward_dtype"] == "float32"


def test_leftovers_of_interrupted_writes_are_removed_on_start(finished_run, sudoku_data, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    ours = [run / "checkpoints" / ".step_00000016.tmp-ab12cd_3", run / ".best.tmp-x9y8z7w6",
            run / ".config.yaml.tmp-k2j3h4g5", run / ".metrics.jsonl.tmp-q1w2e3r4"]
    for path in ours:
        if "step" in path.name or "best" in path.name:
            path.mkdir()
            (path / "model.safetensors").write_bytes(b"half")
        else:
            path.write_text("half")
    theirs = [run / ".notes.tmp-ab12cd_3", run / "checkpoints" / "step_00000004.tmp-1", run / "keep.tmp-abc"]
    for path in theirs:
        path.write_text("a user's file")
    shutil.move(run / "best", run / ".best.old-a1b2c3d4")  # killed between the two renames of best/

    train(tiny_config(sudoku_data, run, "threads=1", "keep_last=3", "max_steps=13"), resume=True)
    assert not any(path.exists() for path in ours)
    assert all(path.exists() for path in theirs)
    assert (run / "best" / "model.safetensors").exists() and not (run / ".best.old-a1b2c3d4").exists()
    assert f"removed {ours[0]}" in capsys.readouterr().out


def test_checkpoint_minutes_saves_on_wall_time(sudoku_data, tmp_path):
    every_step = ("threads=1", "max_steps=5", "checkpoint_interval=100", "eval_interval=100", "keep_last=10")
    train(tiny_config(sudoku_data, tmp_path / "timed", *every_step, "checkpoint_minutes=1e-9"))
    assert [int(p.name[5:]) for p in checkpoint_dirs(tmp_path / "timed")] == [1, 2, 3, 4, 5]
    train(tiny_config(sudoku_data, tmp_path / "off", *every_step, "checkpoint_minutes=null"))
    assert [int(p.name[5:]) for p in checkpoint_dirs(tmp_path / "off")] == [5]
