"""The test-time scaling engine (`trm.eval.trajectories`) with the shipped models on small puzzle sets."""

import time
from pathlib import Path

import numpy as np
import pytest
import torch

import trm
from tests.precision import reordering_tolerance
from trm.data.maze_generator import generate_mazes
from trm.data.sudoku import generate_puzzles
from trm.errors import ConfigError
from trm.eval.adaptive import run_steps
from trm.eval.scaling import accuracy_at
from trm.eval.trajectories import Plan, Trajectory, ks_up_to, rank_answers, run_trajectories
from trm.model import load_model
from trm.tasks import ARC, MAZE, SUDOKU, Puzzle
from trm.tasks.maze import GOAL, START, WALL

PRETRAINED = Path(trm.__file__).parent / "pretrained"
STEPS = 6  # step limit of most runs here: short, so that some puzzles need more than one trajectory


@pytest.fixture(scope="module")
def sudoku_model():
    return load_model(PRETRAINED / "sudoku-9x9")


@pytest.fixture(scope="module")
def maze_model():
    return load_model(PRETRAINED / "maze-11x11")


@pytest.fixture(scope="module")
def sudokus():
    """(inputs, labels) tokens of 8 generated minimal Sudokus (unique solutions)."""
    made = generate_puzzles(8, np.random.default_rng(1), None, progress=False)
    inputs = np.stack([SUDOKU.encode(q.reshape(9, 9)) for q in made.questions])
    labels = np.stack([SUDOKU.encode(a.reshape(9, 9)) for a in made.answers])
    return inputs, labels


@pytest.fixture(scope="module")
def mazes():
    """(inputs, labels) tokens of 4 fresh 11x11 mazes."""
    grids, paths = generate_mazes(4, size=11, seed=2027)
    return grids.reshape(4, -1).astype(np.int64), paths.reshape(4, -1).astype(np.int64)


def run(model, task, inputs, **plan) -> list:
    return run_trajectories(model, task, inputs, Plan(**{"max_steps": STEPS, **plan}))


def summary(outcomes) -> list[list[tuple]]:
    """Everything a run decided, per puzzle and trajectory, comparable with ==."""
    return [
        [(t.index, t.answer.tobytes(), t.steps, t.q_halt, t.valid, t.finished) for t in o.trajectories]
        for o in outcomes
    ]


# ---------------------------------------------------------------------- one trajectory is today's run


def test_one_trajectory_selected_by_halting_is_exactly_adaptive_halting(sudoku_model, sudokus):
    # Both runs compute the same rows in the same batches in the same order (a row leaves when it
    # halts), so the results are bit for bit the same in any dtype, bfloat16 included.
    inputs, _ = sudokus
    outcomes = run(sudoku_model, SUDOKU, inputs, trajectories=1, select="halt")
    batch = {
        "inputs": torch.from_numpy(inputs.astype(np.int32)),
        "puzzle_identifiers": torch.zeros(len(inputs), dtype=torch.int32),
    }
    reference = run_steps(sudoku_model, batch, STEPS, adaptive=True)
    assert [len(o.trajectories) for o in outcomes] == [1] * len(inputs)
    ends = [o.trajectories[0] for o in outcomes]
    assert np.array_equal(np.stack([t.answer for t in ends]), reference.preds.numpy())
    assert [t.steps for t in ends] == reference.steps.tolist()
    assert [t.q_halt for t in ends] == reference.q_halt.tolist()
    assert (reference.steps < STEPS).any(), "the test needs puzzles that halt before the limit"
    assert all(o.chosen.trajectory is t for o, t in zip(outcomes, ends))


# ---------------------------------------------------------------------- verify: growth and prefixes


def test_accuracy_at_k_from_one_run_is_what_a_run_with_that_k_gives(sudoku_model, sudokus):
    inputs, labels = sudokus
    big = run(sudoku_model, SUDOKU, inputs, trajectories=8, seed=3)
    for k in ks_up_to(8)[:-1]:
        small = run(sudoku_model, SUDOKU, inputs, trajectories=k, seed=3)
        exact = np.mean([(o.chosen.answer == label).all() for o, label in zip(small, labels)])
        assert accuracy_at(big, labels, "verify", k) == exact
        # The first k trajectories of the big run are the small run's, one for one.
        assert summary(small) == [[s for s in p if s[0] < k] for p in summary(big)]
    assert accuracy_at(big, labels, "verify", 1) < accuracy_at(big, labels, "verify", 8), "the test needs growth"


