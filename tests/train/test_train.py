"""The trainer: reproducible runs, exact resume, several processes, every shipped config."""

import json
import os
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
import yaml

from trm.data.build import build_dataset as build_sudoku_dataset
from trm.data.sudoku import SudokuSource as SudokuBuildConfig
from trm.errors import CheckpointError, ConfigError
from trm.model import TRM
from trm.model.checkpoint import load_model
from trm.model.widen import widen
from trm.train.checkpoint import checkpoint_dirs
from trm.train.config import load_train_config
from trm.train.loop import Trainer, TrainingDiverged, train

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def sudoku_data(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("data") / "sudoku"
    build_sudoku_dataset(SudokuBuildConfig(source="generate", output=out, givens=40, train_size=96, test_size=40,
                                           seed=1), progress=False)
    return out


def tiny_config(data: Path, run_dir: Path, *extra: str):
    overrides = [
        f"data.path={data}", "data.augment=sudoku", f"run_dir={run_dir}", "seed=3", "device=cpu",
        "model.hidden_size=16", "model.num_heads=2", "model.mixer=mlp", "model.pos_encodings=none",
        "model.T=2", "model.n=1", "model.N_sup=3", "model.halt_exploration_prob=0.3",
        "model.puzzle_emb_ndim=16", "model.puzzle_emb_len=1",
        "global_batch_size=16", "max_steps=12", "eval_interval=6", "checkpoint_interval=4", "lr=3e-3",
        "lr_warmup_steps=3", "lr_min_ratio=0.1", "log.every=1", "log.tensorboard=false", "ema_rate=0.9",
        "puzzle_emb_lr=1e-2", *extra,
    ]
    return load_train_config(None, overrides)


def read_metrics(run_dir: Path) -> list[dict]:
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    timing = ("train_seconds", "train/examples_x_steps_per_s")
    return [{k: v for k, v in line.items() if k not in timing} for line in lines]


def final_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    state = torch.load(checkpoint_dirs(run_dir)[-1] / "train_state.pt", weights_only=True)
    return {**state["model"], **{f"ema.{k}": v for k, v in state["ema"].items()}}


def test_same_seed_gives_identical_metrics(sudoku_data, tmp_path):
    train(tiny_config(sudoku_data, tmp_path / "a"))
    train(tiny_config(sudoku_data, tmp_path / "b"))
    a, b = read_metrics(tmp_path / "a"), read_metrics(tmp_path / "b")
    assert len(a) == 12 + 2 and a == b
    assert any(line.get("train/halted", 0) > 0 for line in a)  # halting and restarts happened


def test_resume_after_interruption_equals_uninterrupted_run(sudoku_data, tmp_path, monkeypatch):
    train(tiny_config(sudoku_data, tmp_path / "full"))

    original = Trainer.train_step

    def crash_after_step_9(self, batch):
        if self.progress.step == 9:
            raise KeyboardInterrupt  # killed between checkpoints (the last one is step 8)
        return original(self, batch)

    monkeypatch.setattr(Trainer, "train_step", crash_after_step_9)
    with pytest.raises(KeyboardInterrupt):
        train(tiny_config(sudoku_data, tmp_path / "cut"))
    assert checkpoint_dirs(tmp_path / "cut")[-1].name == "step_00000008"
    monkeypatch.setattr(Trainer, "train_step", original)

    config = tiny_config(sudoku_data, tmp_path / "cut")
    train(config, resume=True)
    assert read_metrics(tmp_path / "cut") == read_metrics(tmp_path / "full")
    full, cut = final_weights(tmp_path / "full"), final_weights(tmp_path / "cut")
    assert full.keys() == cut.keys()
    for key in full:
        assert torch.equal(full[key], cut[key]), key


def test_auto_dtype_runs_are_saved_with_the_dtype_they_trained_in(sudoku_data, tmp_path, monkeypatch, capsys):
    from trm.model import precision

    monkeypatch.setattr(precision, "_cpu_has_native_bfloat16", lambda: False)
    train(tiny_config(sudoku_data, tmp_path / "run", "model.forward_dtype=auto", "max_steps=4"))
    assert "forward_dtype auto: float32 (no native bfloat16 matmuls on cpu)" in capsys.readouterr().out
    assert yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["model"]["forward_dtype"] == "auto"
    saved = json.loads((tmp_path / "run" / "best" / "config.json").read_text())
    assert saved["model"]["forward_dtype"] == "float32"


def test_run_directory_layout_and_checkpoint_pruning(sudoku_data, tmp_path):
    run = tmp_path / "run"
    train(tiny_config(sudoku_data, run, "keep_last=2"))
    assert [p.name for p in checkpoint_dirs(run)] == ["step_00000008", "step_00000012"]
    assert (run / "config.yaml").exists() and (run / "best" / "model.safetensors").exists()
    saved = load_train_config(run / "config.yaml")
    assert saved == tiny_config(sudoku_data, run, "keep_last=2")
    metrics = read_metrics(run)
    assert all(all(k.startswith(("train/", "test/")) or k in ("step", "lr") for k in m) for m in metrics)
    assert sum("test/exact_accuracy" in m for m in metrics) == 2
    with pytest.raises(Exception, match="already holds a run"):
        train(tiny_config(sudoku_data, run))


def test_training_evaluates_as_trm_eval_does(sudoku_data, tmp_path):
    """One evaluation path: the test metrics a run writes are `trm eval`'s report on the
    checkpoint saved at that step (the EMA weights), with the same limit and batches."""
    from trm.eval import evaluate

    run = tmp_path / "run"
    train(tiny_config(sudoku_data, run, "data.eval_limit=30", "eval_batch_size=7"))
    written = [m for m in read_metrics(run) if "test/count" in m][-1]
    assert written["step"] == 12 and checkpoint_dirs(run)[-1].name == "step_00000012"
    report = evaluate(checkpoint_dirs(run)[-1], sudoku_data, limit=30, batch_size=7, progress=False)
    assert written == {
        "step": 12,
        "test/count": 30,
        "test/exact_accuracy": report.exact_accuracy,
        "test/accuracy": report.token_accuracy,
        "test/q_halt_accuracy": report.halting_accuracy,
        "test/valid_rate": report.valid_rate,
        **{f"test/exact_accuracy@{k}": a for k, a in enumerate(report.exact_accuracy_per_step, start=1)},
    }
    assert 0 < report.token_accuracy < 1  # a partly trained model: the comparison has something to compare


def test_nan_loss_stops_the_run_and_keeps_the_last_checkpoint(sudoku_data, tmp_path, monkeypatch):
    run = tmp_path / "run"
    original = TRM.step

    def poisoned(self, carry, batch):
        carry, out = original(self, carry, batch)
        if self.training and Trainer_step[0] >= 5:
            out.logits = out.logits * float("nan")
        Trainer_step[0] += 1
        return carry, out

    Trainer_step = [0]
    monkeypatch.setattr(TRM, "step", poisoned)
    with pytest.raises(TrainingDiverged, match="step 6"):
        train(tiny_config(sudoku_data, run))
    assert [p.name for p in checkpoint_dirs(run)] == ["step_00000004"]
    weights = torch.load(checkpoint_dirs(run)[-1] / "train_state.pt", weights_only=True)["model"]
    assert all(torch.isfinite(v).all() for v in weights.values())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, data: str, run_dir: str) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    train(tiny_config(Path(data), Path(run_dir), "model.halt_exploration_prob=0.0", "threads=1"))


