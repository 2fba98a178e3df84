"""lm_eval_tbd.core.scores: TBD against hand-computed values (the worked example in docs/method.md)
and its edge cases; the likelihood baselines (hand-computed) and invariants checked with
hypothesis; every score of one generation record; means over sampled generations."""

import math
import zlib

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lm_eval_tbd.core.record import GenerationRecord
from lm_eval_tbd.core.scores import (
    SCORES,
    TBDParams,
    decision_value,
    max_k,
    mean_logprob,
    mean_scores,
    min_k,
    min_k_plus_plus,
    score_record,
    tbd_score,
    zlib_ratio,
)


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


# ---- the likelihood baselines and every score of a record (hand-computed, hypothesis) ----

LP = [-0.1, -2.0, -0.5, -3.0, -1.0]  # sorted: -3, -2, -1, -0.5, -0.1


def test_likelihood_baselines_hand_computed():
    assert mean_logprob(LP) == pytest.approx(-6.6 / 5)
    # k = 0.2 of 5 tokens = 1 token; k = 0.4 -> 2 tokens
    assert min_k(LP, 0.2) == -3.0
    assert min_k(LP, 0.4) == pytest.approx(-2.5)
    assert max_k(LP, 0.2) == -0.1
    assert max_k(LP, 0.4) == pytest.approx(-0.3)
    # fewer tokens than 1/k still uses one token
    assert min_k([-1.0, -2.0], 0.2) == -2.0
    assert mean_logprob(LP, max_tokens=2) == pytest.approx(-1.05)


def test_min_k_plus_plus_hand_computed():
    # z = (lp - mu) / sigma = [(-1+2)/1, (-3+2)/2, (-2+2)/4] = [1, -0.5, 0]; zero sigma -> z = 0
    assert min_k_plus_plus([-1.0, -3.0, -2.0], [-2.0, -2.0, -2.0], [1.0, 2.0, 4.0], k=0.34) == -0.5
    assert min_k_plus_plus([-1.0, -3.0, -2.0], [-2.0, -2.0, -2.0], [1.0, 2.0, 4.0], k=1.0) == pytest.approx(0.5 / 3)
    assert min_k_plus_plus([-1.0], [-2.0], [0.0], k=1.0) == 0.0
    with pytest.raises(ValueError, match="3 tokens but 2 mu"):
        min_k_plus_plus([-1.0, -3.0, -2.0], [-2.0, -2.0], [1.0, 1.0, 1.0])


def test_zlib_ratio_hand_computed():
    text = "The answer is 42."
    assert zlib_ratio([-1.0, -3.0], text) == pytest.approx(-2.0 / len(zlib.compress(text.encode())))


def test_baselines_undefined_for_zero_tokens():
    for fn in (mean_logprob, min_k, max_k):
        with pytest.raises(ValueError, match="undefined for zero tokens"):
            fn([])
    with pytest.raises(ValueError, match="k must be in"):
        min_k(LP, 0.0)


def test_score_record_and_sign_conventions():
    rec = GenerationRecord([5, 6, 1], [math.log(0.5), math.log(0.9), 0.0], "eos", text="ab",
                           vocab_logp_mean=[-1.0, -1.0, 0.0], vocab_logp_std=[1.0, 1.0, 0.0])
    s = score_record(rec, TBDParams())
    assert s["tbd"] == pytest.approx((0.5 ** 0.6 + 0.1 ** 0.6) / 2)
    assert s["gen_mean_logprob"] == pytest.approx((math.log(0.5) + math.log(0.9)) / 3)
    assert set(s) == {"tbd", "gen_mean_logprob", "gen_min_k", "gen_max_k", "gen_min_k_pp", "gen_zlib", "gen_entropy"}
    assert set(score_record(GenerationRecord([], [], "eos"), TBDParams())) == {"tbd"}
    # re-scoring a longer record with a smaller M leaves out zlib (its text covers all tokens)
    assert "gen_zlib" not in score_record(rec, TBDParams(max_tokens=2))
    assert decision_value("tbd", 0.3) == -0.3 and decision_value("gen_min_k", -0.3) == -0.3
    lower_is_seen = {"tbd", "ref_tbd", "gen_entropy"}
    assert all(SCORES[n].higher_is_seen == (n not in lower_is_seen) for n in SCORES)


