"""ARC scoring: voting, pass@K, cropping and inverse transforms, the Kaggle submission."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from tests.eval.fixtures import arc_tasks
from trm.errors import DataError
from trm.eval.arc import FILLER_GRID, ArcScorer, validate_submission, vote, write_submission
from trm.tasks.arc import GRID_SIZE, encode_grid, to_original, variant_name
from trm.tasks.grids import IDENTITY, Transform

TRANSFORMS = [IDENTITY, Transform(1, (0, 2, 3, 4, 5, 6, 7, 8, 9, 1)), Transform(6, (0, 9, 8, 7, 6, 5, 4, 3, 2, 1))]
SURE, UNSURE = 3.0, -3.0  # q_halt logits


def scorer_for(tasks: dict) -> ArcScorer:
    names = ["<blank>"] + [variant_name(task_id, t) for task_id in tasks for t in TRANSFORMS]
    return ArcScorer(names, tasks)


def identifier(scorer: ArcScorer, task_id: str, transform: Transform) -> int:
    return scorer.identifiers.index(variant_name(task_id, transform))


def predict(scorer: ArcScorer, task_id: str, transform: Transform, test_input, answer, q: float = SURE) -> None:
    """Feed one prediction the way the model makes it: on the variant's canvas."""
    canvas = encode_grid(transform.apply(np.array(test_input, np.uint8))).ravel()
    pred = encode_grid(transform.apply(np.array(answer, np.uint8))).ravel()
    scorer.add(identifier(scorer, task_id, transform), canvas, pred, q)


def wrong(grid) -> list:
    return ((np.array(grid) + 1) % 10).tolist()


def test_true_answers_through_every_variant_score_one():
    tasks = arc_tasks()
    scorer = scorer_for(tasks)
    for task_id, task in tasks.items():
        for pair in task["test"]:
            for t in TRANSFORMS:
                predict(scorer, task_id, t, pair["input"], pair["output"])
    assert scorer.pass_at_k() == {k: 1.0 for k in (1, 2, 5, 10, 100, 1000)}
    submission = scorer.submission()
    validate_submission(submission, tasks)
    assert submission["task_b"][1] == {
        "attempt_1": tasks["task_b"]["test"][1]["output"],
        "attempt_2": tasks["task_b"]["test"][1]["output"],
    }


def test_wrong_answers_score_zero():
    tasks = arc_tasks()
    scorer = scorer_for(tasks)
    for task_id, task in tasks.items():
        for pair in task["test"]:
            for t in TRANSFORMS:
                predict(scorer, task_id, t, pair["input"], wrong(pair["output"]))
    assert set(scorer.pass_at_k().values()) == {0.0}


def test_the_majority_beats_a_more_confident_minority_and_confidence_breaks_ties():
    grid_a, grid_b, grid_c = np.zeros((2, 2), np.uint8), np.ones((2, 2), np.uint8), np.full((1, 3), 2, np.uint8)
    ranked = vote([(grid_b, 0.99), (grid_a, 0.1), (grid_a, 0.2), (grid_c, 0.6), (grid_c, 0.4)])
    assert [c.votes for c in ranked] == [2, 2, 1]
    assert np.array_equal(ranked[0].grid, grid_c)  # two votes each; mean confidence 0.5 beats 0.15
    assert np.array_equal(ranked[1].grid, grid_a)
    assert ranked[1].confidence == pytest.approx(0.15)


def test_exact_ties_keep_the_first_seen_candidate_as_the_reference_does():
    first, second = np.zeros((1, 1), np.uint8), np.ones((1, 1), np.uint8)
    assert np.array_equal(vote([(first, 0.5), (second, 0.5)])[0].grid, first)
    assert np.array_equal(vote([(second, 0.5), (first, 0.5)])[0].grid, second)


