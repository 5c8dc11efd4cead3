"""Where a CPU training step's time goes: matrix products, compiled elementwise kernels, the rest.

Five measurements of a config's training step (the CPU recipe by default), the step `trm bench`
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
4. The same products on every float32 matmul library at hand: oneDNN, PyTorch's default (MKL
   on x86-64) and numpy's BLAS (OpenBLAS in numpy's wheels), each product timed alone on each.
   Taking the fastest library for every product gives a floor for the step with any of them:
   the most examples x supervision steps per second a step of this computation could reach
   through these kernels if nothing else took time. Each product is timed on the same operands
   call after call, so they are hot in cache; inside the step they need not be.
5. The CPU's float32 peak: a small C loop of independent fused multiply-adds in the widest
   vectors the CPU has (AVX2 or AVX-512), compiled with the system's C compiler ($CC, else cc,
   gcc or clang) and run on as many threads as the step. No matrix kernel can beat it, so the
   step's float32 products take at least their FLOPs divided by it: the most examples x
   supervision steps per second any kernels could give this computation if nothing else took
   time (x86-64 Linux only).

    python bench/cpu_step_breakdown.py
    python bench/cpu_step_breakdown.py model.forward_dtype=float32
    python bench/cpu_step_breakdown.py --part kernels     # measurement 4 alone
    python bench/cpu_step_breakdown.py --part peak        # measurement 5 alone
"""

from __future__ import annotations

import argparse
import functools
import os
import shlex
import shutil
import statistics
import subprocess
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable

import numpy as np
import torch
import torch._inductor.config as inductor_config
from torch.profiler import ProfilerActivity, profile
from torch.utils._python_dispatch import TorchDispatchMode

from trm.train.bench import training_step
from trm.train.config import load_train_config

PARTS = ("threads", "profile", "replay", "kernels", "peak")  # measurements 1 to 5
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


def record_matmuls(step: Callable[[], None]) -> list[tuple]:
    """The matrix products of one call of `step`: (operator, fresh operands, kwargs) each, in order.

    Running `step` under the recording mode makes torch.compile trace new graphs, and the step
    stays slower after it; the compile cache is therefore cleared: warm the step up again."""
    recorder = _RecordMatmuls()
    with recorder:
        step()
    torch._dynamo.reset()
    return recorder.calls


def replay(calls: list[tuple]) -> None:
    """Runs recorded products in order, on their fresh operands."""
    for func, args, kwargs in calls:
        func(*args, **kwargs)


