"""The deep-supervision loss head and its metrics (trm-spec section 4, step 4).

loss = sum over samples of (mean over the sample's labelled tokens of the cross entropy)
       + 0.5 * (BCE(q_halt, whole answer correct) [+ BCE(q_continue, ACT target)])

Both terms are sums over the batch; the trainer divides by the global batch size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from trm.config import IGNORE_LABEL_ID
from trm.model.trm import Carry, StepOutput


def log_stablemax(logits: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """log of stablemax: s(v) = 1/(1 - v) for v < 0, v + 1 otherwise, normalised.

    Unlike softmax it grows linearly, so a confident model cannot push logits to overflow.
    The reference adds 1e-30 to 1 - v; we keep it so our losses match to the last bit.
    """
    s = torch.where(logits < 0, 1 / (1 - logits + 1e-30), logits + 1)
    return torch.log(s / s.sum(dim=dim, keepdim=True))


def stablemax_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, ignore_index: int = IGNORE_LABEL_ID):
    """Per-token stablemax cross entropy in float64, 0 at ignored positions."""
    logprobs = log_stablemax(logits.double())
    valid = labels != ignore_index
    picked = logprobs.gather(-1, torch.where(valid, labels, 0).long().unsqueeze(-1)).squeeze(-1)
    return -torch.where(valid, picked, 0)


def softmax_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, ignore_index: int = IGNORE_LABEL_ID):
    """Per-token softmax cross entropy in float32, 0 at ignored positions."""
    flat = F.cross_entropy(
        logits.float().flatten(0, -2), labels.long().flatten(), ignore_index=ignore_index, reduction="none"
    )
    return flat.view(labels.shape)


LOSSES = {"stablemax": stablemax_cross_entropy, "softmax": softmax_cross_entropy}


def act_loss(
    out: StepOutput, carry: Carry, loss: str = "stablemax", answer_from_step: int = 1
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Loss of one deep-supervision step and its metrics, summed over the batch.

    `carry` is the carry the step returned: its data holds the labels each sample worked on
    and its `halted` flags select the samples whose metrics count (they finished this step).
    Metrics are sums; divide by `count` for means. A sample's answer (cross-entropy) term
    counts only from its supervision step `answer_from_step` on (1: every step, the paper's
    recipe); the halting terms count at every step.
    """
    labels = carry.data["labels"]
    mask = labels != IGNORE_LABEL_ID
    counts = mask.sum(-1)
    divisor = counts.clamp_min(1).unsqueeze(-1)

    with torch.no_grad():
        preds = out.logits.argmax(-1)
        correct = mask & (preds == labels)
        seq_correct = correct.sum(-1) == counts
        counted = carry.halted & (counts > 0)
        metrics = {
            "count": counted.sum(),
            "accuracy": torch.where(counted, (correct.float() / divisor).sum(-1), 0).sum(),
            "exact_accuracy": (counted & seq_correct).sum(),
            "q_halt_accuracy": (counted & ((out.q_halt >= 0) == seq_correct)).sum(),
            "steps": torch.where(counted, carry.steps, 0).sum(),
        }

    per_sample = (LOSSES[loss](out.logits, labels) / divisor).sum(-1)
    if answer_from_step > 1:
        per_sample = torch.where(carry.steps >= answer_from_step, per_sample, 0)
    lm_loss = per_sample.sum()
    q_halt_loss = F.binary_cross_entropy_with_logits(out.q_halt, seq_correct.to(out.q_halt.dtype), reduction="sum")
    total = lm_loss + 0.5 * q_halt_loss
    metrics["lm_loss"] = lm_loss.detach()
    metrics["q_halt_loss"] = q_halt_loss.detach()
    if out.target_q_continue is not None:
        q_continue_loss = F.binary_cross_entropy_with_logits(out.q_continue, out.target_q_continue, reduction="sum")
        total = total + 0.5 * q_continue_loss
        metrics["q_continue_loss"] = q_continue_loss.detach()
    return total, metrics