@pytest.mark.slow
def test_accuracy_at_k_up_to_16_from_one_run(sudoku_model, sudokus):
    inputs, labels = sudokus
    big = run(sudoku_model, SUDOKU, inputs, trajectories=16, seed=4)
    for k in ks_up_to(16)[:-1]:
        small = run(sudoku_model, SUDOKU, inputs, trajectories=k, seed=4)
        assert accuracy_at(big, labels, "verify", k) == np.mean(
            [(o.chosen.answer == label).all() for o, label in zip(small, labels)]
        )


def test_verify_grows_trajectories_only_for_unsolved_puzzles_and_counts_their_cost(sudoku_model, sudokus):
    inputs, _ = sudokus
    start = time.perf_counter()
    outcomes = run(sudoku_model, SUDOKU, inputs, trajectories=6, seed=1)
    wall = time.perf_counter() - start
    for o in outcomes:
        first = o.trajectories[0]
        started = len(o.trajectories)
        assert [t.index for t in o.trajectories] == list(range(started))
        if first.valid and first.finished:
            assert started == 1
        else:
            assert started in (2, 4, 6)  # doubling, then K
        assert o.sample_steps == sum(t.steps for t in o.trajectories)
        assert o.chosen.valid == any(t.valid for t in o.trajectories)
    assert {len(o.trajectories) for o in outcomes} > {1}, "the test needs puzzles that grow"
    compute = sum(o.compute_s for o in outcomes)
    assert 0.5 * wall < compute <= wall


@pytest.mark.parametrize("select", ["halt", "vote"])
def test_halt_and_vote_start_every_trajectory_and_run_each_to_its_end(sudoku_model, sudokus, select):
    inputs, _ = sudokus
    # A batch smaller than K: a puzzle's trajectories cannot all run at once, and all must still run.
    outcomes = run(sudoku_model, SUDOKU, inputs[:4], trajectories=3, select=select, noise=0.2, batch_size=2)
    for o in outcomes:
        assert [t.index for t in o.trajectories] == [0, 1, 2]
        assert all(t.finished for t in o.trajectories)
        assert o.sample_steps == sum(t.steps for t in o.trajectories)
        assert o.answers == rank_answers(o.trajectories, select)


# ---------------------------------------------------------------------- answers in the puzzle's own frame


def test_sudoku_answers_are_mapped_back_to_the_puzzle(sudoku_model, sudokus):
    inputs, _ = sudokus
    outcomes = run(sudoku_model, SUDOKU, inputs, trajectories=4, select="halt")
    valid_from_views = 0
    for x, o in zip(inputs, outcomes):
        puzzle = Puzzle(SUDOKU, SUDOKU.decode(x), "puzzle")
        givens = puzzle.grid != 0
        for t in o.trajectories:
            # Validity was judged on the view; it must hold for the answer mapped back on the original.
            assert SUDOKU.validity(x[None], t.answer[None])[0] == t.valid
            if t.valid:
                answer = SUDOKU.decode(t.answer)
                assert np.array_equal(answer[givens], puzzle.grid[givens])
                assert SUDOKU.verify(puzzle, answer) is None
                valid_from_views += t.index > 0
    assert valid_from_views > 0, "the test needs valid answers found on symmetric views"


def test_maze_answers_are_mapped_back_to_the_maze(maze_model, mazes):
    inputs, labels = mazes
    outcomes = run(maze_model, MAZE, inputs, trajectories=4, select="halt")
    valid_from_views = 0
    for x, label, o in zip(inputs, labels, outcomes):
        puzzle = Puzzle(MAZE, MAZE.decode(x), "maze")
        for t in o.trajectories:
            assert MAZE.validity(x[None], t.answer[None])[0] == t.valid
            if t.valid:
                answer = MAZE.decode(t.answer)
                for kind in (WALL, START, GOAL):  # walls, S and G where the maze has them, and only there
                    assert np.array_equal(answer == kind, puzzle.grid == kind)
                assert MAZE.verify(puzzle, answer) is None
                assert np.array_equal(t.answer, label)  # generated mazes have one shortest path
                valid_from_views += t.index > 0
    assert valid_from_views > 0, "the test needs valid answers found on symmetric views"


