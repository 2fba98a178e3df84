"""TBD against hand-computed values (the worked example in docs/method.md) and its edge cases."""

import math

import numpy as np
import pytest

from lm_eval_tbd.core.scores import TBDParams, tbd_score


def lp(*probs):
    with np.errstate(divide="ignore"):
        return np.log(np.array(probs, dtype=float))


def test_worked_example_from_the_method_doc():
    # p = [1.0, 0.9, 0.5], tau=1, alpha=0.6 -> ((0.1**0.6) + (0.5**0.6)) / 2
    assert tbd_score(lp(1.0, 0.9, 0.5)) == pytest.approx(0.455471, abs=1e-6)
    assert tbd_score(lp(1.0, 0.9, 0.5)) == pytest.approx((0.251189 + 0.659754) / 2, abs=1e-6)


def test_tokens_at_or_above_tau_are_dropped_not_counted_as_zero():
    # tau=0.9, alpha=1: 0.95 and 0.9 are dropped (p >= tau); S = {0.5, 0.8} -> (0.4 + 0.1) / 2
    assert tbd_score(lp(0.95, 0.5, 0.9, 0.8), tau=0.9, alpha=1.0) == pytest.approx(0.25)


def test_only_first_max_tokens_are_scored():
    # M=2: the third token (p=0.1) is ignored -> (0.5**0.6 + 0.5**0.6) / 2 = 0.5**0.6
    assert tbd_score(lp(0.5, 0.5, 0.1), max_tokens=2) == pytest.approx(0.659754, abs=1e-6)
    # appending tokens past M never changes the score
    assert tbd_score(lp(0.5, 0.7, 0.1, 0.2), max_tokens=2) == tbd_score(lp(0.5, 0.7), max_tokens=2)


def test_alpha_exponent():
    assert tbd_score(lp(0.5), alpha=2.0) == pytest.approx(0.25)
    assert tbd_score(lp(0.75, 0.5), alpha=1.0) == pytest.approx(0.375)


def test_empty_set_gives_zero():
    assert tbd_score(lp(1.0, 1.0)) == 0.0  # every token certain -> S empty
    assert tbd_score([]) == 0.0  # zero generated tokens
    assert tbd_score(lp(0.95), tau=0.9) == 0.0


def test_probability_zero_is_allowed():
    assert tbd_score([-math.inf]) == pytest.approx(1.0)


def test_lower_means_more_deterministic():
    seen = tbd_score(lp(0.999, 0.99, 0.98))
    unseen = tbd_score(lp(0.4, 0.3, 0.6))
    assert seen < unseen


def test_nan_and_positive_logprobs_are_errors():
    with pytest.raises(ValueError, match="NaN log-probability at token position"):
        tbd_score([-0.1, float("nan")])
    with pytest.raises(ValueError, match="log-probability > 0"):
        tbd_score([0.5])
    with pytest.raises(ValueError, match="1-D"):
        tbd_score([[-0.1]])


def test_tiny_positive_rounding_is_clipped_to_certainty():
    assert tbd_score([3e-7, math.log(0.5)], alpha=1.0) == pytest.approx(0.5)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"tau": 0.0}, "tbd_tau"),
        ({"tau": 1.5}, "tbd_tau"),
        ({"alpha": 0.0}, "tbd_alpha"),
        ({"max_tokens": 0}, "tbd_max_tokens"),
        ({"max_tokens": 2.5}, "tbd_max_tokens"),
        # non-finite values: alpha = inf made every TBD 0 (the most seen-like value)
        ({"alpha": math.inf}, "tbd_alpha must be a finite number"),
        ({"alpha": math.nan}, "tbd_alpha"),
        ({"tau": math.inf}, "tbd_tau must be a number in"),
        ({"tau": math.nan}, "tbd_tau"),
        ({"alpha": True}, "tbd_alpha"),
    ],
)
def test_bad_parameters_name_the_option(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TBDParams(**kwargs)
