"""lm_eval_tbd.core.stats: ROC statistics (hand-computed values and undefined cases), against
scikit-learn / scipy and with invariants checked by hypothesis; audit mode; paired AUC differences."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps
from sklearn.metrics import roc_auc_score

from lm_eval_tbd.core.stats import (
    UndefinedMetricError,
    audit,
    bh_min_flaggable,
    contaminated_fraction,
    empirical_p_values,
    paired_auc_difference,
    roc_auc,
    roc_report,
    tpr_at_fpr,
    tpr_at_fpr_paper,
)


def test_auc_hand_computed():
    assert roc_auc([1, 1, 0, 0], [0.9, 0.8, 0.7, 0.1]) == 1.0
    # pairs (pos, neg): (0.9,0.8) win, (0.9,0.2) win, (0.1,0.8) loss, (0.1,0.2) loss -> 2/4
    assert roc_auc([1, 1, 0, 0], [0.9, 0.1, 0.8, 0.2]) == 0.5
    # a tie counts one half: (0.5 vs 0.5) -> 0.5, (0.9 vs 0.5) -> 1 => 1.5/2
    assert roc_auc([1, 1, 0], [0.5, 0.9, 0.5]) == 0.75


def test_tpr_at_fpr_strict_and_paper_hand_computed():
    # positives 0.9, 0.8, 0.3; negatives 0.85, 0.2. ROC points (fpr, tpr):
    # (0,0) (0,1/3) (1/2,1/3) (1/2,2/3) (1/2,1) (1,1)
    y = [1, 1, 1, 0, 0]
    s = [0.9, 0.8, 0.3, 0.85, 0.2]
    assert tpr_at_fpr(y, s, 0.01) == pytest.approx(1 / 3)
    assert tpr_at_fpr(y, s, 0.5) == pytest.approx(1.0)
    assert tpr_at_fpr_paper(y, s, 0.01) == pytest.approx(1 / 3)
    assert tpr_at_fpr_paper(y, s, 0.6) == pytest.approx(1.0)


def test_constant_score_fools_only_the_paper_convention():
    y = [1] * 10 + [0] * 10
    s = [0.0] * 20
    assert tpr_at_fpr(y, s, 0.01) == 0.0
    assert tpr_at_fpr_paper(y, s, 0.01) == 1.0
    assert roc_auc(y, s) == 0.5


def test_auc_of_reversed_scores_is_one_minus_auc():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 50)
    s = rng.normal(size=50)
    assert roc_auc(y, -s) == pytest.approx(1 - roc_auc(y, s))


@pytest.mark.parametrize("labels", [[1, 1, 1], [0, 0]])
def test_single_class_is_undefined_not_half(labels):
    with pytest.raises(UndefinedMetricError, match="undefined: all"):
        roc_auc(labels, [0.1] * len(labels))
    with pytest.raises(UndefinedMetricError):
        tpr_at_fpr(labels, [0.1] * len(labels))


def test_bad_inputs():
    with pytest.raises(UndefinedMetricError, match="at least 2"):
        roc_auc([1], [0.3])
    with pytest.raises(ValueError, match="labels must be 0"):
        roc_auc([1, 2], [0.1, 0.2])
    with pytest.raises(ValueError, match="NaN"):
        roc_auc([1, 0], [0.1, float("nan")])


def test_one_member_gives_auc_and_tpr_without_bootstrap_cis():
    from lm_eval_tbd.core.stats import roc_report

    # scipy's "each sample in `data` must contain two or more observations" ended the report
    r = roc_report([1, 0, 0, 0], [0.9, 0.1, 0.2, 0.3], n_resamples=50)
    assert r["auc"] == 1.0 and r["tpr@1%fpr"] == 1.0 and r["n_members"] == 1
    assert r["auc_ci"] is None and r["tpr@1%fpr_ci"] is None
    assert "at least 2 members and 2 non-members, got 1 and 3" in r["ci_undefined"]
    assert roc_report([1, 1, 0], [0.9, 0.8, 0.1], n_resamples=50)["auc_ci"] is None
    full = roc_report([1, 1, 0, 0], [0.9, 0.8, 0.1, 0.2], n_resamples=50)
    assert "ci_undefined" not in full and len(full["auc_ci"]) == 2


def test_infinite_scores_rank_beyond_the_finite_ones():
    # mean log-prob is -inf when a token had probability 0; scikit-learn refuses infinities
    y = [1, 0, 1, 0]
    assert roc_auc(y, [-np.inf, -1.0, 0.0, -2.0]) == roc_auc(y, [-9.0, -1.0, 0.0, -2.0]) == 0.5
    assert roc_auc(y, [np.inf, -np.inf, 1.0, 0.5]) == 1.0
    assert tpr_at_fpr([1, 0], [-np.inf, -np.inf]) == 0.0


# ---- against scikit-learn / scipy, invariants (hypothesis), audit mode ----


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


def test_paired_auc_difference_hand_computed():
    labels = [1, 1, 0, 0]
    a = [0.9, 0.8, 0.2, 0.1]  # AUC 1.0
    b = [0.9, 0.1, 0.8, 0.2]  # pairs (m, n): .9>.8 .9>.2 .1<.8 .1<.2 -> 2/4 = 0.5
    d = paired_auc_difference(labels, a, b, n_resamples=500)
    assert d["difference"] == pytest.approx(0.5)
    assert (d["auc_a"], d["auc_b"]) == (1.0, 0.5)
    assert d["ci"][0] <= 0.5 <= d["ci"][1]
    same = paired_auc_difference(labels, a, a, n_resamples=200)
    assert same["difference"] == 0.0 and same["ci"] == [0.0, 0.0] and same["p_two_sided"] == 1.0
    # seeded: the same call gives the same interval
    assert paired_auc_difference(labels, a, b, n_resamples=500)["ci"] == d["ci"]