def test_question_and_reference_scores():
    rec = GenerationRecord([5, 6], [math.log(0.5), math.log(0.5)], "length", text="ab",
                           question_logprobs=[-1.0, -3.0], question_logp_mean=[-2.0, -2.0], question_logp_std=[1.0, 1.0],
                           ref_logprobs=[math.log(0.25), math.log(0.25)])
    s = score_record(rec, TBDParams(alpha=1.0), question="Why?")
    assert s["q_mean_logprob"] == -2.0 and s["q_min_k"] == -3.0 and s["q_max_k"] == -1.0
    assert s["q_min_k_pp"] == -1.0
    assert s["q_zlib"] == pytest.approx(-2.0 / len(zlib.compress(b"Why?")))
    # student TBD 0.5, reference TBD 0.75 -> calibrated -0.25 (student more certain: more seen-like)
    assert s["ref_tbd"] == pytest.approx(-0.25)
    assert s["ref_logprob"] == pytest.approx(math.log(0.5) - math.log(0.25))


logprob_lists = st.lists(st.floats(min_value=-20.0, max_value=0.0), min_size=1, max_size=60)


@given(logprob_lists, logprob_lists, st.integers(1, 60))
def test_appending_tokens_past_m_never_changes_a_score(lp, extra, m):
    lp = lp[:m]
    m = len(lp)  # the first M tokens are all there; everything appended lies past M
    for fn in (lambda x: tbd_score(x, max_tokens=m), lambda x: mean_logprob(x, max_tokens=m),
               lambda x: min_k(x, max_tokens=m), lambda x: max_k(x, max_tokens=m)):
        assert fn(lp + extra) == fn(lp)


@given(logprob_lists)
def test_tbd_bounded_and_min_k_below_max_k(lp):
    assert 0.0 <= tbd_score(lp) <= 1.0
    assert min_k(lp) <= mean_logprob(lp) + 1e-12 <= max_k(lp) + 2e-12


# ---- sampled decoding: means over samples, and the scores of one record ----


def test_mean_over_samples_hand_computed():
    # sample 1: p = [1.0, 0.5] -> S = {0.5} -> 0.5**0.6 = 0.659754
    # sample 2: p = [0.9, 0.5] -> (0.1**0.6 + 0.5**0.6) / 2 = 0.455471
    a = GenerationRecord(token_ids=[1, 2], logprobs=[0.0, math.log(0.5)], finish_reason="length")
    b = GenerationRecord(token_ids=[1, 3], logprobs=[math.log(0.9), math.log(0.5)], finish_reason="length")
    per = [score_record(r, TBDParams()) for r in (a, b)]
    assert per[0]["tbd"] == pytest.approx(0.659754, abs=1e-6)
    assert per[1]["tbd"] == pytest.approx(0.455471, abs=1e-6)
    mean = mean_scores(per)
    assert mean["tbd"] == pytest.approx((0.659754 + 0.455471) / 2, abs=1e-6)
    assert mean["gen_mean_logprob"] == pytest.approx((math.log(0.5) / 2 + (math.log(0.9) + math.log(0.5)) / 2) / 2)
    assert list(mean) == list(per[0])


def test_mean_leaves_undefined_baselines_out_of_their_mean():
    empty = GenerationRecord(token_ids=[], logprobs=[], finish_reason="eos")
    one = GenerationRecord(token_ids=[1], logprobs=[math.log(0.5)], finish_reason="length")
    mean = mean_scores([score_record(r, TBDParams()) for r in (empty, one)])
    assert mean["tbd"] == pytest.approx((0.0 + tbd_score([math.log(0.5)])) / 2)
    assert mean["gen_mean_logprob"] == pytest.approx(math.log(0.5))  # only the sample that has it
    with pytest.raises(ValueError):
        mean_scores([])


