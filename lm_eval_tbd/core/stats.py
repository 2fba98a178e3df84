"""Membership-inference statistics over (decision value, label) pairs.

Conventions (scikit-learn's): ``y_true`` holds 1 for members (seen questions, the positive class)
and 0 for non-members; ``y_score`` is a decision value where HIGHER = more likely a member. For
TBD, whose raw score is lower for members, pass ``-tbd``.

Undefined cases (one class only, fewer than two samples) raise :class:`UndefinedMetricError`
rather than returning a made-up number such as 0.5.
"""

from __future__ import annotations

import numpy as np
from scipy import stats as _scipy_stats
from sklearn.metrics import roc_auc_score, roc_curve

__all__ = [
    "UndefinedMetricError", "roc_auc", "tpr_at_fpr", "tpr_at_fpr_paper", "roc_report", "paired_auc_difference",
    "empirical_p_values", "contaminated_fraction", "bh_min_flaggable", "audit",
]


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
    y_score = _finite_ranks(y_score)
    n_pos = int(y_true.sum())
    if n_pos == 0 or n_pos == y_true.size:
        which = "members (label 1)" if n_pos else "non-members (label 0)"
        raise UndefinedMetricError(
            f"ROC metrics are undefined: all {y_true.size} labelled questions are {which}; "
            "both seen and unseen questions are needed"
        )
    return y_true.astype(int), y_score


