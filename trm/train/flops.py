"""Analytic FLOPs of one deep-supervision step, and the machine's matmul rate.

Together they give the model FLOPs utilisation of a run: the FLOPs an optimizer step needs
divided by (step time x the rate a plain matmul reaches on the same machine).

Counting convention (the one of `torch.utils.flop_counter`): a matmul of (m x k) by (k x n)
costs 2 * m * k * n FLOPs; the attention products (scores q k^T and the weighted sum of the
values) count as matmuls; elementwise work (norms, activations, rotary, softmax, the
embedding lookups, the loss) is left out. The backward pass of a matmul whose inputs all
require gradient costs two such matmuls (gradient of each operand), i.e. twice the forward.
"""

from __future__ import annotations

import time

import torch

from trm.config import ModelConfig
from trm.model.schedule import schedule


def _swiglu_inner(dim: int, expansion: float) -> int:
    """Hidden width of SwiGLU(dim, expansion), as `trm.model.layers.SwiGLU` rounds it (up to 256)."""
    return -(round(expansion * dim * 2 / 3) // -256) * 256


def _swiglu_flops(rows: int, dim: int, expansion: float) -> int:
    inner = _swiglu_inner(dim, expansion)
    return 2 * rows * dim * (2 * inner) + 2 * rows * inner * dim  # gate_up_proj, down_proj


def _block_flops(config: ModelConfig, batch_size: int) -> int:
    """Forward matmul FLOPs of one post-norm block on a batch of (B, S, D) states."""
    B, S, D = batch_size, config.total_len, config.hidden_size
    if config.mixer == "mlp":  # SwiGLU across the sequence axis, one row per (sample, channel)
        mix = _swiglu_flops(B * D, S, config.expansion)
    else:
        H = config.num_heads
        inner = H * (D // H)  # heads x head_dim, D when heads divide D
        mix = (
            2 * B * S * D * 3 * inner  # fused qkv projection
            + 2 * (2 * B * H * S * S * (D // H))  # scores q k^T and scores @ v
            + 2 * B * S * inner * D  # output projection
        )
    return mix + _swiglu_flops(B * S, D, config.expansion)


def model_flops(config: ModelConfig, batch_size: int, training: bool = True) -> dict:
    """Matmul FLOPs of one deep-supervision step (`TRM.step`) of `batch_size` samples.

    The forward pass runs all T * (n + 1) network calls (T for latent "none") and the heads:
    lm_head on every position, prefix included (the prefix is dropped after the projection),
    and q_head on position 0. In training the backward pass costs twice the forward of the
    calls that carry gradient (the last n + 1, the last one for "none", the last two with
    `one_step_gradient`) and of the heads; with `act_continue` the step also runs a second,
    gradient-free forward pass for the Q-learning target. With `training=False` (evaluation,
    `TRM.rollout`) there is only the forward pass.

    Returns FLOPs as integers:
      per_call: forward FLOPs of each network call, in order (`trm.model.schedule`)
      graded_calls: how many of the last calls carry gradient (0 when not training)
      heads: forward FLOPs of lm_head + q_head
      act_continue: forward FLOPs of the second pass (0 unless training with act_continue)
      forward: all forward FLOPs (recursion, heads, act_continue pass)
      backward: 2 x (graded calls + heads)
      total: forward + backward
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    B, S, D = batch_size, config.total_len, config.hidden_size
    block = _block_flops(config, B)
    layers = {
        "net": config.num_layers,
        "net_y": (config.y_layers or config.num_layers) if config.separate_nets else config.num_layers,
    }
    steps = schedule(config)
    graded = steps.graded
    per_call = [layers[name] * block for name in steps.networks]
    heads = 2 * B * S * D * config.vocab_size + 2 * B * D * 2

    one_pass = sum(per_call) + heads
    act_continue = one_pass if training and config.act_continue and config.N_sup > 1 else 0
    forward = one_pass + act_continue
    backward = 2 * (sum(per_call[len(per_call) - graded :]) + heads) if training else 0
    return {
        "per_call": per_call,
        "graded_calls": graded if training else 0,
        "heads": heads,
        "act_continue": act_continue,
        "forward": forward,
        "backward": backward,
        "total": forward + backward,
    }


def _synchronize(device: torch.device) -> None:
    if device.type != "cpu":
        torch.accelerator.synchronize(device)


def measure_matmul_rate(
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
    size: int | tuple[int, int, int] | None = None,
    seconds: float = 2.0,
) -> float:
    """Sustained matmul rate of this machine in FLOP/s, with torch's current thread count.

    `size` is n for n x n by n x n matmuls, or (m, k, n) for (m x k) by (k x n). The default
    square size is large enough to reach the sustained peak yet quick per call: 1024 on CPU
    (2.1 GFLOP, tens of milliseconds on a few cores; larger sizes gain a few percent at most)
    and 8192 on an accelerator (1.1 TFLOP, milliseconds, enough to fill a large GPU). This is
    the denominator of model FLOPs utilisation. The model's own matmuls are much smaller at
    small D (for D = 64 on Sudoku, (B * 81) x 64 by 64 x 256), so they run below this rate:
    pass such a shape as `size` to measure what the model can reach.

    After a warm-up (a few calls and a tenth of `seconds`), matmuls run back to back into one
    preallocated output for about `seconds`; the device is synchronised before the clock is read.
    """
    device = torch.device(device)
    if size is None:
        size = 1024 if device.type == "cpu" else 8192
    m, k, n = (size, size, size) if isinstance(size, int) else size
    a = torch.randn(m, k, dtype=dtype, device=device)
    b = torch.randn(k, n, dtype=dtype, device=device)
    out = torch.empty(m, n, dtype=dtype, device=device)

    def run(calls: int) -> float:
        _synchronize(device)
        start = time.perf_counter()
        for _ in range(calls):
            torch.mm(a, b, out=out)
        _synchronize(device)
        return time.perf_counter() - start

    run(3)
    per_call = run(1)
    # Time in chunks of about 50 ms so that the clock (and the sync) is read rarely.
    chunk = max(1, int(0.05 / max(per_call, 1e-9)))
    warm_end = time.perf_counter() + 0.1 * seconds
    while time.perf_counter() < warm_end:
        run(chunk)

    calls, elapsed = 0, 0.0
    while elapsed < seconds:
        elapsed += run(chunk)
        calls += chunk
    return 2 * m * k * n * calls / elapsed