def _as_product(func, args: list) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(A, B) whose product A @ B is the recorded product's (a bias it adds left out); None for
    batched products."""
    if func is torch.ops.trm.onednn_matmul_nt.default:
        return args[0], args[1].t()
    if func is torch.ops.aten.mm.default:
        return args[0], args[1]
    if func is torch.ops.aten.addmm.default:
        return args[1], args[2]
    if func is torch.ops.mkldnn._linear_pointwise.default:
        return args[0].reshape(-1, args[0].shape[-1]), args[1].t()
    return None


def _float32_products(calls: list[tuple]):
    """(A, B) of each recorded float32 product, in order."""
    for func, args, _ in calls:
        ab = _as_product(func, args)
        if ab is not None and ab[0].dtype == torch.float32:
            yield ab


def _flops(a: torch.Tensor, b: torch.Tensor) -> int:
    return 2 * a.shape[0] * a.shape[1] * b.shape[1]


@functools.cache
def _blas_name() -> str:
    try:
        return np.show_config(mode="dicts")["Build Dependencies"]["blas"]["name"]
    except Exception:  # the layout of numpy's build information is not a stable API
        return "BLAS"


def _kernels(a: torch.Tensor, b: torch.Tensor) -> dict[str, Callable[[], object]]:
    """a @ b by each float32 library, on operands prepared outside the timed call."""
    def row_or_column_major(t: torch.Tensor) -> torch.Tensor:  # what oneDNN and BLAS take as they are
        return t if 1 in t.stride() else t.contiguous()

    strided = [row_or_column_major(t) for t in (a, b.t())]
    out = torch.empty(a.shape[0], b.shape[1], dtype=a.dtype)
    a_np, b_np, out_np = row_or_column_major(a).numpy(), row_or_column_major(b).numpy(), out.numpy()
    return {
        "oneDNN": lambda: torch.ops.mkldnn._linear_pointwise(*strided, None, "none", [], None),
        "torch.mm": lambda: torch.mm(a, b, out=out),
        f"numpy ({_blas_name()})": lambda: np.matmul(a_np, b_np, out=out_np),
    }


def kernel_floor(calls: list[tuple], repeats: int = 5, calls_per_repeat: int = 10) -> float | None:
    """Measurement 4: each float32 product of the step timed alone on each library (see the module
    docstring). Libraries are timed in separate passes with a pause between them, so that the
    threads one library leaves spinning do not slow the next one."""
    groups: Counter = Counter()
    operands = {}
    for a, b in _float32_products(calls):
        key = (tuple(a.shape), a.stride(), tuple(b.shape), b.stride())
        groups[key] += 1
        operands[key] = (a, b)
    if not groups:
        print("\nno float32 products in this step: measurement 4 is for float32 steps")
        return None
    kernels = {key: _kernels(*operands[key]) for key in groups}
    for key, fns in kernels.items():  # every library computes the same product
        a, b = operands[key]
        expected = a @ b
        for name, fn in fns.items():
            got = fn()
            got = torch.from_numpy(got) if isinstance(got, np.ndarray) else got
            torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-3, msg=f"{name} at {key}")
    libraries = list(next(iter(kernels.values())))
    seconds: dict[str, dict] = {name: {} for name in libraries}
    for name in libraries:
        time.sleep(0.5)
        for key, fns in kernels.items():
            fns[name]()
            seconds[name][key] = min(seconds_per_step(fns[name], calls_per_repeat) for _ in range(repeats))

    flops = {key: _flops(*operands[key]) for key in groups}
    print(f"\nthe step's {sum(groups.values())} float32 products on each library, each timed alone "
          f"(best of {repeats} x {calls_per_repeat} calls); GFLOP/s:")
    print(f"  {'count':>5s} {'M':>5s} {'K':>5s} {'N':>5s}  " + "  ".join(f"{n:>18s}" for n in libraries))
    for key in sorted(groups, key=lambda k: -groups[k] * flops[k]):
        (m, k), (_, n) = key[0], key[2]
        rates = "  ".join(f"{flops[key] / seconds[name][key] / 1e9:18.0f}" for name in libraries)
        print(f"  {groups[key]:5d} {m:5d} {k:5d} {n:5d}  {rates}")
    total_flops = sum(groups[k] * flops[k] for k in groups)
    totals = {name: sum(groups[k] * seconds[name][k] for k in groups) for name in libraries}
    fastest = sum(groups[k] * min(seconds[name][k] for name in libraries) for k in groups)
    for name, t in totals.items():
        print(f"  every product on {name:22s} {t * 1e3:7.1f} ms per step, {total_flops / t / 1e9:6.1f} GFLOP/s")
    print(f"  the fastest library for each product {fastest * 1e3:7.1f} ms per step, "
          f"{total_flops / fastest / 1e9:6.1f} GFLOP/s")
    return fastest


# Measurement 5. CHAINS independent accumulators keep both FMA pipes busy through the FMA latency;
# distinct starting values keep the compiler from merging them into one chain.
_FMA_LOOP = r"""
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static long iterations;
static void* chains(void* out) {
    VEC a[CHAINS];
    for (int j = 0; j < CHAINS; j++) a[j] = SET1(1.0f + 0.01f * j);
    VEC b = SET1(0.9999999f), c = SET1(1e-7f);
    for (long i = 0; i < iterations; i++) {
#pragma GCC unroll 32
        for (int j = 0; j < CHAINS; j++) a[j] = FMA(a[j], b, c);
    }
    float lanes[LANES], sum = 0;
    for (int j = 0; j < CHAINS; j++) { STORE(lanes, a[j]); sum += lanes[0]; }
    *(float*)out = sum;
    return NULL;
}
int main(int argc, char** argv) {
    int threads = atoi(argv[1]);
    iterations = atol(argv[2]);
    pthread_t ids[256];
    float sums[256];
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int t = 0; t < threads; t++) pthread_create(&ids[t], NULL, chains, &sums[t]);
    for (int t = 0; t < threads; t++) pthread_join(ids[t], NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double seconds = (t1.tv_sec - t0.tv_sec) + 1e-9 * (t1.tv_nsec - t0.tv_nsec);
    printf("%.6f %f\n", 2.0 * LANES * CHAINS * iterations * threads / seconds / 1e9, sums[0]);
    return 0;
}
"""
_VECTORS = {  # CPU flag: compiler flags and macros
    "avx512f": (["-mavx512f"], {"VEC": "__m512", "SET1": "_mm512_set1_ps", "FMA": "_mm512_fmadd_ps",
                                "STORE": "_mm512_storeu_ps", "LANES": "16", "CHAINS": "24"}),
    "avx2": (["-mavx2", "-mfma"], {"VEC": "__m256", "SET1": "_mm256_set1_ps", "FMA": "_mm256_fmadd_ps",
                                   "STORE": "_mm256_storeu_ps", "LANES": "8", "CHAINS": "12"}),
}


def fma_peak(thread_counts: tuple[int, ...], iterations: int = 100_000_000,
             repeats: int = 3) -> tuple[dict[int, float], str] | str:
    """The CPU's float32 FMA rate in GFLOP/s on each of `thread_counts` threads (one build of the
    loop), and the instruction set; or why it could not be measured."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        return "no /proc/cpuinfo (the peak is measured on x86-64 Linux only)"
    isa = next((name for name in _VECTORS if name in flags), None)
    found = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    compiler = shlex.split(os.environ["CC"]) if os.environ.get("CC") else [found] if found else None
    if isa is None or compiler is None:
        return "needs an x86-64 CPU with AVX2 or AVX-512 and a C compiler"
    cflags, macros = _VECTORS[isa]
    defines = [f"-D{name}={value}" for name, value in macros.items()]
    with tempfile.TemporaryDirectory() as tmp:
        source, binary = os.path.join(tmp, "fma.c"), os.path.join(tmp, "fma")
        with open(source, "w") as f:
            f.write(_FMA_LOOP)
        try:
            subprocess.run([*compiler, "-O2", *cflags, *defines, "-pthread", source, "-o", binary],
                           capture_output=True, text=True, check=True)
            rates = {threads: max(float(subprocess.run([binary, str(threads), str(iterations)], capture_output=True,
                                                       text=True, check=True).stdout.split()[0])
                                  for _ in range(repeats))
                     for threads in thread_counts}
        except (OSError, subprocess.CalledProcessError) as error:
            detail = getattr(error, "stderr", None) or error
            return f"the FMA loop did not build or run with {' '.join(compiler)}: {str(detail).strip()[:300]}"
    return rates, isa


