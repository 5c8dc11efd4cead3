"""Our models reproduce the reference implementation's outputs and gradients.

The fixtures (shared/fixtures/official-trm) hold small random-weight checkpoints in the
reference format with the reference model's outputs; tolerances are those of its README.
"""

import pytest
import torch

from tests.conftest import shared_path
from trm.model import act_loss, load_official, stablemax_cross_entropy
from trm.model.checkpoint import convert_official_state

CASES = [
    "trm_mlp_sudoku",
    "trm_mlp_sudoku_prefix16",
    "trm_mlp_sudoku_shallow",
    "trm_att_arc",
    "trm_att_learned_maze",
    "hrm_att_arc",
]
# Deep random-weight MLP cases drift in float32 after step 0 (README: up to ~0.08 vs float64 on
# the CPU it was measured on). Another BLAS sums in another order: on another x86 CPU and
# on an H100 these cases drift to 0.091 and their gradients land 1.1e-3 from the reference, so
# they get twice the README's bounds; an error in the model is orders of magnitude larger.
DEEP = {"trm_mlp_sudoku", "trm_mlp_sudoku_prefix16"}
DEEP_DRIFT = 0.16
DEEP_GRADIENT = 2e-3


def load_case(case: str):
    root = shared_path("fixtures", "official-trm")
    model = load_official(root / f"{case}.official.pt", root / f"{case}.config.json")
    expected = torch.load(root / f"{case}.expected.pt", weights_only=False)
    batch = {k: expected[k] for k in ("inputs", "labels", "puzzle_identifiers")}
    return model, expected, batch


def check_outputs(out: dict, expected: dict, case: str) -> None:
    """Logits and halting logits of every step within 1e-3 of the reference's (step 0 for DEEP)."""
    for s in range(1) if case in DEEP else range(expected["logits"].shape[0]):
        for key in ("logits", "q_halt_logits", "q_continue_logits"):
            torch.testing.assert_close(out[key][s].cpu(), expected[key][s], atol=1e-3, rtol=0)


def check_training_steps(model, expected: dict, batch: dict, case: str) -> None:
    """Two consecutive training steps (halted samples restart between them) on the model's
    device: each loss and the gradient of every trained parameter against the reference's."""
    kind = "hrm" if case.startswith("hrm") else "trm"
    model.train()
    params = dict(model.named_parameters())
    loss_tol = 3e-3 if case in DEEP else 2e-5
    carry = model.initial_carry(batch)
    for s in range(2):
        model.zero_grad()
        carry, out = model.step(carry, batch)
        loss, _ = act_loss(out, carry)
        loss.backward()
        assert loss.item() == pytest.approx(expected["train_losses"][s].item(), rel=loss_tol, abs=loss_tol)

        grads = convert_official_state(expected["train_grads"][s], kind)
        assert set(grads) - {"puzzle_emb_local_grad"} == set(params), "every trained parameter is checked"
        for key, want in grads.items():
            got = (model.puzzle_emb.rows.grad if key == "puzzle_emb_local_grad" else params[key].grad).cpu()
            rel = ((got - want).norm() / want.norm().clamp_min(1e-12)).item()
            bound = DEEP_GRADIENT if case in DEEP else 1e-3
            assert rel < bound, f"step {s} gradient of {key}: relative error {rel:.2e}"


@pytest.mark.parametrize("case", CASES)
def test_eval_logits_and_halting_logits_every_step(case):
    model, expected, batch = load_case(case)
    out = model.eval().rollout(batch, expected["logits"].shape[0])
    check_outputs(out, expected, case)
    if case in DEEP:  # later steps within float32 drift (above)
        assert (out["logits"] - expected["logits"]).abs().max() < DEEP_DRIFT


@pytest.mark.parametrize("case", CASES)
def test_stablemax_cross_entropy_first_step(case):
    model, expected, batch = load_case(case)
    logits = model.eval().rollout(batch, 1)["logits"][0]
    ce = stablemax_cross_entropy(logits, batch["labels"]).float()
    torch.testing.assert_close(ce, expected["stablemax_ce_first_step"], atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("case", CASES)
def test_training_losses_and_every_gradient(case):
    check_training_steps(*load_case(case), case)
