"""The blind baseline: how far two question sets differ in their text alone, before any model.

An audit compares a benchmark with a clean reference set from another source, and every way the
two sets differ (topic, length, notation, difficulty) can move a membership score as much as
contamination does (Das et al. 2024, "Blind Baselines Beat Membership Inference Attacks for
Foundation Models"; Duan et al. 2024). A classifier that reads only the questions measures that
difference: its cross-validated AUC is 0.5 for sets drawn from one distribution and near 1.0 for
sets that differ in kind.
"""

from __future__ import annotations

import numpy as np
from scipy import stats as _scipy_stats
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline

from lm_eval_tbd.core.stats import UndefinedMetricError, roc_auc

__all__ = ["text_only_auc", "MIN_PER_SET", "DEFAULT_MAX_TEXT_AUC"]

#: An audit of sets that a text-only classifier tells apart at least this well gets no PASS or
#: FAIL (the gate's "confounded"), with or without a base-model run; chosen on benchmarks/shift.py
#: (benchmarks/results/shift.md): below it no null cell failed and every leak was detected.
DEFAULT_MAX_TEXT_AUC = 0.8

#: questions each set needs for a cross-validated figure (2 per fold, 2 folds at least)
MIN_PER_SET = 4


def _classifier(seed: int):
    # Character n-grams within word boundaries catch notation ("$\frac", "<<"), vocabulary and
    # length alike, with no tokenizer to choose; L2-regularised logistic regression as in the
    # blind-baseline literature.
    return make_pipeline(TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True, min_df=1),
                         LogisticRegression(C=1.0, max_iter=1000, random_state=seed))


def text_only_auc(benchmark, reference, *, folds: int = 5, seed: int = 0, n_resamples: int = 1000,
                  confidence: float = 0.95) -> dict:
    """Cross-validated ROC AUC of a text-only classifier telling ``benchmark`` questions from
    ``reference`` questions (benchmark = positive), from out-of-fold decision values.

    Direction: 0.5 = the texts alone cannot tell the sets apart (a reference of the same
    distribution); towards 1.0 = the sets differ in kind, and an audit of one against the other
    measures that difference as well as any contamination. Below 0.5 is noise around 0.5.

    Stratified ``folds``-fold (fewer when a set is small, at least 2), seeded. The CI is a seeded
    percentile bootstrap of the out-of-fold AUC, resampling each set separately.

    Returns ``{"auc", "auc_ci", "folds", "n_benchmark", "n_reference", "confidence"}``. Raises
    :class:`~lm_eval_tbd.core.stats.UndefinedMetricError` when a set has fewer than
    ``MIN_PER_SET`` questions.

    Example: ``text_only_auc(["x + y = 3"] * 6, ["x + y = 3"] * 6)["auc"]`` is 0.5 (identical
    texts); two sets with no character n-gram in common give 1.0.
    """
    b, r = [str(t) for t in benchmark], [str(t) for t in reference]
    if min(len(b), len(r)) < MIN_PER_SET:
        raise UndefinedMetricError(f"the text-only diagnostic needs at least {MIN_PER_SET} questions on each side, "
                                   f"got {len(b)} and {len(r)}")
    texts = np.array(b + r, dtype=object)
    y = np.array([1] * len(b) + [0] * len(r))
    k = max(2, min(folds, len(b) // 2, len(r) // 2))
    oof = np.zeros(len(texts))
    for train, test in StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(texts, y):
        model = _classifier(seed).fit(texts[train], y[train])
        oof[test] = model.decision_function(texts[test])
    # Identical decision values (identical texts) tie: AUC exactly 0.5, as Mann-Whitney counts ties.
    oof = np.round(oof, 12)
    pos, neg = oof[y == 1], oof[y == 0]
    res = _scipy_stats.bootstrap(
        (pos, neg), lambda p, n, axis=-1: _scipy_stats.mannwhitneyu(p, n, axis=axis).statistic / (p.shape[axis] * n.shape[axis]),
        paired=False, vectorized=True, n_resamples=n_resamples, confidence_level=confidence, method="percentile",
        random_state=np.random.default_rng(seed))
    ci = [float(res.confidence_interval.low), float(res.confidence_interval.high)]
    if not all(np.isfinite(ci)):  # every resample alike (e.g. all decision values tied)
        ci = [float(roc_auc(y, oof))] * 2
    return {"auc": roc_auc(y, oof), "auc_ci": ci, "folds": k, "n_benchmark": len(b), "n_reference": len(r),
            "confidence": confidence}