def peak_bound(calls: list[tuple], threads: int, batch: int) -> None:
    """Measurement 5: the step's float32 products at the CPU's FMA peak."""
    flops = sum(_flops(a, b) for a, b in _float32_products(calls))
    if not flops:
        print("\nno float32 products in this step: measurement 5 is for float32 steps")
        return
    measured = fma_peak(tuple({threads, 1}))
    if isinstance(measured, str):
        print(f"\nthe float32 FMA peak was not measured: {measured}")
        return
    rates, isa = measured
    rate = rates[threads]
    per_thread = f", {rates[1]:.1f} on one" if threads > 1 else ""
    floor = flops / (rate * 1e9)
    print(f"\nfloat32 FMA peak ({isa}, independent multiply-adds in registers): {rate:.1f} GFLOP/s on "
          f"{threads} thread(s){per_thread}")
    print(f"  the step's float32 products: {flops / 1e9:.2f} GFLOP, so at least {floor * 1e3:.1f} ms per step at "
          f"that peak: at most {batch / floor:.0f} examples x supervision steps per second from any matrix "
          "kernels, with nothing else taking time")


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
    parser.add_argument("--part", choices=["all", *PARTS], default="all",
                        help="run one measurement alone (default: all five)")
    args = parser.parse_args()
    parts = set(PARTS) if args.part == "all" else {args.part}

    inductor_config.cpp.enable_kernel_profile = True  # each generated kernel shows up as its own event
    config = load_train_config(args.config, [*args.overrides, "device=cpu"])
    bench_step = training_step(config)
    step, model_config = bench_step.step, bench_step.model_config
    threads = torch.get_num_threads()
    calls = record_matmuls(step)
    print(f"{args.config}: {model_config.forward_dtype}, batch {config.global_batch_size}, compile={config.compile}")
    if "kernels" in parts:
        fastest = kernel_floor(calls)
        if fastest is not None:
            print(f"  so at most {config.global_batch_size / fastest:.0f} examples x supervision steps per second "
                  "for a step of this computation through these libraries")
    if "peak" in parts:
        peak_bound(calls, threads, config.global_batch_size)
    if not parts - {"kernels", "peak"}:
        return

    replay_step = functools.partial(replay, calls)
    for _ in range(8):  # compile, warm up
        step()
        replay_step()
    if "threads" in parts:
        thread_split(step, threads, args.rounds, args.steps)
    if "replay" in parts:
        replay_share(step, replay_step, len(calls), args.rounds, args.steps)
    if "profile" in parts:
        profile_kinds(step, threads, args.steps, args.top)


