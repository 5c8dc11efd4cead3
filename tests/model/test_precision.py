"""forward_dtype "auto" and the inference default: bfloat16 only where the device runs it natively."""

import json

import pytest
import torch

from tests.model.test_checkpoint import SMALL, batch_for
from trm.config import ModelConfig
from trm.errors import ConfigError
from trm.eval.evaluate import resolve_model
from trm.model import TRM, load_model, precision, save_model


@pytest.fixture(params=[True, False], ids=["native-bf16-cpu", "emulated-bf16-cpu"])
def native(request, monkeypatch):
    monkeypatch.setattr(precision, "_cpu_has_native_bfloat16", lambda: request.param)
    return request.param


def test_auto_is_bfloat16_exactly_where_it_is_native(native):
    assert precision.resolve_forward_dtype("auto", "cpu") == ("bfloat16" if native else "float32")
    # an explicit dtype is what the user asked for, native or not
    assert precision.resolve_forward_dtype("bfloat16", "cpu") == "bfloat16"
    assert precision.resolve_forward_dtype("float32", "cpu") == "float32"


def test_unknown_dtype_is_rejected_with_the_choices():
    with pytest.raises(ValueError, match="float32, bfloat16, auto, not 'float16'"):
        precision.resolve_forward_dtype("float16", "cpu")


def test_inference_runs_bfloat16_checkpoints_in_float32_where_bfloat16_is_emulated(native):
    assert precision.inference_dtype("bfloat16", "cpu") == ("bfloat16" if native else "float32")
    assert precision.inference_dtype("float32", "cpu") == "float32"  # never lowered


def test_an_auto_model_computes_in_the_resolved_dtype_and_a_set_dtype_wins(native):
    torch.manual_seed(0)
    model = TRM(ModelConfig(**SMALL, forward_dtype="auto"))
    expected = torch.bfloat16 if native else torch.float32
    assert model.dtype == expected
    assert model.rollout(batch_for(model.config), 1)["logits"].dtype == expected
    model.dtype = torch.float32
    assert model.rollout(batch_for(model.config), 1)["logits"].dtype == torch.float32


def test_load_model_picks_the_inference_dtype_unless_one_is_asked_for(native, tmp_path):
    torch.manual_seed(0)
    save_model(TRM(ModelConfig(**SMALL, forward_dtype="bfloat16")), tmp_path / "ckpt")
    assert json.loads((tmp_path / "ckpt" / "config.json").read_text())["model"]["forward_dtype"] == "bfloat16"
    assert load_model(tmp_path / "ckpt").dtype == (torch.bfloat16 if native else torch.float32)
    assert load_model(tmp_path / "ckpt", forward_dtype="bfloat16").dtype == torch.bfloat16
    model, _ = resolve_model(tmp_path / "ckpt", "cpu", "float32")
    assert model.dtype == torch.float32


def test_resolve_model_rejects_an_unknown_dtype(tmp_path):
    with pytest.raises(ConfigError, match="forward_dtype must be one of float32, bfloat16, auto, got 'half'"):
        resolve_model(TRM(ModelConfig(**SMALL)), None, "half")
