"""Our training step against the reference implementation's model, timed side by side.

    python bench/against_reference.py --reference DIR            # D=64 CPU recipe and D=512 paper shapes
    python bench/against_reference.py --reference DIR --rounds 8 --shapes paper --dtypes bfloat16
    python bench/against_reference.py --reference DIR --shapes paper --dtypes float32 --compile

DIR is a checkout of the reference code (github.com/SamsungSAILMontreal/TinyRecursiveModels),
not part of this repository: only its model module (models/recursive_reasoning/trm.py and what
it imports from models/) is loaded from there, into this process. Its layers import flash-attn
only in comments at the time of writing; should a checkout import it, a stub module that fails
when called is put in its place, as the CPU never reaches it (attention runs through PyTorch's
scaled_dot_product_attention).

One training step, as both models run it: one supervision step from the halted initial carry
(reset to the initial states, T cycles of n latent updates and an answer update, gradient
through the last cycle), the softmax cross-entropy of the logits in float32, and its backward
pass; same config, batch, dtype and threads, freed memory kept for both (glibc). Ours computes
with the backend `--backend` names ("auto": the faster of ours here, as `trm train` picks it).
Rounds alternate which model goes first; each round times `--steps` steps of each after one
untimed one, and the table gives the median per-step time of each and the median of the
per-round ratios (reference time / our time: above 1 means ours is faster). Both run eagerly
unless `--compile` compiles each as its own trainer does (`trm train ... compile=true` compiles
our recursion's networks; the reference's pretrain.py compiles its whole model); the first,
untimed step of the first round then includes the compilation.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import types
from pathlib import Path

import torch
import torch.nn.functional as F

from trm.backends import reuse_freed_memory
from trm.config import ModelConfig
from trm.model.backend_choice import choose_backend
from trm.model.trm import TRM

SHAPES = {  # name: our ModelConfig fields (the MLP mixer on 9x9 Sudoku, 11 tokens)
    "recipe": dict(hidden_size=64, num_heads=2, T=2, n=3, num_layers=2),  # configs/cpu/sudoku-mlp.yaml
    "paper": dict(hidden_size=512, num_heads=8, T=3, n=6, num_layers=2, puzzle_emb_ndim=512),  # TRM-MLP Sudoku
}


def load_reference(directory: Path) -> type:
    """The reference's TinyRecursiveReasoningModel_ACTV1 class, imported from `directory`."""
    if not (directory / "models" / "recursive_reasoning" / "trm.py").is_file():
        sys.exit(f"--reference {directory}: no models/recursive_reasoning/trm.py there")
    for name in ("flash_attn", "flash_attn_interface"):  # CUDA-only; never called on the CPU
        stub = types.ModuleType(name)
        stub.flash_attn_func = lambda *args, **kwargs: sys.exit("flash-attn was called on the CPU")
        sys.modules.setdefault(name, stub)
    sys.path.insert(0, str(directory))
    from models.recursive_reasoning.trm import TinyRecursiveReasoningModel_ACTV1

    return TinyRecursiveReasoningModel_ACTV1


def reference_config(ours: ModelConfig, batch_size: int, dtype: str) -> dict:
    return dict(
        batch_size=batch_size, seq_len=ours.seq_len, puzzle_emb_ndim=ours.puzzle_emb_ndim,
        puzzle_emb_len=ours.prefix_len, num_puzzle_identifiers=ours.num_puzzle_identifiers,
        vocab_size=ours.vocab_size, H_cycles=ours.T, L_cycles=ours.n, H_layers=0, L_layers=ours.num_layers,
        hidden_size=ours.hidden_size, expansion=ours.expansion, num_heads=ours.num_heads, pos_encodings="none",
        halt_max_steps=ours.N_sup, halt_exploration_prob=0.1, forward_dtype=dtype, mlp_t=True,
        no_ACT_continue=True,
    )


