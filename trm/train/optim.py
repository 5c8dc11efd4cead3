"""Optimisers, learning-rate schedule and EMA of the recipe (trm-spec section 5)."""

from __future__ import annotations

import math

import torch
import torch.distributed as dist
from torch import nn


class AdamATan2(torch.optim.Optimizer):
    """Adam without epsilon: the step is atan2(m_hat, b * sqrt(v_hat)), scaled by `a`.

    atan2 is bounded and smooth at v = 0, so no epsilon is needed. The reference trains with
    the `adam-atan2` package, whose CUDA kernel computes, per step t:
        p <- p * (1 - lr * wd)
        m <- lerp(m, g, 1 - beta1);  v <- lerp(v, g^2, 1 - beta2)
        p <- p - lr * atan2(m / (1 - beta1^t), sqrt(v) / sqrt(1 - beta2^t))
    i.e. a = b = 1 (the 1.27 of the AdamATan2 paper is not applied there). Those are our
    defaults; `a` and `b` are exposed for the paper's variant.
    """

    def __init__(
        self,
        params,
        lr: float = 1e-4,
        betas: tuple[float, float] = (0.9, 0.95),
        weight_decay: float = 0.0,
        a: float = 1.0,
        b: float = 1.0,
    ) -> None:
        if lr < 0 or weight_decay < 0 or not all(0 <= beta < 1 for beta in betas):
            raise ValueError(f"invalid AdamATan2 settings: lr={lr}, betas={betas}, weight_decay={weight_decay}")
        super().__init__(params, dict(lr=lr, betas=betas, weight_decay=weight_decay, a=a, b=b))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            beta1, beta2 = group["betas"]
            for p in params:
                state = self.state[p]
                if not state:
                    state["step"] = torch.zeros((), dtype=torch.float32)
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
            steps = [self.state[p]["step"] for p in params]
            exp_avgs = [self.state[p]["exp_avg"] for p in params]
            exp_avg_sqs = [self.state[p]["exp_avg_sq"] for p in params]
            grads = [p.grad for p in params]

            torch._foreach_add_(steps, 1)
            t = steps[0].item()
            bias1 = 1 - beta1**t
            bias2_sqrt = math.sqrt(1 - beta2**t)
            if group["weight_decay"]:
                torch._foreach_mul_(params, 1 - group["lr"] * group["weight_decay"])
            torch._foreach_lerp_(exp_avgs, grads, 1 - beta1)
            torch._foreach_lerp_(exp_avg_sqs, torch._foreach_mul(grads, grads), 1 - beta2)
            denom = torch._foreach_sqrt(exp_avg_sqs)
            torch._foreach_mul_(denom, group["b"] / bias2_sqrt)
            numer = torch._foreach_mul(exp_avgs, 1 / bias1)
            for p, n, d in zip(params, numer, denom):
                p.add_(torch.atan2(n, d), alpha=-group["lr"] * group["a"])


def sign_sgd_embedding_step(
    weight: torch.Tensor, rows_grad: torch.Tensor, ids: torch.Tensor, lr: float, weight_decay: float
) -> None:
    """Update only the puzzle-embedding rows seen in the batch (trm-spec section 5).

    Gradients of repeated identifiers are summed, across all processes when distributed;
    then each row decays and moves by -lr * sign(grad). With sparse updates Adam is close to
    sign-SGD, which needs no state per row.
    """
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        world = dist.get_world_size()
        all_grads = rows_grad.new_empty((world * rows_grad.shape[0], rows_grad.shape[1]))
        all_ids = ids.new_empty(world * ids.shape[0])
        gather = getattr(dist, "all_gather_single", None) or dist.all_gather_into_tensor  # renamed in torch 2.10
        gather(all_grads, rows_grad.contiguous())
        gather(all_ids, ids.contiguous())
        rows_grad, ids = all_grads, all_ids
    unique, inverse = ids.long().unique(return_inverse=True)
    summed = torch.zeros(len(unique), rows_grad.shape[1], dtype=rows_grad.dtype, device=rows_grad.device)
    summed.index_add_(0, inverse, rows_grad)
    rows = weight[unique] * (1 - lr * weight_decay) - lr * torch.sign(summed)
    weight[unique] = rows.to(weight.dtype)


def lr_at(step: int, base_lr: float, warmup: int, total: int, min_ratio: float) -> float:
    """Linear warm-up over `warmup` steps, then a half cosine from base_lr to base_lr * min_ratio.

    With min_ratio = 1 (the paper's runs) the rate stays constant after warm-up.
    """
    if step < warmup:
        return base_lr * step / max(1, warmup)
    progress = (step - warmup) / max(1, total - warmup)
    return base_lr * (min_ratio + max(0.0, (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))))


class EMA:
    """Exponential moving average of the trained weights, evaluated and saved instead of them."""

    def __init__(self, model: nn.Module, rate: float) -> None:
        self.rate = rate
        self.shadow = {name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad}

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        params = [p for name, p in model.named_parameters() if name in self.shadow]
        torch._foreach_lerp_(list(self.shadow.values()), params, 1 - self.rate)

    @torch.no_grad()
    def copy_to(self, model: nn.Module) -> None:
        for name, p in model.named_parameters():
            if name in self.shadow:
                p.copy_(self.shadow[name])

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.shadow

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        for name, value in state.items():
            self.shadow[name].copy_(value)
