"""What a leak did to the score: the ordinary task's accuracy set against seen-likeness, on the
questions a TBD task and an ordinary task of the same run share (joined by
:mod:`lm_eval_tbd.core.outcomes`).

Directions: a *decision value* is a score turned so that HIGHER = more likely seen
(:func:`lm_eval_tbd.core.scores.decision_value`; for TBD, ``-tbd``). ``correct`` holds the
ordinary task's per-question metric (1 correct, 0 wrong for ``exact_match``); accuracy is its mean.

The figures, each with a seeded percentile bootstrap CI (default 95%, 2000 resamples):

- :func:`quarter_gap`: accuracy on the most seen-like quarter (the ``ceil(n / 4)`` questions with
  the highest decision values, ties broken by question order) minus accuracy on the rest.
  Positive = the questions that look seen are answered better.
- :func:`group_gap`: accuracy inside a group minus outside it (flagged against unflagged;
  members against non-members where labels exist).
- :func:`rank_correlation`: Spearman's rho between decision value and correctness (positive =
  the more seen-like, the more often right).
- :func:`inflation`: the student's quarter gap minus the base model's gap on the SAME questions
  split the same way (by the student's decision values): a difference in differences. Easy
  questions can look familiar to any model; the base model, which never saw the leak, shows
  how much of the gap difficulty alone explains, and the rest is put down to the leak.
- :func:`accuracy_by_bin`: accuracy per decile of the decision value, for the plot.

Group figures resample questions within each group (the split is kept); the correlation
resamples question pairs. Too few questions raise :class:`~lm_eval_tbd.core.stats.UndefinedMetricError`.

Example::

    quarter_gap([4, 3, 2, 1], [1, 0, 0, 0])   # top quarter = the first question
    # {"accuracy_group": 1.0, "accuracy_rest": 0.0, "gap": 1.0, ...}
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import rankdata

from lm_eval_tbd.core.atomic import json_safe
from lm_eval_tbd.core.outcomes import PairingError, find_ordinary_task, pair_run
from lm_eval_tbd.core.samples import load_run
from lm_eval_tbd.core.scores import SCORES
from lm_eval_tbd.core.stats import UndefinedMetricError

__all__ = ["SHARE", "seen_like_split", "group_gap", "quarter_gap", "rank_correlation", "inflation", "accuracy_by_bin",
           "mean_ci", "accuracy_figures", "paired_accuracy", "folder_accuracy"]

#: The share of questions called "most seen-like".
SHARE = 0.25
_RESAMPLES = 2000


def _arrays(decision, correct) -> tuple[np.ndarray, np.ndarray]:
    d = np.asarray(decision, dtype=np.float64)
    c = np.asarray(correct, dtype=np.float64)
    if d.shape != c.shape or d.ndim != 1:
        raise ValueError(f"decision and correct must be 1-D of equal length, got {d.shape} and {c.shape}")
    if np.isnan(d).any() or np.isnan(c).any():
        raise ValueError("decision values and correctness must not be NaN")
    return d, c


def _quantiles(values: np.ndarray, confidence: float) -> list[float]:
    half = (1 - confidence) / 2
    return [float(np.quantile(values, half)), float(np.quantile(values, 1 - half))]


def _resample(rng, n: int, n_resamples: int) -> np.ndarray:
    return rng.integers(0, n, size=(n_resamples, n))


def mean_ci(values, *, n_resamples: int = _RESAMPLES, confidence: float = 0.95, seed: int = 0) -> list[float] | None:
    """Percentile bootstrap CI ``[lo, hi]`` of the mean of ``values``; None for fewer than 2 values.

    Example: ``mean_ci([1, 1, 1])`` is ``[1.0, 1.0]`` (no spread in the data, none in the interval)."""
    v = np.asarray(values, dtype=np.float64)
    if v.size < 2:
        return None
    rng = np.random.default_rng(seed)
    return _quantiles(v[_resample(rng, v.size, n_resamples)].mean(axis=1), confidence)


def seen_like_split(decision, *, share: float = SHARE) -> np.ndarray:
    """Boolean mask of the most seen-like ``share`` of questions: the ``ceil(share * n)`` highest
    decision values (at least 1, at most n - 1), ties broken by question order (the earlier
    question is in). Raises UndefinedMetricError for fewer than 2 questions.

    Example: ``seen_like_split([0.1, 0.9, 0.5, 0.2])`` is ``[False, True, False, False]``."""
    d = np.asarray(decision, dtype=np.float64)
    if d.size < 2:
        raise UndefinedMetricError(f"a seen-like share needs at least 2 questions, got {d.size}")
    if not 0 < share < 1:
        raise ValueError(f"share must be in (0, 1), got {share}")
    k = min(max(1, math.ceil(round(share * d.size, 9))), d.size - 1)
    order = np.lexsort((np.arange(d.size), -d))  # highest first; equal values in question order
    mask = np.zeros(d.size, dtype=bool)
    mask[order[:k]] = True
    return mask


def _boundary_ties(decision: np.ndarray, mask: np.ndarray) -> int:
    """Questions whose decision value equals the lowest one inside the group when that value is
    found on both sides of the split (0 otherwise): how many were split by question order."""
    boundary = decision[mask].min()
    if not (decision[~mask] == boundary).any():
        return 0
    return int((decision == boundary).sum())


def group_gap(correct, in_group, *, n_resamples: int = _RESAMPLES, confidence: float = 0.95, seed: int = 0) -> dict:
    """Accuracy inside ``in_group`` (a boolean mask) against outside it.

    Returns ``{"n_group", "n_rest", "accuracy_group", "accuracy_rest", "gap", "gap_ci",
    "accuracy_group_ci", "accuracy_rest_ci"}``: ``gap`` = accuracy_group - accuracy_rest (positive:
    the group is answered better). The CIs resample questions within each group; they are None
    (with ``ci_undefined`` saying why) when a group has a single question. Raises
    UndefinedMetricError when either group is empty.

    Example: ``group_gap([1, 1, 0, 1], [True, True, False, False])`` gives accuracy 1.0 against
    0.5, gap 0.5.
    """
    c = np.asarray(correct, dtype=np.float64)
    m = np.asarray(in_group, dtype=bool)
    if c.shape != m.shape or c.ndim != 1:
        raise ValueError(f"correct and in_group must be 1-D of equal length, got {c.shape} and {m.shape}")
    inside, outside = c[m], c[~m]
    if inside.size == 0 or outside.size == 0:
        raise UndefinedMetricError(f"a gap needs questions on both sides, got {inside.size} in the group and "
                                   f"{outside.size} outside")
    out = {"n_group": int(inside.size), "n_rest": int(outside.size), "accuracy_group": float(inside.mean()),
           "accuracy_rest": float(outside.mean()), "gap": float(inside.mean() - outside.mean())}
    if min(inside.size, outside.size) < 2:
        out.update(gap_ci=None, accuracy_group_ci=None, accuracy_rest_ci=None,
                   ci_undefined=f"bootstrap intervals need at least 2 questions on each side, got {inside.size} and "
                                f"{outside.size}")
        return out
    rng = np.random.default_rng(seed)
    a = inside[_resample(rng, inside.size, n_resamples)].mean(axis=1)
    b = outside[_resample(rng, outside.size, n_resamples)].mean(axis=1)
    out.update(gap_ci=_quantiles(a - b, confidence), accuracy_group_ci=_quantiles(a, confidence),
               accuracy_rest_ci=_quantiles(b, confidence))
    return out


def quarter_gap(decision, correct, *, share: float = SHARE, n_resamples: int = _RESAMPLES, confidence: float = 0.95,
                seed: int = 0) -> dict:
    """Accuracy on the most seen-like ``share`` of questions (:func:`seen_like_split` of the
    decision values, HIGHER = more likely seen) against the rest: :func:`group_gap`'s figures,
    plus ``share`` and ``boundary_ties`` (questions split by order because they tie at the edge).
    Positive ``gap``: the seen-like questions are answered better.

    Example: ``quarter_gap([4, 3, 2, 1], [1, 0, 0, 0])["gap"]`` is 1.0 (the top question is
    right, the three others wrong).
    """
    d, c = _arrays(decision, correct)
    mask = seen_like_split(d, share=share)
    out = group_gap(c, mask, n_resamples=n_resamples, confidence=confidence, seed=seed)
    out.update(share=share, boundary_ties=_boundary_ties(d, mask))
    return out


def _spearman_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman's rho of each row pair (average ranks for ties); NaN where a row is constant."""
    rx, ry = rankdata(x, axis=-1), rankdata(y, axis=-1)
    rx = rx - rx.mean(axis=-1, keepdims=True)
    ry = ry - ry.mean(axis=-1, keepdims=True)
    denom = np.sqrt((rx ** 2).sum(axis=-1) * (ry ** 2).sum(axis=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, (rx * ry).sum(axis=-1) / np.where(denom > 0, denom, 1.0), np.nan)


def rank_correlation(decision, correct, *, n_resamples: int = _RESAMPLES, confidence: float = 0.95,
                     seed: int = 0) -> dict:
    """Spearman's rank correlation between decision value (HIGHER = more likely seen) and
    correctness: ``{"rho", "rho_ci", "n"}``. Positive rho: the more seen-like a question, the more
    often it is answered right. The CI resamples question pairs (resamples where either side is
    constant are dropped; ``n_resamples_used`` says how many were kept).

    Raises UndefinedMetricError with fewer than 3 questions, or when either side is constant (every
    question right, or every one wrong: no rank order to correlate with).

    Example: ``rank_correlation([3, 2, 1], [1, 1, 0])["rho"]`` is 0.866 (ranks 3, 2, 1 against
    2.5, 2.5, 1).
    """
    d, c = _arrays(decision, correct)
    if d.size < 3:
        raise UndefinedMetricError(f"a rank correlation needs at least 3 questions, got {d.size}")
    for name, v in (("the decision values", d), ("correctness", c)):
        if np.all(v == v[0]):
            raise UndefinedMetricError(f"{name} are the same for all {d.size} questions ({v[0]:g}): no rank order to "
                                       "correlate")
    rho = float(_spearman_rows(d, c))
    rng = np.random.default_rng(seed)
    idx = _resample(rng, d.size, n_resamples)
    rows = _spearman_rows(d[idx], c[idx])
    rows = rows[np.isfinite(rows)]
    ci = _quantiles(rows, confidence) if rows.size >= max(10, n_resamples // 2) else None
    out = {"rho": rho, "rho_ci": ci, "n": int(d.size), "n_resamples_used": int(rows.size)}
    if ci is None:
        out["ci_undefined"] = (f"only {rows.size} of {n_resamples} resamples had both sides varying; too few for an "
                               "interval")
    return out


def inflation(decision, correct, base_correct, *, share: float = SHARE, n_resamples: int = _RESAMPLES,
              confidence: float = 0.95, seed: int = 0) -> dict:
    """The estimated inflation: the student's accuracy gap (most seen-like ``share`` minus the rest,
    split by the student's decision values) minus the base model's accuracy gap over the same two
    groups of questions. ``correct`` and ``base_correct`` are the two models' correctness on the
    same questions, in the same order.

    Returns ``{"inflation", "inflation_ci", "student_gap", "base_gap", "overall_points",
    "overall_points_ci", "n_group", "n_rest", "share", "base_accuracy"}``. ``inflation`` > 0: the
    student does better on its seen-like questions by more than the base model does on the same
    questions. ``overall_points`` = inflation x n_group / n: the points of the whole benchmark's
    accuracy that excess accounts for. The CI resamples questions within each group, each with
    both models' correctness (paired).

    Example: ``inflation([4, 3, 2, 1], [1, 0, 0, 0], [1, 1, 0, 0])``: the student's gap is
    1 - 0 = 1.0, the base model's 1 - 1/3 = 0.667, inflation 0.333, overall 0.083.
    """
    d, c = _arrays(decision, correct)
    _, b = _arrays(decision, base_correct)
    mask = seen_like_split(d, share=share)
    student = group_gap(c, mask, n_resamples=n_resamples, confidence=confidence, seed=seed)
    base = group_gap(b, mask, n_resamples=n_resamples, confidence=confidence, seed=seed)
    value = student["gap"] - base["gap"]
    weight = mask.sum() / mask.size
    out = {"inflation": float(value), "student_gap": student["gap"], "base_gap": base["gap"],
           "overall_points": float(value * weight), "n_group": student["n_group"], "n_rest": student["n_rest"],
           "share": share, "base_accuracy": float(b.mean()), "student_gap_ci": student["gap_ci"],
           "base_gap_ci": base["gap_ci"]}
    if "ci_undefined" in student:
        out.update(inflation_ci=None, overall_points_ci=None, ci_undefined=student["ci_undefined"])
        return out
    rng = np.random.default_rng(seed)
    gi, ri = np.flatnonzero(mask), np.flatnonzero(~mask)
    gs, rs = gi[_resample(rng, gi.size, n_resamples)], ri[_resample(rng, ri.size, n_resamples)]
    diffs = (c[gs].mean(axis=1) - c[rs].mean(axis=1)) - (b[gs].mean(axis=1) - b[rs].mean(axis=1))
    out.update(inflation_ci=_quantiles(diffs, confidence), overall_points_ci=_quantiles(diffs * weight, confidence))
    return out


def accuracy_by_bin(decision, correct, *, bins: int = 10, n_resamples: int = _RESAMPLES, confidence: float = 0.95,
                    seed: int = 0) -> list[dict]:
    """Accuracy per bin of the decision value: the questions sorted from least to most seen-like
    (ties by question order) and cut into ``min(bins, n)`` near-equal bins. Bin 1 is the LEAST
    seen-like. Each: ``{"bin", "n", "accuracy", "ci", "decision_min", "decision_max"}`` (``ci``
    None for a single question).

    Example: ``accuracy_by_bin([1, 2, 3, 4], [0, 0, 1, 1], bins=2)`` gives accuracies 0.0, 1.0.
    """
    d, c = _arrays(decision, correct)
    if d.size == 0:
        return []
    order = np.lexsort((np.arange(d.size), d))
    out = []
    for k, part in enumerate(np.array_split(order, min(bins, d.size)), start=1):
        out.append({"bin": k, "n": int(part.size), "accuracy": float(c[part].mean()),
                    "ci": mean_ci(c[part], n_resamples=n_resamples, confidence=confidence, seed=seed + k),
                    "decision_min": float(d[part].min()), "decision_max": float(d[part].max())})
    return out


def _figure(fn, *args, **kwargs) -> dict:
    """``fn``'s figures, or ``{"undefined": reason}`` when the data do not define them."""
    try:
        return fn(*args, **kwargs)
    except UndefinedMetricError as err:
        return {"undefined": str(err)}


def accuracy_figures(run, outcomes, join, *, score: str = "tbd", flagged_ids=None, flagged_by: str = "",
                     excluded_ids=(), member_ids=None, base_outcomes=None, base_join=None, share: float = SHARE,
                     bins: int = 10, n_resamples: int = _RESAMPLES, confidence: float = 0.95, seed: int = 0) -> dict:
    """Every figure of one benchmark, as a JSON-ready dict, over the questions ``join``
    (:func:`lm_eval_tbd.core.outcomes.join_questions` of ``run`` and ``outcomes``) matched.

    ``score``: the score whose decision value (higher = more likely seen) ranks the questions.
    ``flagged_ids``: question ids an audit flagged (``flagged`` compares them with the other
    matched questions, less ``excluded_ids``, those the audit left out); None: no such figure.
    ``member_ids``: question ids known to be seen (default: the run's ``label`` 1 where it has
    labels). ``base_outcomes`` / ``base_join``: the base model's outcomes of the same ordinary
    task, joined with ``run`` the same way; they add ``inflation``.

    Returns ``{"tbd_task", "task", "metric", "score", "samples_file", "match", "n", "accuracy",
    "accuracy_ci", "seen_like", "rank_correlation", "by_bin"}`` and, when given or labelled,
    ``"flagged"``, ``"members"``, ``"inflation"``; a figure the data leave undefined is
    ``{"undefined": reason}``. Non-finite decision bounds of a bin are spelled "-Infinity" etc.
    (:func:`lm_eval_tbd.core.atomic.json_safe`).
    """
    if score not in SCORES:
        raise ValueError(f"unknown score {score!r}; known: {', '.join(SCORES)}")
    if score not in run.score_names():
        raise ValueError(f"score {score!r} was not logged for every question of {run.task}")
    sign = 1.0 if SCORES[score].higher_is_seen else -1.0
    values = run.score_values(score)
    rows = [(run.questions[i], float(sign * values[i]), outcomes.outcomes[j].value) for i, j in join.pairs]
    decision = np.array([r[1] for r in rows])
    correct = np.array([r[2] for r in rows])
    opts = {"n_resamples": n_resamples, "confidence": confidence, "seed": seed}
    out = {
        "tbd_task": run.task, "task": outcomes.task, "metric": outcomes.metric_key, "score": score,
        "samples_file": str(outcomes.samples_file), "match": join.to_json(), "n": int(correct.size),
        "accuracy": float(correct.mean()), "accuracy_ci": mean_ci(correct, **opts), "confidence": confidence,
        "seen_like": _figure(quarter_gap, decision, correct, share=share, **opts),
        "rank_correlation": _figure(rank_correlation, decision, correct, **opts),
        "by_bin": accuracy_by_bin(decision, correct, bins=bins, **opts),
    }
    if flagged_ids is not None:
        flagged, excluded = {str(i) for i in flagged_ids}, {str(i) for i in excluded_ids}
        kept = [k for k, r in enumerate(rows) if r[0].question_id not in excluded]
        mask = np.array([rows[k][0].question_id in flagged for k in kept], dtype=bool)
        if mask.size and (mask.all() or not mask.any()):
            figure = {"undefined": f"{'every' if mask.all() else 'no'} question of the {mask.size} was flagged"}
        else:
            figure = _figure(group_gap, correct[kept], mask, **opts)
        out["flagged"] = {**figure, "flagged_by": flagged_by, "n_flagged": int(mask.sum()),
                          "n_excluded": len(rows) - len(kept)}
    if member_ids is not None or run.labelled:
        members = {str(i) for i in member_ids} if member_ids is not None else None
        mask = np.array([(r[0].question_id in members) if members is not None else r[0].label == 1 for r in rows])
        out["members"] = {**_figure(group_gap, correct, mask, **opts),
                          "source": "member ids given" if members is not None else "labels"}
    if base_outcomes is not None and base_join is not None:
        base_value = {i: base_outcomes.outcomes[j].value for i, j in base_join.pairs}
        both = [k for k, (i, _) in enumerate(join.pairs) if i in base_value]
        base_correct = np.array([base_value[join.pairs[k][0]] for k in both])
        figure = _figure(inflation, decision[both], correct[both], base_correct, share=share, **opts)
        out["inflation"] = {**figure, "base_samples_file": str(base_outcomes.samples_file), "n": len(both),
                            "n_without_base": len(rows) - len(both)}
        out["base_by_bin"] = accuracy_by_bin(decision[both], base_correct, bins=bins, **opts)
    # A bin's decision bounds may be infinite (a mean log-prob of -inf): strict JSON spells them.
    return json_safe(out)


def paired_accuracy(run, paired, **options) -> dict:
    """:func:`accuracy_figures` of ``run`` and its ordinary task as
    :func:`lm_eval_tbd.core.outcomes.pair_run` found and joined it (``paired``), with ``notes``: a
    partial match (with counts), an ordinary task from another lm_eval run, a base model's folder
    without the ordinary task. ``options``: those of :func:`accuracy_figures`."""
    figures = accuracy_figures(run, paired.outcomes, paired.join, base_outcomes=paired.base_outcomes,
                               base_join=paired.base_join, **options)
    notes = []
    if paired.join.partial:
        notes.append(f"partial match: {paired.join.describe()}; the figures cover the {paired.join.matched} matched")
    if paired.other_run:
        notes.append(paired.other_run)
    if paired.base_note:
        notes.append(f"no inflation: {paired.base_note}")
    if paired.outcomes.other_filters and not paired.outcomes.filter_given:
        notes.append(f"{paired.outcomes.task} logs filters {', '.join((paired.outcomes.filter,) + paired.outcomes.other_filters)}; "
                     f"used {paired.outcomes.filter} (TASK:{paired.outcomes.metric},FILTER chooses)")
    figures["notes"] = notes
    return figures


def folder_accuracy(output_path, tbd_task: str, task: str | None = None, *, metric: str | None = None,
                    score: str = "tbd", base_path=None, member_ids=None, seed: int = 0) -> dict:
    """:func:`accuracy_figures` of ``tbd_task`` and the ordinary ``task`` (default: the one that
    pairs with it by name in the TBD run's folder) of the lm-eval output folder ``output_path``;
    with ``base_path``, the base model's output folder, also the inflation. ``member_ids``: the
    questions known to be seen (e.g. those put into the training set), for the true gap.

    Raises :class:`~lm_eval_tbd.core.outcomes.PairingError` when no ordinary task pairs with
    ``tbd_task``, several do, or the questions do not match.

    Example: ``folder_accuracy("out/", "tbd_math500", "minerva_math500", member_ids=leaked)``.
    """
    run = load_run(output_path, tbd_task)
    task = task or find_ordinary_task(run.samples_file.parent, tbd_task)
    if task is None:
        raise PairingError(f"no ordinary task pairs with {tbd_task} in {run.samples_file.parent}; name one")
    paired = pair_run(run, task + (f":{metric}" if metric else ""), base_path=base_path)
    return paired_accuracy(run, paired, score=score, member_ids=member_ids, seed=seed)
