"""float32 matmul rates of PyTorch's default CPU path (MKL) and of oneDNN at the CPU recipe's shapes.

PyTorch sends float32 `mm` to MKL; oneDNN's float32 kernels are reachable through
`torch.ops.mkldnn._linear_pointwise`, which the CPU backend uses (`backend: onednn`,
trm/backends/cpu.py). This prints both rates for the products of one TRM-MLP training step at
D=64, batch 64, 81 cells (the channel MLP, its input and weight gradients, and the token mixer),
and with `--rounds N` also times whole float32 training steps of the CPU recipe both ways,
alternating in one process so the machine's drift hits both alike.

    python bench/cpu_matmul_backends.py              # one thread
    python bench/cpu_matmul_backends.py --threads 2 --rounds 5
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable

import torch
import torch.utils.benchmark as benchmark


def seconds_per_call(fn: Callable[[], object], threads: int, calls: int = 15, rounds: int = 5) -> float:
    """Best mean time of one call over `rounds` runs of `calls` calls (torch.utils.benchmark warms up).

    The best round, not the median: on a machine whose speed drifts, it is the steadiest figure.
    """
    timer = benchmark.Timer(stmt="fn()", globals={"fn": fn}, num_threads=threads)
    return min(timer.timeit(calls).mean for _ in range(rounds))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default: 1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--rounds", type=int, default=0, help="also time float32 training steps both ways, N rounds (default: 0)"
    )
    parser.add_argument("--config", default="configs/cpu/sudoku-mlp.yaml", help="config for --rounds")
    args = parser.parse_args()
    if not torch.backends.mkldnn.is_available():
        raise SystemExit("this PyTorch build has no oneDNN (mkldnn)")
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    onednn = torch.ops.mkldnn._linear_pointwise

    def linear(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:  # a @ b.T through oneDNN
        return onednn(a, b, None, "none", [], None)

    rows, d, inner, seq = 64 * 81, 64, 256, 81  # tokens in a batch, width, SwiGLU inner width, cells
    x, w, dy = torch.randn(rows, d), torch.randn(2 * inner, d), torch.randn(rows, 2 * inner)
    tw, tx = torch.randn(2 * inner, seq), torch.randn(seq, 64 * d)  # token mixer: weight @ (S, B*D)
    cases = [
        ("channel MLP forward   x @ W^T", 2 * rows * d * 2 * inner, lambda: x @ w.t(), lambda: linear(x, w)),
        ("input gradient        dy @ W", 2 * rows * d * 2 * inner, lambda: dy @ w, lambda: linear(dy, w.t())),
        (
            "weight gradient       dy^T @ x",
            2 * rows * d * 2 * inner,
            lambda: dy.t() @ x,
            lambda: linear(x.t(), dy.t()).t(),
        ),
        ("token mixer forward   W @ X", 2 * 2 * inner * seq * 64 * d, lambda: tw @ tx, lambda: linear(tw, tx.t())),
    ]
    for _, _, mkl, dnn in cases:
        torch.testing.assert_close(dnn(), mkl(), rtol=1e-4, atol=1e-3)
    print(f"float32 matmul, {args.threads} thread(s); GFLOP/s (higher is better)")
    print(f"{'product':34s} {'default (MKL)':>14s} {'oneDNN':>10s} {'ratio':>7s}")
    for name, flops, mkl, dnn in cases:
        a, b = seconds_per_call(mkl, args.threads), seconds_per_call(dnn, args.threads)
        print(f"{name:34s} {flops / a / 1e9:14.1f} {flops / b / 1e9:10.1f} {a / b:6.2f}x")
    if args.rounds:
        training_rounds(args.config, args.rounds, args.threads)


def training_rounds(config_path: str, rounds: int, threads: int) -> None:
    """`trm bench` of the config in float32, with and without oneDNN, alternating in this process."""
    from trm.train.bench import bench
    from trm.train.config import load_train_config

    rates: dict[bool, list[float]] = {False: [], True: []}
    print(f"\nfloat32 training steps of {config_path}, {threads} thread(s); examples x sup. steps / s")
    for r in range(rounds):
        for onednn in (False, True):
            backend = "onednn" if onednn else "default"
            overrides = ["model.forward_dtype=float32", f"backend={backend}", f"threads={threads}"]
            result = bench(load_train_config(config_path, overrides), steps=30, warmup=8)
            rates[onednn].append(result["examples_x_steps_per_s"])
        ratio = rates[True][-1] / rates[False][-1]
        print(f"round {r + 1}: default {rates[False][-1]:6.1f}  oneDNN {rates[True][-1]:6.1f}  ratio {ratio:.2f}x")
    ratios = [b / a for a, b in zip(rates[False], rates[True])]
    print(f"per-round ratio: median {statistics.median(ratios):.2f}x, range {min(ratios):.2f}-{max(ratios):.2f}x")


if __name__ == "__main__":
    main()
