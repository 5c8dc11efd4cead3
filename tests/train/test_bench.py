"""`trm bench`: the step it times is a real, reproducible training step, and its report adds up."""

import json

import pytest
import torch

import trm.train.bench
from trm.cli import main as cli_main
from trm.train.bench import bench, training_step
from trm.train.config import load_train_config
from trm.train.flops import model_flops

TINY = ["device=cpu", "compile=false", "data.path=no-such-dataset", "model.vocab_size=11", "model.seq_len=81",
        "model.hidden_size=16", "model.num_heads=2", "model.mixer=mlp", "model.pos_encodings=none",
        "model.T=2", "model.n=2", "model.N_sup=4", "global_batch_size=8", "lr=1e-2", "threads=1"]


@pytest.fixture
def quick_matmul_rate(monkeypatch):
    """The matmul-rate probe at a small size for a fraction of a second: these tests check the
    report's arithmetic, not the machine."""
    probe = trm.train.bench.measure_matmul_rate
    monkeypatch.setattr(trm.train.bench, "measure_matmul_rate",
                        lambda dtype, device: probe(dtype, device=device, size=256, seconds=0.1))


def weights_after(steps: int) -> dict[str, torch.Tensor]:
    step, model = training_step(load_train_config(None, TINY))[:2]
    for _ in range(steps):
        step()
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_training_step_updates_weights_reproducibly():
    start, a, b = weights_after(0), weights_after(3), weights_after(3)
    assert all(torch.equal(a[k], b[k]) for k in a)  # same seed, same batch, same updates
    changed = [k for k in a if not torch.equal(a[k], start[k])]
    assert "net.layers.0.mlp.gate_up_proj.weight" in changed and "lm_head.weight" in changed


def test_bench_report_is_consistent(quick_matmul_rate):
    config = load_train_config(None, TINY)
    result = bench(config, steps=2, warmup=1)
    assert result["examples_x_steps_per_s"] == pytest.approx(8 / result["step_seconds"])
    assert result["model_flops_per_step"] == model_flops(config.model, 8, training=True)["total"]
    assert result["fraction_of_matmul_rate"] == pytest.approx(
        result["model_flops_per_s"] / result["matmul_flops_per_s"])
    assert result["threads"] == 1 and result["parameters"] > 0


def test_bench_cli_prints_the_report_and_json(capsys, tmp_path, quick_matmul_rate):
    config = tmp_path / "tiny.yaml"
    config.write_text("model:\n  hidden_size: 16\n")
    assert cli_main(["bench", str(config), *TINY, "--steps", "1", "--warmup", "1"]) == 0
    out = capsys.readouterr().out
    assert "examples x sup. steps" in out and "fraction of matmul" in out
    result = json.loads(out.strip().splitlines()[-1])
    assert result["step_seconds"] > 0