def _finite_ranks(y_score: np.ndarray) -> np.ndarray:
    """``y_score`` with -inf / +inf moved just beyond the finite range, order kept.

    A generation with a token of probability 0 has mean log-prob -inf: a valid, least seen-like
    score. scikit-learn refuses infinities, and these metrics depend only on the order of the
    scores, so the figures are those of the infinite values."""
    if not np.isinf(y_score).any():
        return y_score
    finite = y_score[np.isfinite(y_score)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
    return np.where(y_score == -np.inf, lo - abs(lo) - 1.0, np.where(y_score == np.inf, hi + abs(hi) + 1.0, y_score))


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


def _bootstrap_ci(statistic, samples, *, n_resamples: int, confidence: float, seed: int,
                  vectorized: bool = False) -> tuple[float, float]:
    res = _scipy_stats.bootstrap(
        samples, statistic, paired=False, vectorized=vectorized, n_resamples=n_resamples,
        confidence_level=confidence, method="percentile", random_state=np.random.default_rng(seed),
    )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def _tpr_at_fpr_vectorised(pos, neg, max_fpr: float, axis: int = -1):
    """Strict TPR at ``max_fpr`` along ``axis`` (for bootstrap resamples); equals :func:`tpr_at_fpr`.

    With k the most non-members allowed above threshold (the largest k with k / n_neg <= max_fpr,
    the same float comparison as roc_curve's FPR), the best threshold sits just above the
    (k+1)-th highest non-member score; members tied with it are excluded.
    """
    pos, neg = np.moveaxis(pos, axis, -1), np.moveaxis(neg, axis, -1)
    n_neg = neg.shape[-1]
    k = int(np.count_nonzero(np.arange(n_neg + 1) / n_neg <= max_fpr)) - 1
    if k >= n_neg:
        return np.ones(pos.shape[:-1])
    kth_highest = np.sort(neg, axis=-1)[..., n_neg - 1 - k]
    return np.mean(pos > kth_highest[..., None], axis=-1)


def roc_report(y_true, y_score, *, fprs=(0.001, 0.01, 0.05), n_resamples: int = 1000,
               confidence: float = 0.95, seed: int = 0) -> dict:
    """ROC AUC and strict TPR at each FPR in ``fprs``, with percentile bootstrap confidence
    intervals, plus the paper's TPR convention (for comparison only, no CI).

    The bootstrap resamples members and non-members separately (scipy's independent-sample
    bootstrap), so every resample has both classes and the class balance is kept. Seeded.
    Returns ``{"auc": x, "auc_ci": [lo, hi], "tpr@1%fpr": ..., "tpr@1%fpr_ci": [...],
    "tpr@1%fpr_paper": ..., "n_members": .., "n_nonmembers": ..}``.

    With a single member or a single non-member the AUC and TPRs are defined but the bootstrap
    is not (resampling one question gives no spread): every ``*_ci`` is None and
    ``ci_undefined`` says why.
    """
    y_true, y_score = _check(y_true, y_score)
    pos, neg = y_score[y_true == 1], y_score[y_true == 0]

    out = {"n_members": int(pos.size), "n_nonmembers": int(neg.size), "confidence": confidence}
    no_ci = min(pos.size, neg.size) < 2
    if no_ci:
        out["ci_undefined"] = (f"bootstrap confidence intervals need at least 2 members and 2 non-members, "
                               f"got {pos.size} and {neg.size}")

    def ci(statistic):
        if no_ci:
            return None
        return list(_bootstrap_ci(statistic, (pos, neg), n_resamples=n_resamples, confidence=confidence, seed=seed,
                                  vectorized=True))

    out["auc"] = roc_auc(y_true, y_score)
    # AUC = U / (n_pos n_neg) (ties count one half, as in roc_auc_score); vectorised over resamples.
    out["auc_ci"] = ci(lambda p, n, axis=-1: _scipy_stats.mannwhitneyu(p, n, axis=axis).statistic
                       / (p.shape[axis] * n.shape[axis]))
    for f in fprs:
        name = f"tpr@{f:.1%}fpr".replace(".0%", "%")
        out[name] = tpr_at_fpr(y_true, y_score, f)
        out[f"{name}_ci"] = ci(lambda p, n, axis=-1, f=f: _tpr_at_fpr_vectorised(p, n, f, axis))
        out[f"{name}_paper"] = tpr_at_fpr_paper(y_true, y_score, f)
    return out


def paired_auc_difference(y_true, score_a, score_b, *, n_resamples: int = 2000, confidence: float = 0.95,
                          seed: int = 0) -> dict:
    """AUC(a) - AUC(b) for two decision values of the SAME questions, with a paired bootstrap CI.

    Each resample draws members and non-members separately (with replacement) and evaluates
    both scores on the same drawn questions, so the question-to-question variation they share
    cancels. Both scores are decision values (higher = more likely a member). Returns
    ``{"difference": d, "ci": [lo, hi], "p_two_sided": p, "auc_a": .., "auc_b": ..}``, where
    ``p`` is the share of resamples on the far side of 0, doubled (a bootstrap p-value; small
    when the CI excludes 0). A positive difference means ``a`` separates better.

    Example: ``paired_auc_difference([1, 1, 0, 0], [.9, .8, .2, .1], [.9, .1, .8, .2])``
    gives difference 1.0 - 0.5 = 0.5.
    """
    y_true, a = _check(y_true, score_a)
    _, b = _check(y_true, score_b)
    pos, neg = np.flatnonzero(y_true == 1), np.flatnonzero(y_true == 0)
    rng = np.random.default_rng(seed)
    ip = pos[rng.integers(0, pos.size, size=(n_resamples, pos.size))]
    ineg = neg[rng.integers(0, neg.size, size=(n_resamples, neg.size))]

    def auc(score):
        # Mann-Whitney U per resample, ties counted one half (as roc_auc_score).
        p, n = score[ip][:, :, None], score[ineg][:, None, :]
        return ((p > n).mean(axis=(1, 2)) + 0.5 * (p == n).mean(axis=(1, 2)))

    diffs = auc(a) - auc(b)
    half = (1 - confidence) / 2
    d = roc_auc(y_true, a) - roc_auc(y_true, b)
    p = min(1.0, 2 * min(np.mean(diffs <= 0), np.mean(diffs >= 0)))
    return {"difference": float(d), "ci": [float(np.quantile(diffs, half)), float(np.quantile(diffs, 1 - half))],
            "p_two_sided": float(p), "auc_a": roc_auc(y_true, a), "auc_b": roc_auc(y_true, b),
            "n_resamples": n_resamples}


# ---- audit mode: a benchmark against a clean reference question set (no labels) ------------


def _check_audit(benchmark, reference) -> tuple[np.ndarray, np.ndarray]:
    b = np.asarray(benchmark, dtype=np.float64)
    r = np.asarray(reference, dtype=np.float64)
    if r.size == 0:
        raise UndefinedMetricError("the reference question set is empty; audit mode needs clean reference scores")
    if b.size < 2 or r.size < 2:
        raise UndefinedMetricError(f"audit mode needs at least 2 benchmark and 2 reference scores, got {b.size} and {r.size}")
    if np.isnan(b).any() or np.isnan(r).any():
        raise ValueError("audit scores contain NaN")
    return b, r


def empirical_p_values(benchmark, reference) -> np.ndarray:
    """Per benchmark question, ``(1 + #{reference >= score}) / (n_reference + 1)``.

    Scores are decision values (HIGHER = more seen-like); a small p-value means the question
    looks more seen than (almost) every clean reference question. Valid (super-uniform) for a
    question drawn from the reference distribution.
    """
    b, r = _check_audit(benchmark, reference)
    r_sorted = np.sort(r)
    at_least = r.size - np.searchsorted(r_sorted, b, side="left")
    return (1.0 + at_least) / (r.size + 1.0)


def contaminated_fraction(p_values, lam: float = 0.5) -> float:
    """Storey's estimate of the share of non-null questions: ``1 - #{p > lam} / ((1 - lam) n)``,
    clipped to [0, 1]."""
    p = np.asarray(p_values, dtype=np.float64)
    pi0 = np.mean(p > lam) / (1.0 - lam)
    return float(np.clip(1.0 - pi0, 0.0, 1.0))


def bh_min_flaggable(n_reference: int, n_benchmark: int, fdr: float) -> int | None:
    """The fewest questions Benjamini-Hochberg at ``fdr`` can flag in :func:`audit`: it flags
    none or at least this many. None when it cannot flag any; 1 when a single question can be
    flagged on its own.

    An empirical p-value is never below ``p_min = 1 / (n_reference + 1)`` (a question above every
    reference question). BH as :func:`audit` runs it (scipy's ``false_discovery_control``) flags
    the k smallest of m p-values when ``p_(k) * (m / k) <= fdr``; as ``p_(k) >= p_min``, that
    needs ``p_min * (m / k) <= fdr``, i.e. k >= m * p_min / fdr, and is out of reach for every
    k <= m when ``p_min > fdr``.
    """
    p_min = 1.0 / (n_reference + 1.0)
    if n_benchmark < 1 or p_min > fdr:
        return None
    # The same float expression as scipy's adjustment, so the edge cases agree with audit().
    k = max(1, int(np.ceil(n_benchmark * p_min / fdr)))
    while k > 1 and p_min * (n_benchmark / (k - 1)) <= fdr:
        k -= 1
    while k <= n_benchmark and p_min * (n_benchmark / k) > fdr:
        k += 1
    return k if k <= n_benchmark else None


def audit(benchmark, reference, *, fdr: float = 0.05, n_resamples: int = 1000, confidence: float = 0.95,
          seed: int = 0) -> dict:
    """Benchmark decision values against clean reference ones (HIGHER = more seen-like).

    Returns the Mann-Whitney AUC ``U / (n_b n_r)`` (0.5 = indistinguishable from the clean set)
    with a bootstrap CI (``auc_ci``) and its one-sided p-value (benchmark scores more seen-like than reference), per-question
    empirical p-values, Benjamini-Hochberg adjusted p-values and flags at ``fdr``, and the
    estimated contaminated fraction with a bootstrap confidence interval.
    """
    b, r = _check_audit(benchmark, reference)
    mw = _scipy_stats.mannwhitneyu(b, r, alternative="greater")
    p = empirical_p_values(b, r)
    adjusted = _scipy_stats.false_discovery_control(p, method="bh")

    def fraction(bs, rs):
        return contaminated_fraction(empirical_p_values(bs, rs))

    return {
        "n_benchmark": int(b.size),
        "n_reference": int(r.size),
        "auc": float(mw.statistic / (b.size * r.size)),
        # The effect size's spread: each set resampled on its own, ties counted one half.
        "auc_ci": list(_bootstrap_ci(lambda x, y, axis=-1: _scipy_stats.mannwhitneyu(x, y, axis=axis).statistic
                                     / (x.shape[axis] * y.shape[axis]), (b, r), n_resamples=n_resamples,
                                     confidence=confidence, seed=seed, vectorized=True)),
        "p_value": float(mw.pvalue),
        "p_values": p.tolist(),
        "bh_adjusted": adjusted.tolist(),
        "flagged": (adjusted <= fdr).tolist(),
        "fdr": fdr,
        "contaminated_fraction": fraction(b, r),
        "contaminated_fraction_ci": list(_bootstrap_ci(fraction, (b, r), n_resamples=n_resamples, confidence=confidence, seed=seed)),
        "confidence": confidence,
    }
