"""Metrics: the loss head's definitions, per-step exact accuracy, validity counts."""

import numpy as np
import pytest

from trm.config import IGNORE_LABEL_ID
from trm.eval.metrics import MetricTotals, exact_match


def test_totals_follow_the_loss_head_and_skip_padding():
    labels = np.array([[1, 2, 3], [1, 2, 3], [1, IGNORE_LABEL_ID, 3], [IGNORE_LABEL_ID] * 3])
    preds = np.array([[1, 2, 3], [1, 0, 0], [1, 0, 3], [0, 0, 0]])
    q_halt = np.array([1.0, 1.0, -1.0, 5.0])
    steps = np.array([2, 4, 4, 4])
    by_step = np.array([[False, False, True, True], [True, False, True, True]])
    totals = MetricTotals(max_steps=2)
    totals.update(labels, preds, q_halt, steps, by_step)
    s = totals.summary()
    assert totals.count == 3  # the all-ignored padding row does not count
    assert s["exact_accuracy"] == pytest.approx(2 / 3)
    assert s["token_accuracy"] == pytest.approx((1 + 1 / 3 + 1) / 3)
    assert s["halting_accuracy"] == pytest.approx(1 / 3)  # q >= 0 agrees with exactness for row 0 only
    assert s["mean_steps"] == pytest.approx(10 / 3)
    assert s["exact_accuracy_per_step"] == pytest.approx([1 / 3, 2 / 3])
    assert s["valid_rate"] is None


def test_validity_counts_valid_answers_that_differ_from_the_label():
    labels = np.array([[1, 2], [1, 2], [1, 2]])
    preds = np.array([[1, 2], [2, 1], [0, 0]])
    totals = MetricTotals(max_steps=1, check_validity=True)
    totals.update(labels, preds, np.zeros(3), np.ones(3), np.zeros((1, 3), bool), valid=np.array([True, True, False]))
    assert totals.summary()["valid_rate"] == pytest.approx(2 / 3)
    assert totals.summary()["valid_not_label_rate"] == pytest.approx(1 / 3)


def test_exact_match_ignores_unlabelled_tokens():
    labels = np.array([[1, IGNORE_LABEL_ID], [1, 2]])
    assert exact_match(np.array([[1, 5], [1, 5]]), labels).tolist() == [True, False]
