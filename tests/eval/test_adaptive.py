"""Adaptive halting: the same answers as fixed-depth evaluation, for fewer network calls."""

import pytest
import torch

from tests.eval.fixtures import scripted_sudoku_model, sudoku_batch, tiny_model
from trm.eval.adaptive import network_calls_per_step, run_steps, wants_to_halt
from trm.eval.metrics import rules_check
from trm.tasks import SUDOKU
from trm.tasks.sudoku import problems as sudoku_problems
from trm.tasks.sudoku import validity as sudoku_validity

VARIANTS = {
    "trm-mlp": dict(),
    "trm-att": dict(
        mixer="attention", pos_encodings="rope", puzzle_emb_ndim=32, puzzle_emb_len=2, num_puzzle_identifiers=3
    ),
    "act-continue": dict(act_continue=True),
    "single-z": dict(latent="single_z"),
}


def batch_for(model, rows: int = 24, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    cfg = model.config
    return {
        "inputs": torch.randint(1, cfg.vocab_size, (rows, cfg.seq_len), generator=g),
        "puzzle_identifiers": torch.randint(0, cfg.num_puzzle_identifiers, (rows,), generator=g),
    }


@pytest.mark.parametrize("variant", VARIANTS)
def test_fixed_steps_reproduce_the_rollout(variant):
    model = tiny_model(11, 16, **VARIANTS[variant])
    batch = batch_for(model)
    seen = []
    result = run_steps(model, batch, 5, on_step=lambda step, rows, preds, out: seen.append(preds.clone()))
    reference = model.rollout(batch, 5)
    assert torch.equal(torch.stack(seen), reference["preds"])
    assert torch.equal(result.preds, reference["preds"][-1])
    assert torch.equal(result.q_halt, reference["q_halt_logits"][-1])
    assert result.steps.tolist() == [5] * 24 and result.supervision_steps == 5 * 24


@pytest.mark.parametrize("variant", VARIANTS)
def test_adaptive_halting_gives_each_sample_the_answer_of_its_halting_step(variant):
    model = tiny_model(11, 16, **VARIANTS[variant])
    batch = batch_for(model, rows=40)
    cap = 6
    result = run_steps(model, batch, cap, adaptive=True)
    reference = model.rollout(batch, cap)
    steps = result.steps
    assert steps.min() >= 1 and steps.max() <= cap
    assert (steps < cap).any() and (steps == cap).any(), "the test needs samples of both kinds"
    rows = torch.arange(40)
    # Samples that ran to the cap get the fixed-step prediction and halting logit (the logit up to
    # float rounding: a smaller batch may sum in another order) ...
    capped = steps == cap
    assert torch.equal(result.preds[capped], reference["preds"][-1][capped])
    torch.testing.assert_close(result.q_halt[capped], reference["q_halt_logits"][-1][capped])
    # ... and the others that of the step they halted at, where their halting head first said so.
    at_halt = reference["preds"][steps - 1, rows]
    assert torch.equal(result.preds, at_halt)
    q = reference["q_halt_logits"]
    wants = q > reference["q_continue_logits"] if model.config.act_continue else q > 0
    first = torch.where(wants.any(0), wants.int().argmax(0) + 1, cap).clamp_max(cap)
    assert torch.equal(steps, first)
    assert result.supervision_steps == int(steps.sum()) < cap * 40


def test_the_step_cap_may_exceed_the_trained_number_of_steps():
    model = tiny_model(11, 16, halting=False)  # untrained head: never halts, every sample runs to the cap
    batch = batch_for(model, rows=3)
    result = run_steps(model, batch, model.config.N_sup + 3, adaptive=True)
    assert result.steps.tolist() == [model.config.N_sup + 3] * 3
    assert torch.equal(result.preds, model.rollout(batch, model.config.N_sup + 3)["preds"][-1])


@pytest.mark.parametrize(
    "fields",
    [
        dict(),
        dict(T=3, n=6),
        dict(latent="single_z"),
        dict(latent="multiscale_z", n=3),
        dict(latent="none", T=1, n=0),
        dict(separate_nets=True),
    ],
)
def test_network_calls_per_step_count_the_recursion(fields):
    model = tiny_model(11, 16, **fields)
    calls = []
    for net in (model.net, model.net_y):
        if net is not None:
            net.register_forward_hook(lambda *_: calls.append(1))
    batch = {"inputs": torch.ones(1, 16, dtype=torch.long), "puzzle_identifiers": torch.zeros(1, dtype=torch.long)}
    with torch.no_grad():
        model.rollout(batch, steps=1)
    assert network_calls_per_step(model.config) == len(calls)


def test_halting_rule_is_the_training_one():
    from trm.model.trm import StepOutput

    out = StepOutput(
        logits=torch.zeros(3, 1, 1), q_halt=torch.tensor([1.0, -1.0, 0.5]), q_continue=torch.tensor([2.0, -2.0, 0.0])
    )
    assert wants_to_halt(tiny_model(11, 16).config, out).tolist() == [True, False, True]
    assert wants_to_halt(tiny_model(11, 16, act_continue=True).config, out).tolist() == [False, True, True]


def test_a_higher_threshold_waits_longer():
    model = tiny_model(11, 16)
    batch = batch_for(model, rows=40)
    eager = run_steps(model, batch, 6, adaptive=True, halt_threshold=-1.0)
    default = run_steps(model, batch, 6, adaptive=True)
    patient = run_steps(model, batch, 6, adaptive=True, halt_threshold=1.0)
    assert (eager.steps <= default.steps).all() and (default.steps <= patient.steps).all()
    assert eager.supervision_steps < patient.supervision_steps


def test_valid_halting_waits_until_the_answer_keeps_the_rules():
    # Rows: valid from step 3, from step 1, never; and valid from step 1 with a head that never halts.
    # Every confident head says "halt" from step 1.
    valid_from, q_halt = [3, 1, 99, 1], [5.0, 5.0, 5.0, -5.0]
    batch = sudoku_batch(4)
    adaptive = run_steps(scripted_sudoku_model(valid_from, q_halt), batch, 6, adaptive=True)
    assert adaptive.steps.tolist() == [1, 1, 1, 6]  # the model's own rule, blind to the broken answers
    valid = run_steps(scripted_sudoku_model(valid_from, q_halt), batch, 6, adaptive=True, accept=rules_check(SUDOKU))
    assert valid.steps.tolist() == [3, 1, 6, 6]
    answers = valid.preds.numpy()
    assert sudoku_validity(batch["inputs"].numpy(), answers).tolist() == [True, True, False, True]
    broken = "row 1 repeats 3, column 3 repeats 3, box 1 repeats 3"
    assert sudoku_problems(batch["inputs"][2:3].numpy(), answers[2:3]) == [broken]
    # A threshold still applies: q_halt 5 does not pass 10, so every row runs to the cap.
    patient = run_steps(
        scripted_sudoku_model(valid_from, q_halt),
        batch,
        6,
        adaptive=True,
        halt_threshold=10,
        accept=rules_check(SUDOKU),
    )
    assert patient.steps.tolist() == [6, 6, 6, 6]
