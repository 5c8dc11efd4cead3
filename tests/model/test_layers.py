"""The sequence-major layout of TRM-MLP blocks: same results as the (B, S, D) formulation.
The oneDNN float32 matmul: the same products and gradients as PyTorch's default path."""

import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

from tests.precision import reordering_tolerance, worst_case_sum_error
from trm.config import ModelConfig
from trm.model import layers
from trm.model.layers import Network, SwiGLU, _LeftMatmul, onednn_matmul_nt, rms_norm, sequence_major

needs_onednn = pytest.mark.skipif(not layers._onednn_available(), reason="this PyTorch build has no oneDNN")


def test_left_matmul_gradients_match_autograd():
    w = torch.randn(6, 5, dtype=torch.float64, requires_grad=True)
    x = torch.randn(5, 7, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(_LeftMatmul.apply, (w, x))


def test_sequence_major_keeps_values_and_copies_only_once():
    x = torch.randn(2, 3, 5, 4)  # (K, B, S, D)
    s = sequence_major(x)
    assert torch.equal(s, x)
    assert s.transpose(-3, -2).is_contiguous()
    assert sequence_major(s).data_ptr() == s.data_ptr()


def test_token_swiglu_features_first_equals_transposed_linear():
    torch.manual_seed(0)
    mlp = SwiGLU(9, 4).double()
    t = torch.randn(9, 12, dtype=torch.float64)  # (features, tokens)
    expected = mlp(t.t()).t()
    torch.testing.assert_close(mlp(t, features_first=True), expected)


def test_mlp_network_matches_the_batch_major_formulation():
    torch.manual_seed(0)
    cfg = ModelConfig(vocab_size=5, seq_len=9, hidden_size=8, num_heads=2, mixer="mlp", pos_encodings="none")
    net = Network(cfg, 2).double()
    h, u = torch.randn(2, 3, 9, 8, dtype=torch.float64).unbind(0)

    def batch_major(h):  # the reference's layout: transpose for the token mixer and back
        h = h + u
        for block in net.layers:
            t = h.transpose(1, 2)
            gate, value = F.linear(t, block.mixer.gate_up_proj.weight).chunk(2, dim=-1)
            t = rms_norm(t + F.linear(F.silu(gate) * value, block.mixer.down_proj.weight), cfg.rms_norm_eps)
            h = t.transpose(1, 2)
            h = rms_norm(h + block.mlp(h), cfg.rms_norm_eps)
        return h

    expected = batch_major(h)
    for layout in (h, sequence_major(h)):  # either layout in, the same numbers out
        out = net(layout, u, None)
        torch.testing.assert_close(out, expected)
        assert out.transpose(0, 1).is_contiguous()  # and the result comes back sequence-major


LAYOUTS = {
    "row-major": lambda t: t,
    "column-major": lambda t: t.t().contiguous().t(),
    "every other element": lambda t: torch.stack((t, t), dim=-1).reshape(t.shape[0], -1)[:, ::2],
}


@needs_onednn
@pytest.mark.parametrize("a_layout", LAYOUTS)
@pytest.mark.parametrize("b_layout", LAYOUTS)
def test_onednn_matmul_is_float32_exact_for_any_strides(a_layout, b_layout):
    g = torch.Generator().manual_seed(0)
    a = LAYOUTS[a_layout](torch.randn(37, 81, generator=g))
    b = LAYOUTS[b_layout](torch.randn(50, 81, generator=g))
    exact = a.double() @ b.double().t()
    got = onednn_matmul_nt(a, b)
    assert got.dtype == torch.float32 and got.shape == (37, 50)
    # Within float32's worst-case error for an 81-term dot product (a bfloat16 or TF32 product is not).
    bound = worst_case_sum_error(torch.float32, 81) * (a.double().abs() @ b.double().abs().t())
    assert ((got.double() - exact).abs() <= bound).all()


@needs_onednn
def test_onednn_matmul_gradients_match_the_default_path():
    g = torch.Generator().manual_seed(1)
    a = torch.randn(24, 16, generator=g, requires_grad=True)
    b = torch.randn(10, 16, generator=g, requires_grad=True)
    grad = torch.randn(24, 10, generator=g)
    onednn_matmul_nt(a, b).backward(grad)
    ours = a.grad.clone(), b.grad.clone()
    a.grad = b.grad = None
    (a @ b.t()).backward(grad)
    torch.testing.assert_close(ours, (a.grad, b.grad))


def _assert_close_to_scale(got, expected):
    """Elementwise within float32 rounding of each tensor's largest magnitude, summed in another order.
    The widest sum in these networks is over SwiGLU's 256 intermediate features."""
    tol = reordering_tolerance(torch.float32, 256)
    for g, e in zip(got, expected, strict=True):
        assert (g - e).abs().max() <= tol * e.abs().max(), (g - e).abs().max() / e.abs().max()


class _Ops(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.names = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.names.add(func.name())
        return func(*args, **(kwargs or {}))


def _network_run(mixer: str, onednn: bool):
    previous = layers._ONEDNN_FLOAT32
    layers.use_onednn_float32(onednn)
    try:
        torch.manual_seed(0)
        cfg = ModelConfig(vocab_size=5, seq_len=9, hidden_size=16, num_heads=2, mixer=mixer, pos_encodings="none")
        net = Network(cfg, 2)
        h, u, r = torch.randn(3, 3, 9, 16).unbind(0)
        with _Ops() as ops:
            out = net(h, u, None)
            (out * r).sum().backward()  # not a function of the norm alone, which the blocks fix
        return out.detach(), [p.grad for p in net.parameters()], ops.names
    finally:
        layers.use_onednn_float32(previous)


@needs_onednn
@pytest.mark.parametrize("mixer", ["mlp", "attention"])
def test_float32_network_gives_the_same_outputs_and_gradients_through_onednn(mixer):
    out, grads, ops = _network_run(mixer, onednn=True)
    out_default, grads_default, ops_default = _network_run(mixer, onednn=False)
    assert "trm::onednn_matmul_nt" in ops and "trm::onednn_matmul_nt" not in ops_default
    _assert_close_to_scale([out, *grads], [out_default, *grads_default])


def test_onednn_is_used_for_float32_cpu_only():
    assert not layers._onednn(torch.zeros(2, dtype=torch.bfloat16))
    assert not layers._onednn(torch.zeros(2, dtype=torch.float64))
    previous = layers._ONEDNN_FLOAT32
    try:
        assert layers.use_onednn_float32(False) is False
        assert not layers._onednn(torch.zeros(2))
        assert layers.use_onednn_float32(True) is layers._onednn_available()
    finally:
        layers.use_onednn_float32(previous)


@needs_onednn
@pytest.mark.slow
def test_compiled_float32_mlp_training_step_matches_eager_through_onednn():
    torch.manual_seed(0)
    cfg = ModelConfig(vocab_size=5, seq_len=9, hidden_size=16, num_heads=2, mixer="mlp", pos_encodings="none")
    net = Network(cfg, 2)
    h, u, r = torch.randn(3, 3, 9, 16).unbind(0)

    def run(module):
        net.zero_grad(set_to_none=True)
        out = module(h, u, None)
        (out * r).sum().backward()
        return out.detach(), [p.grad.clone() for p in net.parameters()]

    out, grads = run(net)
    out_compiled, grads_compiled = run(torch.compile(net))
    _assert_close_to_scale([out_compiled, *grads_compiled], [out, *grads])