@pytest.mark.parametrize("task", [SUDOKU, MAZE], ids=["sudoku", "maze"])
def test_every_drawn_symmetry_is_undone_by_its_inverse(task, sudokus, mazes):
    inputs, labels = sudokus if task is SUDOKU else mazes
    grids = np.stack([task.decode(t) for t in labels])
    symmetries = task.draw_symmetries(np.random.default_rng(0), 24)
    for s in symmetries:
        moved = s.apply(grids)
        assert np.array_equal(s.invert().apply(moved), grids)
        assert np.array_equal(s.apply(s.invert().apply(grids)), grids)
        # A solution stays a solution of the moved puzzle.
        questions = s.apply(np.stack([task.decode(t) for t in inputs]))
        assert task.validity(
            np.stack([task.encode(q) for q in questions]), np.stack([task.encode(g) for g in moved])
        ).all()
    # The first draws (all 7 for a maze, whose 8 symmetries then repeat) differ from the identity and each other.
    first = [s.apply(grids).tobytes() for s in symmetries[:7]]
    assert len(set(first)) == 7 and grids.tobytes() not in first


# ---------------------------------------------------------------------- seeds and noise


def test_the_seed_repeats_a_run_and_another_seed_draws_other_views(sudoku_model, sudokus):
    inputs = sudokus[0][:3]
    plan = dict(trajectories=3, select="halt", noise=0.3)
    first = summary(run(sudoku_model, SUDOKU, inputs, seed=5, **plan))
    assert summary(run(sudoku_model, SUDOKU, inputs, seed=5, **plan)) == first
    other = summary(run(sudoku_model, SUDOKU, inputs, seed=6, **plan))
    assert [p[0] for p in other] == [p[0] for p in first]  # trajectory 0: the puzzle as given, no noise
    assert [p[1:] for p in other] != [p[1:] for p in first]
    views_only = summary(run(sudoku_model, SUDOKU, inputs, seed=6, trajectories=3, select="halt"))
    assert [[t[3] for t in p[1:]] for p in views_only] != [[t[3] for t in p[1:]] for p in first]


def test_noise_leaves_trajectory_0_as_a_noise_free_run(sudoku_model, sudokus):
    inputs = sudokus[0][:4]
    noisy = run(sudoku_model, SUDOKU, inputs, trajectories=3, select="halt", noise=0.5, views=False)
    clean = run(sudoku_model, SUDOKU, inputs, trajectories=1, select="halt")
    assert [p[0] for p in summary(noisy)] == [p[0] for p in summary(clean)]
    # The noisy copies see the same puzzle and still differ from it.
    assert any(p[1][3] != p[0][3] for p in summary(noisy))


# ---------------------------------------------------------------------- batch size


def test_the_batch_size_does_not_change_the_answers(sudokus):
    # In float32 a row's result depends on the rows beside it only through the order of the sums a
    # matrix kernel picks for the batch's shape: the halting logits may differ by rounding (found:
    # 2.4e-7 for batch 3 against 256), the argmax answers and the steps do not. So "halt" (each
    # trajectory runs to its own end) gives the same trajectories. With "verify" a puzzle is
    # decided at its first valid answer; with a small batch its trajectories may start at
    # different steps, so those cut short may differ, but those that ended by their own rule,
    # the number started and the chosen answers (unique solutions) do not.
    model = load_model(PRETRAINED / "sudoku-9x9", forward_dtype="float32")
    largest_sum = int(model.config.hidden_size * model.config.expansion)
    tolerance = reordering_tolerance(torch.float32, largest_sum)
    inputs = sudokus[0][:5]
    plan = dict(trajectories=4, seed=2)

    def same(a: list[list[tuple]], b: list[list[tuple]]) -> None:
        assert [[t[:3] + t[4:] for t in p] for p in a] == [[t[:3] + t[4:] for t in p] for p in b]
        q_a, q_b = (np.array([t[3] for p in x for t in p]) for x in (a, b))
        assert np.abs(q_a - q_b).max() <= tolerance * max(np.abs(q_b).max(), 1.0)

    same(
        summary(run(model, SUDOKU, inputs, batch_size=3, select="halt", **plan)),
        summary(run(model, SUDOKU, inputs, batch_size=256, select="halt", **plan)),
    )
    small = run(model, SUDOKU, inputs, batch_size=3, **plan)
    large = run(model, SUDOKU, inputs, batch_size=256, **plan)
    assert [o.chosen.answer.tobytes() for o in small] == [o.chosen.answer.tobytes() for o in large]
    assert [len(o.trajectories) for o in small] == [len(o.trajectories) for o in large]
    for a, b in zip(summary(small), summary(large)):
        ended_a, ended_b = ({t[0]: t for t in p if t[5]} for p in (a, b))
        both = sorted(ended_a.keys() & ended_b.keys())
        same([[ended_a[i] for i in both]], [[ended_b[i] for i in both]])


# ---------------------------------------------------------------------- memory


