"""ROC statistics: hand-computed values and undefined cases."""

import numpy as np
import pytest

from lm_eval_tbd.core.stats import UndefinedMetricError, roc_auc, tpr_at_fpr, tpr_at_fpr_paper


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
