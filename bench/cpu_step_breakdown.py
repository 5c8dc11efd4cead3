"""Where a CPU training step's time goes: matrix products, compiled elementwise kernels, the rest.

Three measurements of a config's training step (the CPU recipe by default), the step `trm bench`
times:

1. Without a profiler, rounds of steps alternate between one thread and the config's threads
   in one process. With T(1) = S + P and T(N) = S + P/N, S is the serial part that more cores
   do not shrink (Python, dispatch, small eager operations, memory allocation). On a machine
   whose speed drifts this estimate is rough: read it over several runs.
2. Under torch.profiler, with inductor's per-kernel profiling, the step's CPU time by kind:
   matrix products (oneDNN or MKL), the elementwise kernels torch.compile generated, and all
   other operations. The profiler slows the step down; the shares are the figures to read.
3. The step's matrix products alone: every product one step makes (recorded with their shapes,
   strides and dtypes) replayed in order on fresh random operands, in rounds alternating with
   the whole step. Their time is a floor for the step with these matmul kernels: what the step
   would take if everything else were free.

    python bench/cpu_step_breakdown.py
    python bench/cpu_step_breakdown.py model.forward_dtype=float32
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import defaultdict
from collections.abc import Callable

import torch
import torch._inductor.config as inductor_config
from torch.profiler import ProfilerActivity, profile
from torch.utils._python_dispatch import TorchDispatchMode

from trm.train.bench import training_step
from trm.train.config import load_train_config

MATMULS = {"aten::mm", "aten::addmm", "aten::bmm", "mkldnn::_linear_pointwise"}  # profiler event names
MATMUL_OPS = {torch.ops.aten.mm.default, torch.ops.aten.addmm.default, torch.ops.aten.bmm.default,
              torch.ops.mkldnn._linear_pointwise.default, torch.ops.trm.onednn_matmul_nt.default}


class _RecordMatmuls(TorchDispatchMode):
    """Records each matrix product's operator with fresh random tensors in place of its tensor
    arguments (same shapes, strides and dtypes)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in MATMUL_OPS:
            fresh = [torch.empty_strided(a.shape, a.stride(), dtype=a.dtype).normal_() if isinstance(a, torch.Tensor)
                     else a for a in args]
            self.calls.append((func, fresh, kwargs))
        return func(*args, **kwargs)


def matmuls_alone(step: Callable[[], None]) -> tuple[int, Callable[[], None]]:
    """The matrix products of one call of `step`, as a function that replays them in order on
    fresh random operands of the same shapes, strides and dtypes (one set per product).

    Running `step` under the recording mode makes torch.compile trace new graphs, and the step
    stays slower after it; the compile cache is therefore cleared: warm the step up again."""
    recorder = _RecordMatmuls()
    with recorder:
        step()
    torch._dynamo.reset()

    def replay() -> None:
        for func, args, kwargs in recorder.calls:
            func(*args, **kwargs)

    return len(recorder.calls), replay


def seconds_per_step(step, steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    parser.add_argument("--config", default="configs/cpu/sudoku-mlp.yaml")
    parser.add_argument("--rounds", type=int, default=6, help="rounds per thread count (default: 6)")
    parser.add_argument("--steps", type=int, default=8, help="steps per round (default: 8)")
    parser.add_argument("--top", type=int, default=12, help="operations listed (default: 12)")
    args = parser.parse_args()

    inductor_config.cpp.enable_kernel_profile = True  # each generated kernel shows up as its own event
    config = load_train_config(args.config, [*args.overrides, "device=cpu"])
    bench_step = training_step(config)
    step, model_config = bench_step.step, bench_step.model_config
    threads = torch.get_num_threads()
    count, replay = matmuls_alone(step)
    for _ in range(8):  # compile, warm up
        step()
        replay()

    times: dict[int, list[float]] = {1: [], threads: []}
    for _ in range(args.rounds):
        for n in times:
            torch.set_num_threads(n)
            step()
            times[n].append(seconds_per_step(step, args.steps))
    torch.set_num_threads(threads)
    t1, tn = statistics.median(times[1]), statistics.median(times[threads])
    print(f"{args.config}: {model_config.forward_dtype}, batch {config.global_batch_size}, compile={config.compile}")
    speedups = [a / b for a, b in zip(times[1], times[threads])]
    print(f"step: {t1 * 1e3:.1f} ms on 1 thread, {tn * 1e3:.1f} ms on {threads} (medians of {args.rounds} "
          f"alternating rounds); speedup per round: median {statistics.median(speedups):.2f}x, "
          f"range {min(speedups):.2f}-{max(speedups):.2f}x")
    if threads > 1:
        # Sensitive to drift: 5% on T(N) moves S by N/(N-1) x 5% of T(N).
        serial = (threads * tn - t1) / (threads - 1)
        print(f"serial part S = (N T(N) - T(1)) / (N - 1) = {serial * 1e3:.1f} ms "
              f"({serial / tn:.0%} of the {threads}-thread step)")

    whole, alone = [], []
    for _ in range(args.rounds):
        whole.append(seconds_per_step(step, args.steps))
        alone.append(seconds_per_step(replay, args.steps))
    shares = [a / w for a, w in zip(alone, whole)]
    print(f"matrix products alone ({count} per step, replayed on fresh operands): "
          f"{statistics.median(alone) * 1e3:.1f} ms against {statistics.median(whole) * 1e3:.1f} ms for the whole step "
          f"(medians of {args.rounds} alternating rounds); share per round: median {statistics.median(shares):.0%}, "
          f"range {min(shares):.0%}-{max(shares):.0%}; the step with everything else free would run "
          f"{1 / statistics.median(shares):.2f}x faster")

    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        wall = seconds_per_step(step, args.steps)
    kinds: dict[str, float] = defaultdict(float)
    rows = []
    for event in prof.key_averages(group_by_input_shape=True):
        ms = event.self_cpu_time_total / args.steps / 1e3
        if event.key in MATMULS:
            kind = "matrix products"
        elif "cpp_fused" in event.key:
            kind = "compiled elementwise kernels"
        else:
            kind = "everything else"
        kinds[kind] += ms
        rows.append((ms, event.count // args.steps, event.key, event.input_shapes if kind == "matrix products" else ""))
    total = sum(kinds.values())
    print(f"\nunder torch.profiler, {threads} thread(s): {wall * 1e3:.1f} ms per step; CPU time of the main thread:")
    for kind in ("matrix products", "compiled elementwise kernels", "everything else"):
        print(f"  {kind:30s} {kinds[kind]:7.1f} ms  {kinds[kind] / total:5.1%}")
    print("\nlargest operations (ms per step, calls per step):")
    for ms, calls, key, shapes in sorted(rows, key=lambda r: -r[0])[:args.top]:
        print(f"  {ms:7.2f} ms {calls:4d}x  {key[:70]}  {shapes or ''}")


if __name__ == "__main__":
    main()
