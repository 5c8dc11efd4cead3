"""Optimisers, schedule and EMA against their defining formulas."""

import copy
import math

import pytest
import torch

from trm.train.optim import EMA, AdamATan2, lr_at, sign_sgd_embedding_step


def adam_atan2_by_the_formula(p, grads, lr, betas, wd):
    """The reference package's per-element update, written out step by step in float64."""
    p = p.double().clone()
    m, v = torch.zeros_like(p), torch.zeros_like(p)
    for t, g in enumerate(grads, start=1):
        g = g.double()
        p = p * (1 - lr * wd)
        m = m + (1 - betas[0]) * (g - m)
        v = v + (1 - betas[1]) * (g * g - v)
        p = p - lr * torch.atan2(m / (1 - betas[0] ** t), v.sqrt() / math.sqrt(1 - betas[1] ** t))
    return p


def test_adam_atan2_matches_the_reference_update_rule():
    torch.manual_seed(0)
    start = torch.randn(5, 7)
    grads = [torch.randn(5, 7) * 10 ** (-i) for i in range(4)] + [torch.zeros(5, 7)]
    param = torch.nn.Parameter(start.clone())
    opt = AdamATan2([param], lr=0.01, betas=(0.9, 0.95), weight_decay=0.1)
    for g in grads:
        param.grad = g.clone()
        opt.step()
    expected = adam_atan2_by_the_formula(start, grads, 0.01, (0.9, 0.95), 0.1)
    torch.testing.assert_close(param.data.double(), expected, atol=1e-6, rtol=1e-6)


def test_adam_atan2_step_is_bounded_and_scale_invariant():
    for scale in (1e-8, 1.0, 1e8):
        param = torch.nn.Parameter(torch.zeros(3))
        opt = AdamATan2([param], lr=0.1, weight_decay=0.0)
        param.grad = torch.tensor([1.0, -2.0, 0.0]) * scale
        opt.step()
        # first step: m_hat = g, v_hat = g^2, atan2(g, |g|) = +-pi/4; zero gradient, zero step
        torch.testing.assert_close(param.data, torch.tensor([-0.1, 0.1, 0.0]) * math.pi / 4)


def test_adam_atan2_state_round_trips():
    torch.manual_seed(0)
    a, b = torch.nn.Parameter(torch.randn(4)), torch.nn.Parameter(torch.randn(4))
    b.data.copy_(a.data)
    opt_a = AdamATan2([a], lr=0.01, weight_decay=0.1)
    for _ in range(3):
        a.grad = torch.randn(4)
        opt_a.step()
    opt_b = AdamATan2([b], lr=0.01, weight_decay=0.1)
    b.data.copy_(a.data)
    opt_b.load_state_dict(copy.deepcopy(opt_a.state_dict()))  # as if read back from disk
    g = torch.randn(4)
    a.grad, b.grad = g.clone(), g.clone()
    opt_a.step()
    opt_b.step()
    assert torch.equal(a.data, b.data)


def test_sign_sgd_updates_only_batch_rows_and_sums_repeated_ids():
    weight = torch.ones(5, 3)
    ids = torch.tensor([1, 3, 1])
    grads = torch.tensor([[1.0, -1.0, 2.0], [0.5, 0.5, -0.5], [-3.0, 2.0, -1.0]])
    sign_sgd_embedding_step(weight, grads, ids, lr=0.1, weight_decay=0.5)
    decayed = 1 - 0.1 * 0.5
    # row 1: summed gradient (-2, 1, 1) -> sign (-1, 1, 1)
    torch.testing.assert_close(weight[1], torch.tensor([decayed + 0.1, decayed - 0.1, decayed - 0.1]))
    torch.testing.assert_close(weight[3], torch.tensor([decayed - 0.1, decayed - 0.1, decayed + 0.1]))
    for untouched in (0, 2, 4):
        assert torch.equal(weight[untouched], torch.ones(3))


@pytest.mark.parametrize("min_ratio", [1.0, 0.1])
def test_schedule_warms_up_linearly_then_follows_the_cosine(min_ratio):
    assert lr_at(0, 1.0, 10, 110, min_ratio) == 0.0
    assert lr_at(5, 1.0, 10, 110, min_ratio) == pytest.approx(0.5)
    assert lr_at(10, 1.0, 10, 110, min_ratio) == pytest.approx(1.0)
    assert lr_at(60, 1.0, 10, 110, min_ratio) == pytest.approx(min_ratio + (1 - min_ratio) * 0.5)
    assert lr_at(110, 1.0, 10, 110, min_ratio) == pytest.approx(min_ratio)


def test_ema_follows_the_weights_at_its_rate():
    model = torch.nn.Linear(2, 2)
    start = {k: v.clone() for k, v in model.named_parameters()}
    ema = EMA(model, rate=0.9)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    ema.update(model)
    for name, value in ema.state_dict().items():
        torch.testing.assert_close(value, start[name] + 0.1)
