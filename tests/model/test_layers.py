"""The sequence-major layout of TRM-MLP blocks: same results as the (B, S, D) formulation."""

import torch
import torch.nn.functional as F

from trm.backends import Backend, OneDNN
from trm.config import ModelConfig
from trm.model.layers import Network, SwiGLU, rms_norm, sequence_major


def test_sequence_major_keeps_values_and_copies_only_once():
    x = torch.randn(2, 3, 5, 4)  # (K, B, S, D)
    s = sequence_major(x)
    assert torch.equal(s, x)
    assert s.transpose(-3, -2).is_contiguous()
    assert sequence_major(s).data_ptr() == s.data_ptr()


def test_token_swiglu_features_first_equals_transposed_linear():
    torch.manual_seed(0)
    mlp = SwiGLU(9, 4, OneDNN()).double()
    t = torch.randn(9, 12, dtype=torch.float64)  # (features, tokens)
    expected = mlp(t.t()).t()
    torch.testing.assert_close(mlp(t, features_first=True), expected)


def test_mlp_network_matches_the_batch_major_formulation():
    torch.manual_seed(0)
    cfg = ModelConfig(vocab_size=5, seq_len=9, hidden_size=8, num_heads=2, mixer="mlp", pos_encodings="none")
    net = Network(cfg, 2, OneDNN()).double()
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
    net_default = Network(cfg, 2, Backend()).double()
    net_default.load_state_dict(net.state_dict())
    out = net_default(h, u, None)  # the default backend's (B, S, D) blocks
    torch.testing.assert_close(out, expected)
    assert out.is_contiguous()
