"""lm_eval_tbd.core.accuracy: accuracy against seen-likeness, figures computed by hand."""

import math

import numpy as np
import pytest

from lm_eval_tbd.core.accuracy import (
    accuracy_by_bin,
    group_gap,
    inflation,
    mean_ci,
    quarter_gap,
    rank_correlation,
    seen_like_split,
)
from lm_eval_tbd.core.stats import UndefinedMetricError

# Eight questions; TBD rises with the index, so the decision value -TBD makes q0 the most seen-like.
TBD = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]
DECISION = [-t for t in TBD]
CORRECT = [1, 1, 0, 1, 0, 0, 1, 0]
BASE = [1, 0, 0, 1, 0, 0, 1, 0]


def test_the_seen_like_quarter_is_the_highest_decision_values():
    # ceil(8 / 4) = 2: q0 and q1
    assert seen_like_split(DECISION).tolist() == [True, True] + [False] * 6
    # ceil(30 / 4) = 8, ceil(5 / 4) = 2, at least 1 and at most n - 1
    assert seen_like_split(np.arange(30.0)).sum() == 8
    assert seen_like_split(np.arange(5.0)).sum() == 2
    assert seen_like_split([1.0, 2.0]).tolist() == [False, True]
    with pytest.raises(UndefinedMetricError, match="at least 2 questions"):
        seen_like_split([1.0])


def test_ties_at_the_boundary_are_split_by_question_order_and_counted():
    assert seen_like_split([1.0, 1.0, 1.0, 1.0]).tolist() == [True, False, False, False]
    out = quarter_gap([1.0, 1.0, 1.0, 1.0], [0, 1, 1, 1])
    assert out["boundary_ties"] == 4 and out["gap"] == pytest.approx(0 - 1)
    assert quarter_gap([4.0, 3.0, 2.0, 1.0], [1, 0, 0, 0])["boundary_ties"] == 0


def test_quarter_gap_by_hand():
    out = quarter_gap(DECISION, CORRECT)
    # q0, q1 both right; the rest 2 of 6 right
    assert (out["n_group"], out["n_rest"]) == (2, 6)
    assert out["accuracy_group"] == 1.0
    assert out["accuracy_rest"] == pytest.approx(2 / 6)
    assert out["gap"] == pytest.approx(1 - 2 / 6)
    lo, hi = out["gap_ci"]
    assert lo <= out["gap"] <= hi
    # the group's accuracy is 1 in every resample: no spread
    assert out["accuracy_group_ci"] == [1.0, 1.0]


def test_gap_confidence_interval_is_seeded():
    assert quarter_gap(DECISION, CORRECT, seed=3) == quarter_gap(DECISION, CORRECT, seed=3)
    assert rank_correlation(DECISION, CORRECT, seed=3) == rank_correlation(DECISION, CORRECT, seed=3)


def test_a_single_question_in_a_group_has_no_interval():
    out = quarter_gap([4, 3, 2, 1], [1, 0, 0, 0])
    assert out["gap"] == 1.0 and out["gap_ci"] is None and "at least 2 questions on each side" in out["ci_undefined"]


def test_group_gap_by_hand():
    flagged = [True, False, False, True, False, False, False, False]  # q0, q3
    out = group_gap(CORRECT, flagged)
    assert out["accuracy_group"] == 1.0 and out["accuracy_rest"] == pytest.approx(2 / 6)
    members = [True] * 4 + [False] * 4
    out = group_gap(CORRECT, members)
    assert (out["accuracy_group"], out["accuracy_rest"], out["gap"]) == (0.75, 0.25, 0.5)
    with pytest.raises(UndefinedMetricError, match="both sides"):
        group_gap([1, 0], [True, True])


def test_rank_correlation_by_hand():
    # Ranks of the decision values 8..1; correctness ranks 6.5 (the four right) and 2.5.
    # Centred: dx = 3.5, 2.5, ..., -3.5; dy = 2, 2, -2, 2, -2, -2, 2, -2.
    # sum dx*dy = 16, sum dx^2 = 42, sum dy^2 = 32: rho = 16 / sqrt(42 * 32).
    out = rank_correlation(DECISION, CORRECT)
    assert out["rho"] == pytest.approx(16 / math.sqrt(42 * 32))
    lo, hi = out["rho_ci"]
    assert -1 <= lo <= out["rho"] <= hi <= 1
    assert rank_correlation([3, 2, 1], [1, 1, 0])["rho"] == pytest.approx(math.sqrt(3) / 2)


def test_rank_correlation_is_undefined_for_constant_correctness():
    with pytest.raises(UndefinedMetricError, match="correctness are the same for all 4"):
        rank_correlation([1, 2, 3, 4], [0, 0, 0, 0])
    with pytest.raises(UndefinedMetricError, match="at least 3"):
        rank_correlation([1, 2], [0, 1])


def test_inflation_is_the_students_gap_less_the_base_models_on_the_same_split():
    out = inflation(DECISION, CORRECT, BASE)
    # student: 1 - 2/6; base on the same split (q0, q1 against the rest): 1/2 - 2/6
    assert out["student_gap"] == pytest.approx(1 - 2 / 6)
    assert out["base_gap"] == pytest.approx(0.5 - 2 / 6)
    assert out["inflation"] == pytest.approx(0.5)
    # on the whole benchmark: 0.5 x 2 / 8 points
    assert out["overall_points"] == pytest.approx(0.125)
    lo, hi = out["inflation_ci"]
    assert lo <= 0.5 <= hi
    # a base model answering exactly as the student does: no inflation, in every resample too
    same = inflation(DECISION, CORRECT, CORRECT)
    assert same["inflation"] == 0.0 and same["inflation_ci"] == [0.0, 0.0]


def test_accuracy_by_bin_goes_from_least_to_most_seen_like():
    bins = accuracy_by_bin(DECISION, CORRECT, bins=4)
    # least seen-like first: (q7, q6), (q5, q4), (q3, q2), (q1, q0)
    assert [b["accuracy"] for b in bins] == [0.5, 0.0, 0.5, 1.0]
    assert [b["n"] for b in bins] == [2, 2, 2, 2]
    assert bins[0]["decision_min"] == -0.8 and bins[-1]["decision_max"] == -0.1
    assert len(accuracy_by_bin(DECISION, CORRECT)) == 8  # fewer questions than deciles: one per bin
    assert accuracy_by_bin(DECISION, CORRECT)[0]["ci"] is None


def test_mean_ci():
    assert mean_ci([1, 1, 1]) == [1.0, 1.0]
    assert mean_ci([1]) is None
    lo, hi = mean_ci([0, 1] * 20)
    assert lo < 0.5 < hi


def test_nan_and_shape_errors():
    with pytest.raises(ValueError, match="NaN"):
        quarter_gap([1.0, float("nan")], [0, 1])
    with pytest.raises(ValueError, match="equal length"):
        rank_correlation([1.0, 2.0, 3.0], [0, 1])


def test_infinite_decision_values_rank_at_the_ends():
    out = quarter_gap([-math.inf, 1.0, 2.0, math.inf], [0, 0, 0, 1])
    assert out["accuracy_group"] == 1.0
    assert rank_correlation([-math.inf, 1.0, 2.0, math.inf], [0, 0, 1, 1])["rho"] == pytest.approx(4 / math.sqrt(5 * 4))
