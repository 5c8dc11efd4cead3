"""Backend "auto" times both backends on the model's shape; a named backend is taken as named."""

import pytest
import torch

from trm.backends import Backend, OneDNN
from trm.config import ModelConfig
from trm.errors import ConfigError
from trm.model.backend_choice import choose_backend

MLP = ModelConfig(vocab_size=11, seq_len=16, hidden_size=32, num_heads=2, mixer="mlp", pos_encodings="none")


def test_a_named_backend_is_used_as_named():
    backend, why = choose_backend("onednn", MLP, 4, "cpu", torch.float32)
    assert isinstance(backend, OneDNN) and "as configured" in why
    with pytest.raises(ConfigError, match="backend"):
        choose_backend("fastest", MLP, 4, "cpu", torch.float32)


def test_auto_times_both_on_cpu_and_says_so_without_touching_the_random_state():
    torch.manual_seed(3)
    expected = torch.rand(1)
    torch.manual_seed(3)
    backend, why = choose_backend("auto", MLP, 4, "cpu", torch.float32)
    assert torch.equal(torch.rand(1), expected)
    assert f"backend {backend.name} (auto" in why and "default" in why and "onednn" in why and "ms" in why
    assert choose_backend("auto", MLP, 4, "cpu", torch.float32) == (backend, why)  # measured once per shape


def test_auto_keeps_the_default_where_the_cpu_backend_changes_nothing():
    attention = MLP.model_copy(update=dict(mixer="attention"))
    backend, why = choose_backend("auto", attention, 4, "cpu", torch.bfloat16)
    assert type(backend) is Backend and "changes nothing" in why
    backend, why = choose_backend("auto", MLP, 4, "cuda", torch.float32)
    assert type(backend) is Backend and "CPU" in why
