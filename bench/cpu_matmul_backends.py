"""float32 matmul rates of PyTorch's default CPU path (MKL) and of oneDNN at the CPU recipe's shapes.

PyTorch sends float32 `mm` to MKL; oneDNN's float32 kernels are reachable through
`torch.ops.mkldnn._linear_pointwise`. This prints both rates for the products of one TRM-MLP
training step at D=64, batch 64, 81 cells (the channel MLP, its input and weight gradients, and the
token mixer), so the two libraries can be compared on the machine at hand.

    python bench/cpu_matmul_backends.py              # one thread
    python bench/cpu_matmul_backends.py --threads 2
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch


def best_seconds(fn: Callable[[], object], repeats: int, rounds: int = 5) -> float:
    """Best mean time of `rounds` runs of `repeats` calls, after a warm-up."""
    for _ in range(3):
        fn()
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(repeats):
            fn()
        best = min(best, (time.perf_counter() - start) / repeats)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default: 1)")
    parser.add_argument("--repeats", type=int, default=15, help="calls per timed round (default: 15)")
    parser.add_argument("--seed", type=int, default=0)
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
        a, b = best_seconds(mkl, args.repeats), best_seconds(dnn, args.repeats)
        print(f"{name:34s} {flops / a / 1e9:14.1f} {flops / b / 1e9:10.1f} {a / b:6.2f}x")


if __name__ == "__main__":
    main()
