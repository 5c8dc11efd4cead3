"""Evaluation: paper metrics, adaptive halting, ARC voting, pass@K and the Kaggle submission;
test-time scaling (many trajectories per puzzle, one answer chosen by the rules)."""

from trm.eval.adaptive import RunResult, network_calls_per_step, run_steps
from trm.eval.arc import ArcScorer, validate_submission, vote, write_submission
from trm.eval.evaluate import EvalReport, evaluate, write_report
from trm.eval.scaling import ScalingReport, accuracy_at, evaluate_trajectories
from trm.eval.trajectories import Answer, Outcome, Plan, Trajectory, ks_up_to, rank_answers, run_trajectories

__all__ = [
    "Answer",
    "ArcScorer",
    "EvalReport",
    "Outcome",
    "Plan",
    "RunResult",
    "ScalingReport",
    "Trajectory",
    "accuracy_at",
    "evaluate",
    "evaluate_trajectories",
    "ks_up_to",
    "network_calls_per_step",
    "rank_answers",
    "run_steps",
    "run_trajectories",
    "validate_submission",
    "vote",
    "write_report",
    "write_submission",
]
