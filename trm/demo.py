"""A self-contained demo: deep supervision on 4x4 Sudokus, trained and evaluated in a minute.

Everything is built in: the 288 valid 4x4 grids are enumerated, split by grid into train and
held-out sets, and puzzles are made by blanking cells. A small TRM-MLP is trained with the
deep-supervision carry and the stablemax + halting loss, then solves held-out puzzles while
we print how the answer improves at each supervision step.
"""

from __future__ import annotations

import itertools
import time

import numpy as np
import torch
from tqdm import tqdm

from trm.config import ModelConfig
from trm.model import TRM, act_loss

SIZE = 4  # 4x4 grid of 2x2 boxes; tokens: 0 PAD, 1 blank, 2..5 digits 1..4


def all_grids() -> np.ndarray:
    """Every valid 4x4 Sudoku solution (288 of them), as (288, 16) digits 1..4."""
    rows = list(itertools.permutations(range(1, 5)))
    grids = []
    for combo in itertools.product(rows, repeat=SIZE):
        g = np.array(combo)
        cols_ok = all(len(set(g[:, c])) == SIZE for c in range(SIZE))
        boxes_ok = all(len(set(g[r:r + 2, c:c + 2].ravel())) == SIZE for r in (0, 2) for c in (0, 2))
        if cols_ok and boxes_ok:
            grids.append(g.ravel())
    return np.stack(grids)


ALL_GRIDS = all_grids()


def make_puzzles(solutions: np.ndarray, rng: np.random.Generator, blanks: tuple[int, int]) -> dict[str, torch.Tensor]:
    """Unique-solution puzzles: blank up to blanks[1] - 1 cells (at least blanks[0]) of each
    solution, keeping a cell only when blanking it would admit a second solution."""
    grids = ALL_GRIDS
    inputs = solutions.copy()
    for row, solution in zip(inputs, solutions):
        target = rng.integers(*blanks)
        for cell in rng.permutation(SIZE * SIZE):
            if (row == 0).sum() >= target:
                break
            row[cell] = 0
            given = row > 0
            if ((grids[:, given] == solution[given]).all(-1)).sum() > 1:
                row[cell] = solution[cell]
    return {
        "inputs": torch.from_numpy(inputs + 1).int(),
        "labels": torch.from_numpy(solutions + 1).int(),
        "puzzle_identifiers": torch.zeros(len(inputs), dtype=torch.int32),
    }


def render(tokens: torch.Tensor) -> list[str]:
    cells = ["." if t <= 1 else str(int(t) - 1) for t in tokens.tolist()]
    return [" ".join(cells[r * SIZE:(r + 1) * SIZE]) for r in range(SIZE)]


def run_demo(steps: int = 400, seed: int = 0) -> dict[str, float]:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    grids = rng.permutation(ALL_GRIDS)
    train_grids, test_grids = grids[:240], grids[240:]
    test = make_puzzles(np.repeat(test_grids, 8, axis=0), rng, blanks=(6, 11))

    config = ModelConfig(vocab_size=6, seq_len=16, hidden_size=64, num_heads=2, mixer="mlp", pos_encodings="none",
                         T=2, n=2, N_sup=6, halt_exploration_prob=0.1)
    model = TRM(config)
    print(f"Model: TRM-MLP, D={config.hidden_size}, T={config.T}, n={config.n}, N_sup={config.N_sup}, "
          f"{model.num_parameters():,} parameters")
    print(f"Data: {len(train_grids)} training grids, {len(test_grids)} held-out grids "
          f"({len(test['inputs'])} held-out puzzles, 6-10 blanks each)")

    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, betas=(0.9, 0.95), weight_decay=0.1)
    model.train()
    pool = make_puzzles(np.repeat(train_grids, 12, axis=0), rng, blanks=(6, 11))
    batch = {k: v[:64] for k, v in pool.items()}
    carry, start = model.initial_carry(batch), time.perf_counter()
    with tqdm(range(1, steps + 1), desc="training", unit="step") as bar:
        for step in bar:
            pick = torch.from_numpy(rng.integers(0, len(pool["inputs"]), 64))
            batch = {k: v[pick] for k, v in pool.items()}
            carry, out = model.step(carry, batch)
            loss, metrics = act_loss(out, carry)
            opt.zero_grad()
            (loss / 64).backward()
            opt.step()
            if step % 20 == 0:
                acc = (metrics["exact_accuracy"] / metrics["count"].clamp_min(1)).item()
                bar.set_postfix_str(f"loss {loss.item() / 64:.3f}, train exact {acc:.2f}")

    model.eval()
    with torch.no_grad():
        result = model.rollout(test, config.N_sup)
    labels = test["labels"]
    exact = (result["preds"] == labels).all(-1).float().mean(-1)
    print(f"\nTrained {steps} optimizer steps in {time.perf_counter() - start:.0f}s. Held-out exact accuracy "
          "after each supervision step:")
    print("  " + "  ".join(f"step {i + 1}: {a:.1%}" for i, a in enumerate(exact.tolist())))

    # Show refinement: of the puzzles solved at the last step, the one with most errors at step 1.
    errors_first = (result["preds"][0] != labels).sum(-1)
    solved_last = (result["preds"][-1] == labels).all(-1)
    i = int(torch.argmax(torch.where(solved_last, errors_first, -1)))
    print("\nOne held-out puzzle, refined step by step (halting confidence = sigmoid(q_halt)):")
    columns = [("puzzle", render(test["inputs"][i]))]
    for s in range(config.N_sup):
        conf = torch.sigmoid(result["q_halt_logits"][s, i]).item()
        columns.append((f"step {s + 1} ({conf:.2f})", render(result["preds"][s, i])))
    columns.append(("solution", render(labels[i])))
    width = max(len(title) for title, _ in columns) + 2
    print("".join(title.ljust(width) for title, _ in columns))
    for r in range(SIZE):
        print("".join(rows[r].ljust(width) for _, rows in columns))
    return {"exact_accuracy": exact[-1].item(), "seconds": time.perf_counter() - start}
