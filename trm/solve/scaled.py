"""`trm solve` with test-time scaling: many trajectories of one Sudoku or maze, the chosen
answer and the other distinct answers that keep the rules (`trm.eval.trajectories`)."""

from __future__ import annotations

import time

import numpy as np

from trm.eval.adaptive import network_calls_per_step
from trm.eval.arc import sigmoid
from trm.eval.trajectories import Plan, run_trajectories
from trm.model.trm import TRM
from trm.solve.solution import Choice, Solution, Step
from trm.tasks import Puzzle


def solve_scaled(model: TRM, puzzle: Puzzle, plan: Plan) -> Solution:
    """Test-time scaling on one Sudoku or maze (`trm.eval.trajectories`): the answer `plan.select`
    chooses, with the steps of the trajectory that gave it, and up to `plan.answers` distinct
    answers, the chosen one first and then those that keep the rules, most confident first."""
    task = puzzle.task
    tick = time.perf_counter()
    [outcome] = run_trajectories(model, task, task.encode(puzzle.grid)[None], plan, keep_traces=True)
    wall = time.perf_counter() - tick
    chosen = outcome.chosen
    # The engine's answers are distinct already; after the chosen one, only those that keep the rules.
    picked = [chosen, *(a for a in outcome.answers[1:] if a.valid)][: plan.answers]
    choices = [
        Choice(
            task.decode(a.answer),
            bool(a.valid),
            a.trajectory.steps,
            float(sigmoid(a.trajectory.q_halt)),
            a.trajectory.index,
        )
        for a in picked
    ]
    answer = choices[0].answer
    problem = task.verify(puzzle, answer)
    trace = chosen.trajectory.trace or []
    return Solution(
        puzzle=puzzle,
        answer=answer,
        steps=choices[0].steps,
        confidence=choices[0].confidence,
        trajectory=[Step(task.decode(t), float(sigmoid(q))) for t, q in trace],
        max_steps=plan.max_steps,
        halt=plan.select,
        valid=problem is None,
        problem=problem,
        attempts=[answer],
        mean_steps=float(np.mean([t.steps for t in outcome.trajectories])),
        answers=choices,
        trajectories=len(outcome.trajectories),
        trajectory_index=choices[0].trajectory,
        network_calls=outcome.sample_steps * network_calls_per_step(model.config),
        wall_time_s=wall,
        plan=plan,
    )
