"""Membership-inference statistics over (decision value, label) pairs.

Conventions (scikit-learn's): ``y_true`` holds 1 for members (seen questions, the positive class)
and 0 for non-members; ``y_score`` is a decision value where HIGHER = more likely a member. For
TBD, whose raw score is lower for members, pass ``-tbd``.

Undefined cases (one class only, fewer than two samples) raise :class:`UndefinedMetricError`
rather than returning a made-up number such as 0.5.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

__all__ = ["UndefinedMetricError", "roc_auc", "tpr_at_fpr", "tpr_at_fpr_paper"]


class UndefinedMetricError(ValueError):
    """A statistic is undefined for the given data (e.g. labels of only one class)."""


def _check(y_true, y_score) -> tuple[np.ndarray, np.ndarray]:
    y_true = np.asarray(y_true)
    y_score = np.asarray(y_score, dtype=np.float64)
    if y_true.shape != y_score.shape or y_true.ndim != 1:
        raise ValueError(f"y_true and y_score must be 1-D of equal length, got {y_true.shape} and {y_score.shape}")
    if y_true.size < 2:
        raise UndefinedMetricError(f"needs at least 2 labelled questions, got {y_true.size}")
    if not np.isin(y_true, (0, 1)).all():
        raise ValueError(f"labels must be 0 (unseen) or 1 (seen), got values {sorted(set(y_true.tolist()))}")
    if np.isnan(y_score).any():
        raise ValueError("y_score contains NaN")
    n_pos = int(y_true.sum())
    if n_pos == 0 or n_pos == y_true.size:
        which = "members (label 1)" if n_pos else "non-members (label 0)"
        raise UndefinedMetricError(
            f"ROC metrics are undefined: all {y_true.size} labelled questions are {which}; "
            "both seen and unseen questions are needed"
        )
    return y_true.astype(int), y_score


def roc_auc(y_true, y_score) -> float:
    """Area under the ROC curve (member = positive, higher ``y_score`` = more likely a member).

    0.5 is chance; 1.0 means every member scores above every non-member.
    """
    y_true, y_score = _check(y_true, y_score)
    return float(roc_auc_score(y_true, y_score))


def tpr_at_fpr(y_true, y_score, max_fpr: float = 0.01) -> float:
    """Strict TPR at a false-positive budget: the highest TPR among ROC points with FPR <= ``max_fpr``.

    Tie-safe: a constant score gets 0.0 (only the (0, 0) point fits the budget), not 1.0.
    """
    y_true, y_score = _check(y_true, y_score)
    fpr, tpr, _ = roc_curve(y_true, y_score, drop_intermediate=False)
    return float(tpr[fpr <= max_fpr].max())


def tpr_at_fpr_paper(y_true, y_score, min_fpr: float = 0.01) -> float:
    """TPR as the TBD paper's code computes it: at the first ROC point whose FPR >= ``min_fpr``.

    For comparison with published figures only: ties fool it (a constant score gets 1.0).
    """
    y_true, y_score = _check(y_true, y_score)
    fpr, tpr, _ = roc_curve(y_true, y_score, drop_intermediate=False)
    return float(tpr[np.argmax(fpr >= min_fpr)])