def test_pass_at_k_counts_the_truth_within_the_top_k_and_averages_test_inputs_per_task():
    tasks = arc_tasks()
    scorer = scorer_for(tasks)
    a = tasks["task_a"]["test"][0]
    predict(scorer, "task_a", TRANSFORMS[0], a["input"], wrong(a["output"]))  # 2 votes for a wrong grid
    predict(scorer, "task_a", TRANSFORMS[1], a["input"], wrong(a["output"]))
    predict(scorer, "task_a", TRANSFORMS[2], a["input"], a["output"])  # 1 vote for the truth
    b0, b1 = tasks["task_b"]["test"]
    predict(scorer, "task_b", TRANSFORMS[1], b0["input"], b0["output"])
    predict(scorer, "task_b", TRANSFORMS[2], b1["input"], wrong(b1["output"]))
    scores = scorer.pass_at_k((1, 2))
    # task_a: solved at K=2 only; task_b: one of its two test inputs solved.
    assert scores == {1: pytest.approx((0 + 0.5) / 2), 2: pytest.approx((1 + 0.5) / 2)}


def test_test_inputs_without_predictions_score_zero_and_get_filler_attempts():
    tasks = arc_tasks()
    scorer = scorer_for(tasks)
    pair = tasks["task_a"]["test"][0]
    predict(scorer, "task_a", TRANSFORMS[0], pair["input"], pair["output"])
    assert scorer.pass_at_k((1,)) == {1: 0.5}
    assert scorer.pass_at_k((1,), tasks=scorer.tasks_predicted()) == {1: 1.0}
    submission = scorer.submission()
    validate_submission(submission, tasks)
    assert submission["task_b"] == [{"attempt_1": FILLER_GRID, "attempt_2": FILLER_GRID}] * 2


def test_an_empty_crop_becomes_a_filler_grid_in_the_submission():
    tasks = {"t": {"train": [], "test": [{"input": [[1]], "output": [[2]]}]}}
    scorer = ArcScorer(["<blank>", "t"], tasks)
    scorer.add(1, encode_grid(np.array([[1]], np.uint8)).ravel(), np.zeros(GRID_SIZE**2, np.uint8), 0.0)
    assert scorer.submission() == {"t": [{"attempt_1": FILLER_GRID, "attempt_2": FILLER_GRID}]}


@settings(max_examples=60, deadline=None)
@given(
    grid=st.integers(1, GRID_SIZE).flatmap(
        lambda r: st.integers(1, GRID_SIZE).flatmap(lambda c: arrays(np.uint8, (r, c), elements=st.integers(0, 9)))
    ),
    dihedral=st.integers(0, 7),
    colours=st.permutations(range(1, 10)),
)
def test_crop_and_inverse_transform_recover_the_grid_from_any_variant(grid, dihedral, colours):
    transform = Transform(dihedral, (0, *colours))
    canvas = encode_grid(transform.apply(grid))
    assert np.array_equal(to_original(canvas, transform), grid)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda s: s.pop("task_a"), "1 tasks missing"),
        (lambda s: s["task_b"].pop(), "task_b has 1 entries, expected 2"),
        (lambda s: s["task_a"][0].pop("attempt_2"), "expected exactly the keys"),
        (lambda s: s["task_a"][0].update(attempt_1=[[1, 2], [3]]), "row 1 must be a list"),
        (lambda s: s["task_a"][0].update(attempt_1=[[1, 10]]), "not a colour 0..9"),
        (lambda s: s["task_a"][0].update(attempt_1=[]), "expected a grid"),
        (lambda s: s["task_a"][0].update(attempt_1=[[0] * 31]), "1 to 30 cells"),
        (lambda s: s.update(extra=[]), "1 unknown tasks"),
    ],
)
def test_the_validator_rejects_what_kaggle_would(mutate, message):
    tasks = arc_tasks()
    submission = {t: [{"attempt_1": [[0]], "attempt_2": [[1]]} for _ in task["test"]] for t, task in tasks.items()}
    validate_submission(submission, tasks)
    mutate(submission)
    with pytest.raises(DataError, match=message):
        validate_submission(submission, tasks)


def test_write_submission_validates_and_writes_json(tmp_path):
    tasks = arc_tasks()
    good = {t: [{"attempt_1": [[0]], "attempt_2": [[1]]} for _ in task["test"]] for t, task in tasks.items()}
    path = write_submission(tmp_path / "sub" / "submission.json", good, tasks)
    assert json.loads(path.read_text()) == good
    with pytest.raises(DataError):
        write_submission(tmp_path / "bad.json", {"task_a": "nope"})
    assert not (tmp_path / "bad.json").exists()
