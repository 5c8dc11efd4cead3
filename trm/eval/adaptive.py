"""Running supervision steps at inference: fixed depth, or adaptive halting that shrinks the batch.

The reference evaluates every sample for all N_sup steps (trm-spec section 4). With
`adaptive=True` a sample stops at the first step whose halting logit says "done" (q_halt > 0,
or q_halt > q_continue for models trained with the ACT continue loss: the rule the model
was trained to halt by) and is physically removed from the batch, so later steps only pay
for the samples still running. `max_steps` may exceed the training N_sup (test-time depth).

Every sample's prediction is the argmax of its last step's logits and its halting logit is
that step's q_halt, so a sample that runs to the cap gets exactly what fixed-depth
evaluation gives it.

Valid halting adds a verifier: a sample stops only when its halting head says so *and* its
current answer keeps the task's rules (`trm.eval.metrics.rules_check`), so an answer that
breaks a rule is never taken while steps remain. The halting head was trained to say "done"
when the answer equals the label; a confident head on a broken answer is a head that is
wrong, and the next steps usually repair the answer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from trm.config import HALT_THRESHOLD, ModelConfig
from trm.model.schedule import schedule
from trm.model.trm import TRM, Batch, StepOutput

# Called after every step with (step number from 1, the batch rows computed, their argmax
# predictions, the step's outputs for those rows).
StepCallback = Callable[[int, torch.Tensor, torch.Tensor, StepOutput], None]
# (inputs, predictions) of some rows -> whether each prediction is an acceptable final answer.
AnswerCheck = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class RunResult:
    """What each sample of a batch ended with."""

    preds: torch.Tensor  # (B, L) argmax of the sample's last step
    q_halt: torch.Tensor  # (B,) halting logit of that step (float32)
    steps: torch.Tensor  # (B,) supervision steps the sample used

    @property
    def supervision_steps(self) -> int:
        """Samples x supervision steps actually computed."""
        return int(self.steps.sum())


def network_calls_per_step(config: ModelConfig) -> int:
    """Network calls in one supervision step: T cycles of n latent updates and one answer
    update (T * (n + 1) = 21 for T=3, n=6), or T calls for direct prediction (`trm.model.schedule`)."""
    return schedule(config).calls


def wants_to_halt(config: ModelConfig, out: StepOutput, threshold: float = HALT_THRESHOLD) -> torch.Tensor:
    """The model's own halting decision for each row, as in training (TRM.step) at threshold 0.

    A threshold above 0 waits for more confidence (q_halt > threshold, or q_halt - q_continue
    > threshold with the ACT continue loss), trading steps for accuracy.
    """
    margin = out.q_halt - out.q_continue if config.act_continue else out.q_halt
    return margin > threshold


@torch.inference_mode()
def run_steps(
    model: TRM,
    batch: Batch,
    max_steps: int,
    adaptive: bool = False,
    on_step: StepCallback | None = None,
    halt_threshold: float = HALT_THRESHOLD,
    accept: AnswerCheck | None = None,
) -> RunResult:
    """Run up to `max_steps` supervision steps on every row of `batch` from the initial state.

    Only `inputs` and `puzzle_identifiers` are used. With `adaptive`, rows whose halting
    logit says so (`wants_to_halt` at `halt_threshold`) stop and leave the batch; otherwise
    every row runs `max_steps` steps. With `accept` as well (valid halting), such a row stops
    only if `accept(inputs, preds)` passes its current answer; else it goes on.
    """
    inputs = batch["inputs"]
    B, device = inputs.shape[0], inputs.device
    data = {"inputs": inputs, "puzzle_identifiers": batch["puzzle_identifiers"]}
    y, z = model.initial_state(B)
    rows = torch.arange(B, device=device)
    preds = torch.zeros_like(inputs, dtype=torch.long)
    q_halt = torch.zeros(B, dtype=torch.float32, device=device)
    steps = torch.zeros(B, dtype=torch.long, device=device)

    for step in range(1, max_steps + 1):
        y, z, out = model.supervision_step(y, z, data)
        step_preds = out.logits.argmax(-1)
        preds[rows], q_halt[rows], steps[rows] = step_preds, out.q_halt, step
        if on_step is not None:
            on_step(step, rows, step_preds, out)
        if not adaptive or step == max_steps:
            continue
        halting = wants_to_halt(model.config, out, halt_threshold)
        if accept is not None and halting.any():
            asking = halting.nonzero()[:, 0]
            halting[asking] = accept(data["inputs"][asking], step_preds[asking])
        running = ~halting
        if not running.any():
            break
        if not running.all():
            rows, y, z = rows[running], y[running], z[:, running]
            data = {k: v[running] for k, v in data.items()}
    return RunResult(preds=preds, q_halt=q_halt, steps=steps)
