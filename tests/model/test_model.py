"""Invariants of the model family: variants, deep-supervision carry semantics, dtypes, sizes."""

import dataclasses

import pytest
import torch

from trm.config import ModelConfig, make_config
from trm.errors import ConfigError
from trm.model import TRM, act_loss
from trm.model.trm import StepOutput
from trm.train.config import CONFIGS, load_train_config

SMALL = dict(vocab_size=11, seq_len=16, hidden_size=32, num_heads=2, T=2, n=2, N_sup=4,
             halt_exploration_prob=0.0)

VARIANTS = {
    "trm-att": dict(),
    "trm-mlp": dict(mixer="mlp", pos_encodings="none"),
    "learned-pos+prefix": dict(pos_encodings="learned", puzzle_emb_ndim=32, puzzle_emb_len=2, num_puzzle_identifiers=5),
    "separate-nets": dict(separate_nets=True, y_layers=3),
    "one-step-gradient": dict(one_step_gradient=True),
    "act-continue": dict(act_continue=True),
    "single-z": dict(latent="single_z"),
    "multiscale-z": dict(latent="multiscale_z", n=3),
    "four-layers": dict(num_layers=4),
    "hrm": dict(separate_nets=True, one_step_gradient=True, act_continue=True, puzzle_emb_ndim=32,
                puzzle_emb_len=0, num_puzzle_identifiers=3),
    "direct": dict(latent="none", T=1, n=0, num_layers=3),
}