def step_timer(model: torch.nn.Module, carry_of, batch: dict, logits_of) -> callable:
    """A function that runs one training step and returns its seconds."""

    def run() -> float:
        model.zero_grad(set_to_none=True)
        start = time.perf_counter()
        logits = logits_of(model(carry_of(), batch))
        F.cross_entropy(logits.float().flatten(0, 1), batch["labels"].flatten()).backward()
        return time.perf_counter() - start

    return run


def compare(reference_class: type, shape: str, dtype: str, batch_size: int, backend: str, rounds: int,
            steps: int, compile: bool = False) -> tuple[float, float, float, str]:
    ours_config = ModelConfig(vocab_size=11, seq_len=81, mixer="mlp", pos_encodings="none", forward_dtype=dtype,
                              num_puzzle_identifiers=batch_size, **SHAPES[shape])
    g = torch.Generator().manual_seed(0)
    batch = {
        "inputs": torch.randint(1, 11, (batch_size, 81), generator=g),
        "labels": torch.randint(1, 11, (batch_size, 81), generator=g),
        "puzzle_identifiers": torch.arange(batch_size, dtype=torch.int32),
    }
    chosen, why = choose_backend(backend, ours_config, batch_size, "cpu", getattr(torch, dtype))
    torch.manual_seed(0)
    ours = TRM(ours_config, chosen).train()
    theirs = reference_class(reference_config(ours_config, batch_size, dtype)).train()
    if compile:  # each as its trainer compiles it: our recursion's networks, the reference's whole model
        torch._dynamo.reset()
        ours.compile_networks()
        theirs = torch.compile(theirs)
    timers = {
        "ours": step_timer(ours, lambda: ours.initial_carry(batch), batch, lambda result: result[1].logits),
        "reference": step_timer(theirs, lambda: theirs.initial_carry(batch), batch,
                                lambda result: result[1]["logits"]),
    }
    times: dict[str, list[float]] = {"ours": [], "reference": []}
    for r in range(rounds):
        for name in ("ours", "reference") if r % 2 == 0 else ("reference", "ours"):
            timers[name]()  # untimed: the other model's step just ran
            times[name].append(statistics.median(timers[name]() for _ in range(steps)))
    ratios = [t / o for o, t in zip(times["ours"], times["reference"])]
    return statistics.median(times["ours"]), statistics.median(times["reference"]), statistics.median(ratios), why


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference", type=Path, required=True, help="a checkout of the reference code")
    parser.add_argument("--shapes", nargs="+", choices=list(SHAPES), default=list(SHAPES))
    parser.add_argument("--dtypes", nargs="+", choices=["float32", "bfloat16"], default=["float32", "bfloat16"])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--backend", default="auto", help="ours: auto, default or onednn (default: auto)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--rounds", type=int, default=4, help="alternating rounds (default: 4)")
    parser.add_argument("--steps", type=int, default=3, help="timed steps of each model per round (default: 3)")
    parser.add_argument("--compile", action="store_true",
                        help="torch.compile both as their trainers do: our networks, the reference's whole model")
    args = parser.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    reuse_freed_memory()  # for both models: the process's allocator
    reference_class = load_reference(args.reference.resolve())
    mode = "compiled" if args.compile else "eager"
    rounds = f"{args.rounds} rounds x {args.steps} steps"
    print(f"{torch.get_num_threads()} threads, batch {args.batch_size}, {rounds}, {mode}")
    print(f"{'shape':8s} {'dtype':9s} {'ours ms':>9s} {'ref. ms':>9s} {'ref./ours':>9s}  our backend")
    for shape in args.shapes:
        for dtype in args.dtypes:
            ours, theirs, ratio, why = compare(reference_class, shape, dtype, args.batch_size, args.backend,
                                               args.rounds, args.steps, args.compile)
            print(f"{shape:8s} {dtype:9s} {ours * 1000:9.1f} {theirs * 1000:9.1f} {ratio:9.3f}  {why}", flush=True)


if __name__ == "__main__":
    main()