def test_two_gloo_processes_match_one_process(sudoku_data, tmp_path):
    train(tiny_config(sudoku_data, tmp_path / "one", "model.halt_exploration_prob=0.0", "threads=1"))
    mp.start_processes(_worker, args=(2, _free_port(), str(sudoku_data), str(tmp_path / "two")), nprocs=2,
                       join=True, start_method="spawn")
    one, two = read_metrics(tmp_path / "one"), read_metrics(tmp_path / "two")
    assert len(one) == len(two)
    for a, b in zip(one, two):
        assert a.keys() == b.keys()
        for key in a:
            assert a[key] == pytest.approx(b[key], rel=1e-4, abs=1e-5), (a["step"], key)
    w1, w2 = final_weights(tmp_path / "one"), final_weights(tmp_path / "two")
    for key in w1:
        torch.testing.assert_close(w1[key], w2[key], atol=1e-5, rtol=1e-4)


def _worker_timing_its_own_way(rank: int, port: int, data: str, run_dir: str) -> None:
    from trm.model import backend_choice

    os.environ.update(RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    faster = ["default", "onednn"][rank]  # as a loaded machine may time them, differently on each rank
    backend_choice._timed_choice = lambda *args: (faster, ())
    original = Trainer.train_step

    def record_backend(self, batch):
        Path(run_dir, f"backend-{rank}").write_text(self.model.net.backend.name)
        return original(self, batch)

    Trainer.train_step = record_backend
    train(tiny_config(Path(data), Path(run_dir), "threads=1", "backend=auto", "max_steps=2"))


def test_every_process_computes_with_the_backend_rank_0_chose(sudoku_data, tmp_path):
    mp.start_processes(_worker_timing_its_own_way, args=(_free_port(), str(sudoku_data), str(tmp_path / "run")),
                       nprocs=2, join=True, start_method="spawn")
    assert [(tmp_path / "run" / f"backend-{rank}").read_text() for rank in (0, 1)] == ["default", "default"]


# The paper's parameter counts (trm-spec section 8: TRM-MLP 5M, TRM-Att 7M, HRM and direct
# prediction 27M), at Sudoku's vocabulary and length, without the puzzle-embedding table.
PAPER_SIZES = {
    "sudoku-extreme-mlp.yaml": (4.5e6, 5.5e6),
    "sudoku-extreme-att.yaml": (6.5e6, 7.5e6),
    "maze-hard.yaml": (6.5e6, 7.5e6),
    "arc-agi-1.yaml": (6.5e6, 7.5e6),
    "baselines/hrm-sudoku.yaml": (26e6, 28.5e6),
    "baselines/direct-sudoku.yaml": (26e6, 28.5e6),
}


@pytest.mark.parametrize("name", PAPER_SIZES)
def test_the_paper_configs_have_the_papers_parameter_counts(name):
    low, high = PAPER_SIZES[name]
    with torch.device("meta"):
        count = TRM(load_train_config(REPO / "configs" / name).model).num_parameters()
    assert low < count < high, count


def test_trm_info_lists_every_shipped_config_with_its_models_size(capsys):
    from trm.cli import main

    assert main(["info"]) == 0
    rows = {line.split()[0]: line.split()[1] for line in capsys.readouterr().out.splitlines()[2:]}
    paths = sorted((REPO / "configs").rglob("*.yaml"))
    assert sorted(rows) == sorted(p.relative_to(REPO / "configs").as_posix() for p in paths)
    for path in paths:
        count = TRM(load_train_config(path).model).num_parameters()  # built for real, on the CPU
        assert rows[path.relative_to(REPO / "configs").as_posix()] == f"{count / 1e6:.2f}M", path


def test_init_from_starts_with_those_weights_and_a_fresh_optimizer(sudoku_data, tmp_path):
    train(tiny_config(sudoku_data, tmp_path / "stage1"))
    start = tmp_path / "stage1" / "best"
    config = tiny_config(sudoku_data, tmp_path / "stage2", f"init_from={start}", "seed=4")
    trainer = Trainer(config, tmp_path / "stage2")
    expected = load_model(start).state_dict()
    got = trainer.model.state_dict()
    assert got.keys() == expected.keys()
    assert all(torch.equal(got[k].cpu(), expected[k]) for k in got)
    assert not trainer.optimizer.state  # no moments carried over
    fresh = Trainer(tiny_config(sudoku_data, tmp_path / "fresh", "seed=4"), tmp_path / "fresh")
    assert not all(torch.equal(fresh.model.state_dict()[k], expected[k]) for k in expected)


def test_init_from_refuses_a_model_of_other_shapes_or_a_missing_one(sudoku_data, tmp_path, capsys):
    train(tiny_config(sudoku_data, tmp_path / "small"))
    wider = tiny_config(sudoku_data, tmp_path / "wide", f"init_from={tmp_path / 'small' / 'best'}",
                        "model.hidden_size=32")
    with pytest.raises(CheckpointError, match=r"init_from .*small/best: its hidden_size is 16, this run's 32 \("):
        Trainer(wider, tmp_path / "wide")
    deeper = tiny_config(sudoku_data, tmp_path / "deep", f"init_from={tmp_path / 'small' / 'best'}",
                         "model.num_layers=3")
    with pytest.raises(CheckpointError, match=r"init_from .*small/best: missing key 'net.layers.2"):
        Trainer(deeper, tmp_path / "deep")
    missing = tiny_config(sudoku_data, tmp_path / "m", f"init_from={tmp_path / 'nothing'}")
    with pytest.raises(CheckpointError, match=r"no such model directory .*sudoku-9x9"):
        Trainer(missing, tmp_path / "m")


def test_init_widen_starts_from_the_narrow_model_widened(sudoku_data, tmp_path):
    train(tiny_config(sudoku_data, tmp_path / "narrow", "model.puzzle_emb_ndim=0"))
    start = tmp_path / "narrow" / "best"
    wide = ("model.puzzle_emb_ndim=0", "model.hidden_size=32", f"init_from={start}", "init_widen=true")
    with pytest.raises(ConfigError, match=r"init_widen from .*narrow/best: at hidden size 32 .* noise above 0"):
        Trainer(tiny_config(sudoku_data, tmp_path / "exact", *wide), tmp_path / "exact")
    config = tiny_config(sudoku_data, tmp_path / "wide", *wide, "init_widen_noise=1e-3")
    trainer = Trainer(config, tmp_path / "wide")
    expected = widen(load_model(start), trainer.model.config, 1e-3, config.seed).state_dict()
    assert all(torch.equal(trainer.model.state_dict()[k].cpu(), expected[k]) for k in expected)
    train(config)  # and it trains from there
    trained = load_model(tmp_path / "wide" / "best").state_dict()["embed_tokens.weight"]
    assert trained.shape[1] == 32 and not torch.equal(trained, expected["embed_tokens.weight"])


def test_a_run_killed_before_its_first_checkpoint_starts_again_from_init_from(sudoku_data, tmp_path):
    train(tiny_config(sudoku_data, tmp_path / "stage1"))
    start = tmp_path / "stage1" / "best"
    config = tiny_config(sudoku_data, tmp_path / "stage2", f"init_from={start}")
    trainer = Trainer(config, tmp_path / "stage2", resume=True)  # no checkpoint in stage2 yet
    expected = load_model(start).state_dict()
    assert all(torch.equal(trainer.model.state_dict()[k].cpu(), expected[k]) for k in expected)


def test_quiet_hides_the_progress_bar_only(sudoku_data, tmp_path, capsys):
    from trm.cli import main
    from trm.train.config import dump_config

    for name, flags in (("loud", []), ("quiet", ["--quiet"])):
        config_file = tmp_path / f"{name}.yaml"
        config_file.write_text(dump_config(tiny_config(sudoku_data, tmp_path / name, "threads=1", "max_steps=4")))
        assert main(["train", *flags, str(config_file)]) == 0
        captured = capsys.readouterr()
        assert ("train:" in captured.err) == (name == "loud")
    assert read_metrics(tmp_path / "quiet") == read_metrics(tmp_path / "loud")