def test_the_pool_trims_kept_memory_every_few_steps_and_keeps_no_step_alive(sudoku_model, sudokus, monkeypatch):
    # The pool's shapes change from step to step: with freed memory kept (trm eval and the benchmark
    # on a CPU) the heap would grow without bound unless it is trimmed now and then. And an answer
    # must be its own array: a view into a step's predictions would keep the whole batch alive.
    import trm.eval.trajectories as engine

    steps, trims = [], []
    step = sudoku_model.supervision_step
    monkeypatch.setattr(sudoku_model, "supervision_step", lambda *a: steps.append(1) or step(*a))
    monkeypatch.setattr(engine, "trim_freed_memory", lambda: trims.append(len(steps)))
    monkeypatch.setattr(engine, "TRIM_EVERY", 3)
    inputs, _ = sudokus
    outcomes = run(sudoku_model, SUDOKU, inputs, trajectories=4, select="halt", batch_size=5, seed=3)
    assert len(steps) >= 6
    assert trims == list(range(3, len(steps) + 1, 3))
    for outcome in outcomes:
        for t in outcome.trajectories:
            assert t.answer.base is None and t.answer.shape == (81,)


# ---------------------------------------------------------------------- ranking and plans (no model)


def trajectory(index: int, answer: list[int], q_halt: float, valid: bool | None = None) -> Trajectory:
    return Trajectory(index, np.array(answer), steps=index + 1, q_halt=q_halt, valid=valid)


def test_vote_counts_trajectories_and_breaks_ties_by_mean_q_halt():
    ts = [
        trajectory(0, [1], 5.0),
        trajectory(1, [2], 1.0),
        trajectory(2, [2], 0.5),
        trajectory(3, [3], 3.0),
        trajectory(4, [3], -2.0),
    ]
    answers = rank_answers(ts, "vote")
    assert [a.answer.tolist() for a in answers] == [[2], [3], [1]]  # 2 and 3 have two votes; means 0.75, 0.5
    assert [a.votes for a in answers] == [2, 2, 1]
    assert answers[0].q_halt == pytest.approx(0.75) and answers[0].trajectory is ts[1]
    assert answers[1].trajectory is ts[3]  # the most confident of the group gives it


def test_halt_takes_the_highest_q_halt():
    ts = [trajectory(0, [1], 0.5), trajectory(1, [2], 2.0), trajectory(2, [2], -1.0), trajectory(3, [3], 1.0)]
    answers = rank_answers(ts, "halt")
    assert [a.answer.tolist() for a in answers] == [[2], [3], [1]]
    assert answers[0].q_halt == 2.0 and answers[0].votes == 2


def test_verify_prefers_valid_answers_and_falls_back_to_halt():
    ts = [trajectory(0, [1], 9.0, False), trajectory(1, [2], -3.0, True), trajectory(2, [4], -1.0, True)]
    answers = rank_answers(ts, "verify")
    assert [a.answer.tolist() for a in answers] == [[4], [2]]  # invalid ones dropped, valid ones by q_halt
    invalid = [trajectory(0, [1], 0.0, False), trajectory(1, [2], 1.0, False)]
    assert [a.answer.tolist() for a in rank_answers(invalid, "verify")] == [[2], [1]]


def test_ks_up_to_gives_the_powers_of_two_below_k_and_k():
    assert ks_up_to(1) == [1]
    assert ks_up_to(8) == [1, 2, 4, 8]
    assert ks_up_to(6) == [1, 2, 4, 6]
    assert ks_up_to(64)[-2:] == [32, 64]


@pytest.mark.parametrize(
    "task, plan, message",
    [
        (ARC, Plan(), "has no rules to check answers by"),
        (SUDOKU, Plan(noise=-0.1), "noise must be 0 or more"),
        (SUDOKU, Plan(noise=float("nan")), "noise must be 0 or more"),
        (SUDOKU, Plan(trajectories=4, views=False), "every trajectory would repeat the first"),
        (SUDOKU, Plan(select="best"), "select must be one of verify, halt, vote, got 'best'"),
        (MAZE, Plan(trajectories=0), "trajectories must be at least 1"),
        (MAZE, Plan(batch_size=0), "batch_size must be at least 1"),
    ],
)
def test_plans_that_cannot_work_are_refused(task, plan, message):
    with pytest.raises(ConfigError, match=message):
        plan.check(task)
    Plan(trajectories=1, views=False).check(SUDOKU)  # one trajectory needs no views
    Plan(trajectories=4, views=False, noise=0.1).check(MAZE)