def thread_split(step: Callable[[], None], threads: int, rounds: int, steps: int) -> None:
    """Measurement 1: rounds alternating between one thread and `threads`."""
    times: dict[int, list[float]] = {1: [], threads: []}
    for _ in range(rounds):
        for n in times:
            torch.set_num_threads(n)
            step()
            times[n].append(seconds_per_step(step, steps))
    torch.set_num_threads(threads)
    t1, tn = statistics.median(times[1]), statistics.median(times[threads])
    speedups = [a / b for a, b in zip(times[1], times[threads])]
    print(f"\nstep: {t1 * 1e3:.1f} ms on 1 thread, {tn * 1e3:.1f} ms on {threads} (medians of {rounds} "
          f"alternating rounds); speedup per round: median {statistics.median(speedups):.2f}x, "
          f"range {min(speedups):.2f}-{max(speedups):.2f}x")
    if threads > 1:
        # Sensitive to drift: 5% on T(N) moves S by N/(N-1) x 5% of T(N).
        serial = (threads * tn - t1) / (threads - 1)
        print(f"serial part S = (N T(N) - T(1)) / (N - 1) = {serial * 1e3:.1f} ms "
              f"({serial / tn:.0%} of the {threads}-thread step)")


def replay_share(step: Callable[[], None], replay: Callable[[], None], count: int, rounds: int, steps: int) -> None:
    """Measurement 3: the step's products replayed alone, in rounds alternating with the step."""
    whole, alone = [], []
    for _ in range(rounds):
        whole.append(seconds_per_step(step, steps))
        alone.append(seconds_per_step(replay, steps))
    shares = [a / w for a, w in zip(alone, whole)]
    print(f"\nmatrix products alone ({count} per step, replayed on fresh operands): "
          f"{statistics.median(alone) * 1e3:.1f} ms against {statistics.median(whole) * 1e3:.1f} ms for the whole step "
          f"(medians of {rounds} alternating rounds); share per round: median {statistics.median(shares):.0%}, "
          f"range {min(shares):.0%}-{max(shares):.0%}; the step with everything else free would run "
          f"{1 / statistics.median(shares):.2f}x faster")


def profile_kinds(step: Callable[[], None], threads: int, steps: int, top: int) -> None:
    """Measurement 2: the step's CPU time by kind of operation, under torch.profiler."""
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        wall = seconds_per_step(step, steps)
    kinds: dict[str, float] = defaultdict(float)
    rows = []
    for event in prof.key_averages(group_by_input_shape=True):
        ms = event.self_cpu_time_total / steps / 1e3
        if event.key in MATMULS:
            kind = "matrix products"
        elif "cpp_fused" in event.key:
            kind = "compiled elementwise kernels"
        else:
            kind = "everything else"
        kinds[kind] += ms
        rows.append((ms, event.count // steps, event.key, event.input_shapes if kind == "matrix products" else ""))
    total = sum(kinds.values())
    print(f"\nunder torch.profiler, {threads} thread(s): {wall * 1e3:.1f} ms per step; CPU time of the main thread:")
    for kind in ("matrix products", "compiled elementwise kernels", "everything else"):
        print(f"  {kind:30s} {kinds[kind]:7.1f} ms  {kinds[kind] / total:5.1%}")
    print("\nlargest operations (ms per step, calls per step):")
    for ms, calls, key, shapes in sorted(rows, key=lambda r: -r[0])[:top]:
        print(f"  {ms:7.2f} ms {calls:4d}x  {key[:70]}  {shapes or ''}")


if __name__ == "__main__":
    main()