def make_batch(cfg: ModelConfig, B: int = 4, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    inputs = torch.randint(1, cfg.vocab_size, (B, cfg.seq_len), generator=g)
    labels = torch.randint(1, cfg.vocab_size, (B, cfg.seq_len), generator=g)
    labels[:, :2] = -100
    ids = torch.randint(0, cfg.num_puzzle_identifiers, (B,), generator=g)
    return {"inputs": inputs, "labels": labels, "puzzle_identifiers": ids}


@pytest.mark.parametrize("name", VARIANTS)
def test_every_variant_trains_every_weight(name):
    torch.manual_seed(0)
    model = TRM(ModelConfig(**{**SMALL, **VARIANTS[name]})).train()
    batch = make_batch(model.config)
    with torch.no_grad():  # break the zero init of the halting head so it receives gradient too
        model.q_head.weight.normal_(0, 0.1)
    carry, out = model.step(model.initial_carry(batch), batch)
    assert out.logits.shape == (4, 16, 11)
    assert (out.target_q_continue is not None) == model.config.act_continue
    loss, metrics = act_loss(out, carry)
    loss.backward()
    assert torch.isfinite(loss) and metrics["count"] == carry.halted.sum()  # metrics count halted samples
    for pname, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, f"{pname} gets no gradient"
    if model.puzzle_emb is not None:
        assert model.puzzle_emb.rows.grad.shape == (4, model.config.puzzle_emb_ndim)


def test_one_step_gradient_backpropagates_through_the_last_two_calls_only():
    torch.manual_seed(0)
    cfg = ModelConfig(**{**SMALL, "n": 3, "T": 2}, one_step_gradient=True)
    model = TRM(cfg).train()
    batch = make_batch(cfg)
    x = model.embed(batch["inputs"], batch["puzzle_identifiers"])
    y0 = model.y_init.expand(4, 16, -1)
    z0 = model.z_init[0].expand(4, 16, -1)
    y, _ = model.recurse(x, y0, z0[None])
    y.sum().backward()
    ours = model.embed_tokens.weight.grad.clone()

    model.zero_grad()
    x = model.embed(batch["inputs"], batch["puzzle_identifiers"])
    rot = model._rotary()
    with torch.no_grad():  # everything but the last z and y update
        yy, zz = y0, z0
        for cycle in range(cfg.T):
            for i in range(cfg.n):
                if not (cycle == cfg.T - 1 and i == cfg.n - 1):
                    zz = model.net(zz, yy + x, rot)
            if cycle < cfg.T - 1:
                yy = model.net(yy, zz, rot)
    zz = model.net(zz, yy + x, rot)
    yy = model.net(yy, zz, rot)
    yy.sum().backward()
    torch.testing.assert_close(y, yy)
    torch.testing.assert_close(ours, model.embed_tokens.weight.grad)


def test_full_gradient_differs_from_one_step_gradient():
    torch.manual_seed(0)
    full = TRM(ModelConfig(**SMALL))
    one = TRM(ModelConfig(**SMALL, one_step_gradient=True))
    one.load_state_dict(full.state_dict())
    grads = []
    for model in (full, one):
        batch = make_batch(model.config)
        carry, out = model.train().step(model.initial_carry(batch), batch)
        act_loss(out, carry)[0].backward()
        grads.append(model.embed_tokens.weight.grad)
    torch.testing.assert_close(full.rollout(batch, 2)["logits"], one.rollout(batch, 2)["logits"])
    assert not torch.allclose(grads[0], grads[1])


def set_halting(model: TRM, logit: float) -> None:
    with torch.no_grad():
        model.q_head.weight.zero_()
        model.q_head.bias.fill_(logit)


def test_halted_samples_restart_with_the_new_batch_running_ones_keep_theirs():
    torch.manual_seed(0)
    model = TRM(ModelConfig(**SMALL)).train()
    first, second = make_batch(model.config, seed=1), make_batch(model.config, seed=2)

    set_halting(model, -10.0)  # never halts before N_sup
    carry, _ = model.step(model.initial_carry(first), first)
    carry, _ = model.step(carry, second)
    assert torch.equal(carry.data["inputs"], first["inputs"])
    assert carry.steps.tolist() == [2, 2, 2, 2] and not carry.halted.any()

    set_halting(model, 10.0)  # halts after every step
    carry, _ = model.step(carry, second)
    assert carry.halted.all() and carry.steps.tolist() == [3, 3, 3, 3]
    carry, _ = model.step(carry, second)
    assert torch.equal(carry.data["inputs"], second["inputs"])
    assert carry.steps.tolist() == [1, 1, 1, 1]
    # A restarted sample starts from the fixed initial states: same output as a fresh carry.
    _, fresh = model.step(model.initial_carry(second), second)
    _, again = model.step(carry, second)
    torch.testing.assert_close(fresh.logits, again.logits)


def test_answer_loss_counts_only_from_its_step_and_the_halting_loss_always():
    torch.manual_seed(0)
    model = TRM(ModelConfig(**SMALL)).train()
    batch = make_batch(model.config)
    set_halting(model, -10.0)
    carry, out = model.step(model.initial_carry(batch), batch)
    carry = dataclasses.replace(carry, steps=torch.tensor([1, 3, 2, 4], dtype=torch.int32))

    def per_sample(from_step):  # each sample's loss terms, one sample at a time
        rows = []
        for i in range(4):
            one = dataclasses.replace(carry, steps=carry.steps[i : i + 1], halted=carry.halted[i : i + 1],
                                      data={k: v[i : i + 1] for k, v in carry.data.items()})
            _, m = act_loss(StepOutput(out.logits[i : i + 1], out.q_halt[i : i + 1], out.q_continue[i : i + 1]), one,
                            answer_from_step=from_step)
            rows.append((m["lm_loss"].item(), m["q_halt_loss"].item()))
        return rows

    everywhere = per_sample(1)
    assert all(lm > 0 for lm, _ in everywhere)
    _, m = act_loss(out, carry, answer_from_step=3)
    # Samples at steps 3 and 4 keep their answer term; every sample keeps its halting term.
    assert m["lm_loss"].item() == pytest.approx(everywhere[1][0] + everywhere[3][0], rel=1e-6)
    assert m["q_halt_loss"].item() == pytest.approx(sum(q for _, q in everywhere), rel=1e-6)
    assert [lm > 0 for lm, _ in per_sample(3)] == [False, True, False, True]
    assert act_loss(out, carry, answer_from_step=1)[1]["lm_loss"] == act_loss(out, carry)[1]["lm_loss"]


def test_halting_at_n_sup_and_never_early_in_evaluation():
    torch.manual_seed(0)
    model = TRM(ModelConfig(**SMALL)).eval()
    set_halting(model, 10.0)
    batch = make_batch(model.config)
    carry = model.initial_carry(batch)
    for step in range(1, model.config.N_sup + 1):
        carry, _ = model.step(carry, batch)
        assert carry.halted.all() == (step == model.config.N_sup)


def test_exploration_delays_halting_to_a_random_minimum_step():
    torch.manual_seed(0)
    model = TRM(ModelConfig(**{**SMALL, "N_sup": 6, "halt_exploration_prob": 1.0})).train()
    set_halting(model, 10.0)
    batch = make_batch(model.config, B=64)
    carry, halted_at = model.initial_carry(batch), torch.zeros(64, dtype=torch.int32)
    with torch.no_grad():
        for _ in range(6):
            running = ~carry.halted
            carry, _ = model.step(carry, batch)
            halted_at = torch.where(carry.halted & running & (halted_at == 0), carry.steps, halted_at)
    assert halted_at.min() >= 2 and halted_at.max() <= 6
    assert len(set(halted_at.tolist())) > 2  # the minimum is drawn per sample


def test_rollout_equals_repeated_evaluation_steps():
    torch.manual_seed(0)
    model = TRM(ModelConfig(**SMALL)).eval()
    batch = make_batch(model.config)
    rolled = model.rollout(batch, 3)
    carry = model.initial_carry(batch)
    for s in range(3):
        carry, out = model.step(carry, batch)
        torch.testing.assert_close(rolled["logits"][s], out.logits)
        torch.testing.assert_close(rolled["q_halt_logits"][s], out.q_halt)


def test_a_supervision_step_of_t_cycles_is_t_steps_of_one_cycle():
    """The weights do not depend on T: a (T, n) model's step s computes what the same weights at
    (1, n) compute at step T*s. So a model trained at (1, n) runs deeper per step as (T, n)
    (experiments/sudoku-hard: a curriculum in recursion depth)."""
    torch.manual_seed(0)
    deep = TRM(ModelConfig(**{**SMALL, "T": 3})).eval()
    shallow = TRM(ModelConfig(**{**SMALL, "T": 1})).eval()
    shallow.load_state_dict(deep.state_dict())  # strict: the same tensors, whatever T is
    batch = make_batch(deep.config)
    deep_out, shallow_out = deep.rollout(batch, 2), shallow.rollout(batch, 6)
    for s in range(2):
        torch.testing.assert_close(deep_out["logits"][s], shallow_out["logits"][3 * s + 2])
        torch.testing.assert_close(deep_out["q_halt_logits"][s], shallow_out["q_halt_logits"][3 * s + 2])
    assert not torch.allclose(deep_out["logits"][0], shallow_out["logits"][0])  # and T does change a step


def test_bfloat16_forward_stays_close_to_float32():
    torch.manual_seed(0)
    model = TRM(ModelConfig(**SMALL))
    bf16 = TRM(ModelConfig(**SMALL, forward_dtype="bfloat16"))
    bf16.load_state_dict(model.state_dict())
    batch = make_batch(model.config)
    a = model.rollout(batch, 2)["logits"]
    b = bf16.rollout(batch, 2)["logits"]
    assert b.dtype == torch.bfloat16
    assert (a - b.float()).abs().max() < 0.25


@pytest.mark.parametrize(
    "config, low, high",
    [("sudoku-extreme-mlp.yaml", 4.5e6, 5.5e6), ("sudoku-extreme-att.yaml", 6.5e6, 7.5e6),
     ("baselines/hrm-sudoku.yaml", 26e6, 28.5e6), ("baselines/direct-sudoku.yaml", 26e6, 28.5e6)],
)
def test_paper_parameter_counts(config, low, high):
    count = TRM(load_train_config(CONFIGS / config).model).num_parameters()
    assert low < count < high, count


@pytest.mark.parametrize(
    "values, message",
    [
        (dict(hidden_size=0), "hidden_size"),
        (dict(latent="none", n=3), "n = 0"),
        (dict(puzzle_emb_ndim=100, puzzle_emb_len=1, hidden_size=64, num_heads=2), "does not fit"),
        (dict(mixer="conv"), "mixer"),
        (dict(unknown_field=1), "unknown_field"),
    ],
)
def test_bad_config_names_the_field(values, message):
    with pytest.raises(ConfigError, match=message):
        make_config(ModelConfig, values)


@pytest.mark.slow
def test_compiled_networks_give_the_same_outputs_and_keys():
    torch.manual_seed(0)
    model = TRM(ModelConfig(**SMALL)).eval()
    batch = make_batch(model.config)
    keys, eager = list(model.state_dict()), model.rollout(batch, 2)["logits"]
    model.compile_networks()
    torch.testing.assert_close(model.rollout(batch, 2)["logits"], eager, atol=1e-4, rtol=1e-4)
    assert list(model.state_dict()) == keys


def test_compile_without_a_cxx_compiler_warns_and_stays_eager(monkeypatch):
    import shutil

    monkeypatch.setattr(shutil, "which", lambda name: None)
    model = TRM(ModelConfig(**SMALL))
    with pytest.warns(UserWarning, match="needs a C\\+\\+ compiler"):
        assert model.compile_networks() is False
    assert not hasattr(model.net, "_compiled_call_impl") or model.net._compiled_call_impl is None
