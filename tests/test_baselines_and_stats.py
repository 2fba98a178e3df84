"""Baseline scores (hand-computed), statistics against scikit-learn / scipy, and invariants
checked with hypothesis."""

import math
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps
from sklearn.metrics import roc_auc_score

from lm_eval_tbd.core.record import GenerationRecord
from lm_eval_tbd.core.scores import (
    SCORES, TBDParams, decision_value, max_k, mean_logprob, min_k, min_k_plus_plus, tbd_score, zlib_ratio,
)
from lm_eval_tbd.core.scores import score_record
from lm_eval_tbd.core.stats import (
    UndefinedMetricError, audit, bh_min_flaggable, contaminated_fraction, empirical_p_values, roc_auc, roc_report,
    tpr_at_fpr,
)

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


labelled = st.lists(st.tuples(st.integers(0, 1), st.floats(-5, 5)), min_size=2, max_size=40).filter(
    lambda xs: 0 < sum(y for y, _ in xs) < len(xs))


@given(labelled)
def test_auc_of_reversed_labels_is_one_minus_auc_and_matches_sklearn(xs):
    y = np.array([a for a, _ in xs])
    s = np.array([b for _, b in xs])
    assert roc_auc(y, s) == pytest.approx(roc_auc_score(y, s))
    assert roc_auc(1 - y, s) == pytest.approx(1 - roc_auc(y, s))


@given(labelled, st.sampled_from([0.001, 0.01, 0.05, 0.07, 0.29, 0.5, 1.0]))
def test_vectorised_tpr_equals_the_roc_curve_one(xs, f):
    from lm_eval_tbd.core.stats import _tpr_at_fpr_vectorised

    y = np.array([a for a, _ in xs])
    s = np.round(np.array([b for _, b in xs]), 1)  # rounding makes ties common
    assert _tpr_at_fpr_vectorised(s[y == 1], s[y == 0], f) == pytest.approx(tpr_at_fpr(y, s, f))


@given(labelled, st.sampled_from([0.001, 0.01, 0.05, 0.5]))
def test_strict_tpr_is_monotone_and_tie_safe(xs, f):
    y = np.array([a for a, _ in xs])
    s = np.array([b for _, b in xs])
    assert tpr_at_fpr(y, s, f) <= tpr_at_fpr(y, s, min(1.0, f * 10)) + 1e-12
    assert tpr_at_fpr(y, np.zeros_like(s), f) == 0.0


def test_roc_report_against_sklearn_with_seeded_cis():
    rng = np.random.default_rng(1)
    y = np.r_[np.ones(40, int), np.zeros(60, int)]
    s = np.r_[rng.normal(1, 1, 40), rng.normal(0, 1, 60)]
    r = roc_report(y, s, n_resamples=300)
    assert r["auc"] == pytest.approx(roc_auc_score(y, s))
    assert r["auc_ci"][0] < r["auc"] < r["auc_ci"][1]
    assert r["tpr@1%fpr"] == tpr_at_fpr(y, s, 0.01) and "tpr@0.1%fpr_ci" in r and "tpr@5%fpr_paper" in r
    assert roc_report(y, s, n_resamples=300) == r  # seeded: the same numbers twice


def test_audit_against_scipy():
    rng = np.random.default_rng(2)
    bench, ref = rng.normal(0.8, 1, 30), rng.normal(0, 1, 50)
    a = audit(bench, ref, n_resamples=300)
    mw = sps.mannwhitneyu(bench, ref, alternative="greater")
    assert a["auc"] == pytest.approx(mw.statistic / (30 * 50)) and a["p_value"] == pytest.approx(mw.pvalue)
    assert a["bh_adjusted"] == pytest.approx(sps.false_discovery_control(a["p_values"], method="bh").tolist())
    assert a["contaminated_fraction_ci"][0] <= a["contaminated_fraction"] <= a["contaminated_fraction_ci"][1]


def test_empirical_p_values_and_fraction_hand_computed():
    # reference [0, 1, 2, 3]; benchmark 2.5 -> #{ref >= 2.5} = 1 -> (1+1)/5; 5 -> 1/5; -1 -> 5/5
    assert empirical_p_values([2.5, 5.0, -1.0], [0, 1, 2, 3]).tolist() == pytest.approx([0.4, 0.2, 1.0])
    # p > 0.5 for 1 of 4 -> pi0 = 0.25 / 0.5 = 0.5 -> fraction 0.5
    assert contaminated_fraction([0.1, 0.2, 0.3, 0.9]) == pytest.approx(0.5)


@pytest.mark.parametrize("bench, ref, message", [([0.1, 0.2], [], "reference question set is empty"),
                                                 ([0.1], [0.1, 0.2], "at least 2")])
def test_audit_undefined_cases(bench, ref, message):
    with pytest.raises(UndefinedMetricError, match=message):
        audit(bench, ref)


@pytest.mark.parametrize("n_reference, n_benchmark, fdr, expected", [
    (48, 30, 0.05, 13),  # p_min = 1/49: k * 0.05 / 30 >= 1/49 from k = 13 on
    (48, 2, 0.05, 1), (999, 30, 0.05, 1),  # a single question can be flagged
    (19, 7, 0.05, 7),  # p_min = 0.05 = the FDR: only all 7 together
    (4, 4, 0.05, None), (9, 3, 0.05, None),  # p_min above the FDR: never
    (99, 500, 0.1, 50),
])
def test_bh_min_flaggable_matches_audit(n_reference, n_benchmark, fdr, expected):
    """audit flags nothing while fewer than bh_min_flaggable questions score above every
    reference question (the rest below all of them), and flags them from that many on."""
    assert bh_min_flaggable(n_reference, n_benchmark, fdr) == expected
    reference = np.linspace(0.0, 1.0, n_reference)
    for k in range(n_benchmark + 1):
        benchmark = [2.0] * k + [-1.0] * (n_benchmark - k)
        n_flagged = sum(audit(benchmark, reference, fdr=fdr, n_resamples=10)["flagged"])
        assert (n_flagged > 0) == (expected is not None and k >= expected), (k, n_flagged)


@settings(max_examples=30)
@given(st.lists(st.floats(-3, 3), min_size=2, max_size=30), st.lists(st.floats(-3, 3), min_size=2, max_size=30))
def test_empirical_p_values_lie_in_unit_interval(bench, ref):
    p = empirical_p_values(bench, ref)
    assert ((p > 0) & (p <= 1)).all()
