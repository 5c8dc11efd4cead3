"""Evaluation: paper metrics, adaptive halting, ARC voting, pass@K and the Kaggle submission."""

from trm.eval.adaptive import RunResult, network_calls_per_step, run_steps
from trm.eval.arc import ArcScorer, validate_submission, vote, write_submission
from trm.eval.evaluate import EvalReport, evaluate, write_report

__all__ = [
    "ArcScorer",
    "EvalReport",
    "RunResult",
    "evaluate",
    "network_calls_per_step",
    "run_steps",
    "validate_submission",
    "vote",
    "write_report",
    "write_submission",
]