def test_new_scores_hand_computed():
    from lm_eval_tbd.core.scores import SCORES, certain_share, mean_entropy, ratio_min_k

    assert mean_entropy([0.0, -math.log(2)]) == pytest.approx(0.346574, abs=1e-6)
    assert mean_entropy([0.0, -math.log(2), -5.0], max_tokens=2) == pytest.approx(0.346574, abs=1e-6)
    with pytest.raises(ValueError):
        mean_entropy([])
    with pytest.raises(ValueError):
        mean_entropy([0.5])
    lp = [0.0, 0.0, -0.5, 0.0, 0.0]
    ref = [-1.0, -0.2, 0.0, -0.3, -0.4]  # ratios lp - ref: [1.0, 0.2, -0.5, 0.3, 0.4]
    assert ratio_min_k(lp, ref, k=0.4) == pytest.approx((-0.5 + 0.2) / 2)
    assert ratio_min_k(lp, ref, k=0.2) == pytest.approx(-0.5)  # max(1, floor(5 * 0.2)) = 1 token
    p, q = [0.95, 0.99, 0.5, 0.92], [0.2, 0.99, 0.1, 0.4]
    assert certain_share([math.log(x) for x in p], [math.log(x) for x in q]) == 0.5
    with pytest.raises(ValueError, match="reference log-probs"):
        certain_share([0.0, 0.0], [0.0])
    assert not SCORES["gen_entropy"].higher_is_seen
    assert SCORES["ref_ratio_min_k"].higher_is_seen and SCORES["ref_certain_share"].higher_is_seen


def test_new_scores_come_from_the_record():
    rec = GenerationRecord(token_ids=[1, 2], logprobs=[math.log(0.95), math.log(0.5)], finish_reason="length",
                           vocab_logp_mean=[-0.1, -0.7], vocab_logp_std=[0.1, 0.2],
                           ref_logprobs=[math.log(0.2), math.log(0.5)])
    s = score_record(rec, TBDParams())
    assert s["gen_entropy"] == pytest.approx(0.4)
    assert s["ref_certain_share"] == 0.5
    assert s["ref_ratio_min_k"] == pytest.approx(0.0)  # ratios [log .95 - log .2, 0]: lowest 1 of 2
    # a server's record (no vocabulary statistics, no reference): the scores are left out, not faked
    bare = score_record(GenerationRecord(token_ids=[1], logprobs=[-0.1], finish_reason="length"), TBDParams())
    assert not {"gen_entropy", "ref_ratio_min_k", "ref_certain_share"} & set(bare)


def test_question_scores_calibrated_by_the_reference_model():
    # question log-probs: student [-1, -2, -4, -0.5, -3], reference [-2, -2, -3, -1.5, -5]
    # ratios: [1, 0, -1, 1, 2]; mean ratio = mean(student) - mean(reference) = -2.1 - (-2.7) = 0.6
    rec = GenerationRecord(token_ids=[1], logprobs=[-0.1], finish_reason="length",
                           question_logprobs=[-1.0, -2.0, -4.0, -0.5, -3.0],
                           ref_question_logprobs=[-2.0, -2.0, -3.0, -1.5, -5.0])
    s = score_record(rec, TBDParams())
    assert s["q_ref_logprob"] == pytest.approx(0.6)
    assert s["q_ref_min_k"] == pytest.approx(-1.0)  # k = 0.2 of 5 tokens: the lowest ratio
    assert SCORES["q_ref_logprob"].higher_is_seen and SCORES["q_ref_min_k"].higher_is_seen
    # without the reference model's view of the question the calibrated scores are left out
    plain = score_record(GenerationRecord(token_ids=[1], logprobs=[-0.1], finish_reason="length",
                                          question_logprobs=[-1.0, -2.0]), TBDParams())
    assert "q_mean_logprob" in plain and not {"q_ref_logprob", "q_ref_min_k"} & set(plain)


def test_tbd_underflow_is_told_from_a_zero_by_definition():
    import math

    from lm_eval_tbd.core.scores import tbd_underflows

    half = [math.log(0.5)]  # tau - p = 0.5 at tau 1
    assert not tbd_underflows(half, TBDParams())  # 0.5 ** 0.6 = 0.66
    assert tbd_underflows(half, TBDParams(alpha=1e300))  # 0.5 ** 1e300 = 0.0
    assert not tbd_underflows([0.0, 0.0], TBDParams(alpha=1e300))  # p = 1 >= tau: 0 by definition
    assert not tbd_underflows(half, TBDParams(tau=1e-300))  # no token below tau: 0 by definition
