"""The analytic FLOPs of one supervision step agree with torch's FLOP counter on a real step."""

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from trm.config import ModelConfig
from trm.model import TRM, act_loss
from trm.train.flops import measure_matmul_rate, model_flops

SMALL = dict(vocab_size=11, seq_len=16, hidden_size=32, num_heads=2, T=2, n=3, N_sup=4,
             halt_exploration_prob=0.0)

VARIANTS = {
    "attention+rope": dict(),
    "attention+learned+prefix": dict(pos_encodings="learned", puzzle_emb_ndim=32, puzzle_emb_len=3,
                                     num_puzzle_identifiers=5),
    "mlp": dict(mixer="mlp", pos_encodings="none"),
    "mlp+prefix": dict(mixer="mlp", pos_encodings="none", puzzle_emb_ndim=48, puzzle_emb_len=0,
                       num_puzzle_identifiers=3),
    "one-step-gradient": dict(one_step_gradient=True),
    "single-z": dict(latent="single_z"),
    "single-z+one-step": dict(latent="single_z", one_step_gradient=True, separate_nets=True),
    "multiscale-z": dict(latent="multiscale_z", n=3),
    "none/direct": dict(latent="none", T=1, n=0, num_layers=3),
    "none, T=3": dict(latent="none", T=3, n=0),
    "act-continue": dict(act_continue=True),
    "hrm": dict(separate_nets=True, y_layers=3, one_step_gradient=True, act_continue=True, puzzle_emb_ndim=32,
                puzzle_emb_len=0, num_puzzle_identifiers=3, T=2, n=2),
}


def make_batch(cfg: ModelConfig, B: int):
    g = torch.Generator().manual_seed(0)
    return {
        "inputs": torch.randint(1, cfg.vocab_size, (B, cfg.seq_len), generator=g),
        "labels": torch.randint(1, cfg.vocab_size, (B, cfg.seq_len), generator=g),
        "puzzle_identifiers": torch.randint(0, cfg.num_puzzle_identifiers, (B,), generator=g),
    }


def counted(fn) -> int:
    # On CPU, scaled_dot_product_attention runs a fused kernel the counter has no formula for
    # (it would count 0); the math backend runs it as two batched matmuls, which it counts.
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


@pytest.mark.parametrize("name", VARIANTS)
def test_model_flops_match_the_flop_counter_on_a_training_step(name):
    torch.manual_seed(0)
    cfg = ModelConfig(**{**SMALL, **VARIANTS[name]})
    model = TRM(cfg).train()
    B = 3
    batch = make_batch(cfg, B)
    carry = model.initial_carry(batch)
    result = {}

    def forward():
        new_carry, out = model.step(carry, batch)
        result["loss"] = act_loss(out, new_carry)[0] / B

    forward_flops = counted(forward)
    backward_flops = counted(lambda: result["loss"].backward())

    expected = model_flops(cfg, B, training=True)
    # Nothing that FlopCounterMode counts is left out, so the counts agree exactly.
    assert expected["forward"] == forward_flops
    assert expected["backward"] == backward_flops
    assert expected["total"] == forward_flops + backward_flops
    assert len(expected["per_call"]) == model.schedule.calls
    assert (expected["act_continue"] > 0) == cfg.act_continue


@pytest.mark.parametrize("name", ["attention+rope", "mlp+prefix", "hrm"])
def test_model_flops_match_the_flop_counter_in_evaluation(name):
    torch.manual_seed(0)
    cfg = ModelConfig(**{**SMALL, **VARIANTS[name]})
    model = TRM(cfg).eval()
    batch = make_batch(cfg, 2)
    expected = model_flops(cfg, 2, training=False)
    assert expected["backward"] == 0 and expected["act_continue"] == 0
    assert counted(lambda: model.rollout(batch, steps=3)) == 3 * expected["total"]


def test_model_flops_of_the_paper_sudoku_mlp_model():
    # TRM-MLP on Sudoku (D 512, T 3, n 6, 16 + 81 positions): per sample and layer the channel
    # SwiGLU (inner 1536) costs 97 * 2 * 3 * 512 * 1536 FLOPs and the token SwiGLU (inner 4 * 97 * 2/3
    # = 259, rounded up to 512) 512 * 2 * 3 * 97 * 512.
    cfg = ModelConfig(mixer="mlp", pos_encodings="none", puzzle_emb_ndim=512)
    flops = model_flops(cfg, batch_size=1)
    block = 97 * 2 * 3 * 512 * 1536 + 512 * 2 * 3 * 97 * 512
    heads = 2 * 97 * 512 * 11 + 2 * 512 * 2
    assert flops["per_call"] == [2 * block] * 21
    assert flops["forward"] == 21 * 2 * block + heads
    assert flops["backward"] == 2 * (7 * 2 * block + heads)
    assert flops["graded_calls"] == 7
    assert model_flops(cfg, batch_size=8)["total"] == 8 * flops["total"]


def test_model_flops_rejects_an_empty_batch():
    with pytest.raises(ValueError, match="batch_size"):
        model_flops(ModelConfig(), 0)


def test_measure_matmul_rate_is_a_plausible_rate():
    rate = measure_matmul_rate(size=128, seconds=0.05)
    assert 1e7 < rate < 1e15
    assert measure_matmul_rate(size=(64, 32, 16), seconds=0.02) > 0
