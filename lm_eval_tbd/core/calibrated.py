"""The calibrated audit: a benchmark against a clean reference of another source, with what a user
has without labels used to keep the shift between the two sets out of the verdict.

Two controls, both measured on ``benchmarks/shift.py`` (``benchmarks/results/shift.md``):

- **Unscorable questions are left out, counted and listed.** A generation that ends (EOS) before
  ``min_tokens`` tokens gives a TBD over a handful of tokens, which says more about how the model
  answers a kind of question (a bare number) than about whether it saw it. Both sets lose them.
- **The base model's run** of the same questions, where the user has it: each question's score
  becomes the student's decision value minus the base model's on the same question, so what the
  base model already found easy or hard in one set (difficulty, notation, length) cancels.

Without a base run the audit compares the student's own scores and says so in ``uncontrolled``;
the text-only diagnostic (:mod:`lm_eval_tbd.core.text_shift`) then decides whether a verdict can
be given at all (the gate's ``confounded``).
"""

from __future__ import annotations

import numpy as np

from lm_eval_tbd.core.runs import QuestionResult, TaskRun
from lm_eval_tbd.core.scores import decision_value
from lm_eval_tbd.core.stats import UndefinedMetricError, audit

__all__ = ["DEFAULT_MIN_TOKENS", "BaseRunMismatch", "generated_tokens", "short_generations", "paired_base",
           "calibrated_values", "calibrated_audit", "STUDENT_ONLY", "BASE_DIFFERENCE"]

#: Generations that stop before this many tokens are left out of the audit (see the module text).
DEFAULT_MIN_TOKENS = 20
#: the two methods: the student's own decision values, or student minus base per question
STUDENT_ONLY, BASE_DIFFERENCE = "student-only", "base-difference"


class BaseRunMismatch(ValueError):
    """A base-model run that does not hold the student run's questions; the message names both runs."""


def generated_tokens(q: QuestionResult) -> float:
    """Tokens the model generated for ``q`` (the mean over its samples)."""
    records = q.records or (q.record,)
    return float(np.mean([r.n_tokens for r in records]))


def _stopped_early(q: QuestionResult, min_tokens: int) -> bool:
    # Only generations that ended on their own: one cut at the scored length is as long as asked.
    records = q.records or (q.record,)
    return any(r.finish_reason == "eos" for r in records) and generated_tokens(q) < min_tokens


def short_generations(run: TaskRun, *, min_tokens: int = DEFAULT_MIN_TOKENS) -> list[dict]:
    """The questions of ``run`` left out of a calibrated audit: those whose generation ended
    (EOS) before ``min_tokens`` tokens. ``[{"id", "tokens"}, ...]`` in run order; empty with
    ``min_tokens`` 0."""
    return [{"id": q.question_id, "tokens": generated_tokens(q)} for q in run.questions
            if min_tokens > 0 and _stopped_early(q, min_tokens)]


def _describe(run: TaskRun, role: str) -> str:
    return f"{role} run {run.task} ({run.samples_file})"


def paired_base(run: TaskRun, base: TaskRun, *, role: str = "student") -> list[QuestionResult]:
    """The base run's result for each question of ``run``, in ``run``'s order, matched by question
    id and checked to be the same question text.

    Raises :class:`BaseRunMismatch` naming both runs when the base run lacks questions of
    ``run``, holds questions ``run`` does not (another question set), or words one differently.
    """
    by_id = {q.question_id: q for q in base.questions}
    ids = [q.question_id for q in run.questions]
    missing = [i for i in ids if i not in by_id]
    extra = sorted(set(by_id) - set(ids))
    here, there = _describe(run, role), _describe(base, "base")
    if missing:
        raise BaseRunMismatch(f"{there} lacks {len(missing)} of the {len(ids)} questions of {here} (ids "
                              f"{', '.join(missing[:5])}{', ...' if len(missing) > 5 else ''}); score the base model on "
                              "the same task")
    if extra:
        raise BaseRunMismatch(f"{there} and {here} hold different question sets: {len(extra)} questions only in the "
                              f"base run (ids {', '.join(extra[:5])}{', ...' if len(extra) > 5 else ''})")
    for q in run.questions:
        if by_id[q.question_id].question != q.question:
            raise BaseRunMismatch(f"{there} words question {q.question_id!r} differently from {here}")
    return [by_id[i] for i in ids]


def calibrated_values(run: TaskRun, score: str, base: TaskRun | None = None, *, role: str = "student") -> np.ndarray:
    """Per question of ``run``: its decision value of ``score`` (HIGHER = more seen-like), minus the
    base model's on the same question when ``base`` is given (then HIGHER = the student is more
    seen-like on it than the base model was)."""
    values = np.array([decision_value(score, v) for v in run.score_values(score)], dtype=float)
    if base is None:
        return values
    if score not in base.score_names():
        raise ValueError(f"score {score!r} was not logged for {_describe(base, 'base')}")
    twins = paired_base(run, base, role=role)
    return values - np.array([decision_value(score, t.scores[score]) for t in twins], dtype=float)


def calibrated_audit(benchmark: TaskRun, reference: TaskRun, *, score: str = "tbd",
                     base_benchmark: TaskRun | None = None, base_reference: TaskRun | None = None,
                     min_tokens: int = DEFAULT_MIN_TOKENS, fdr: float = 0.05, n_resamples: int = 1000,
                     seed: int = 0) -> dict:
    """``benchmark`` against the clean ``reference`` with the shift controls of this module.

    Questions whose generation ended before ``min_tokens`` tokens are left out of both sets (0:
    none). With ``base_benchmark`` and ``base_reference`` (the base model's runs of the same two
    tasks) each question's value is the student's decision value minus the base model's
    (method ``"base-difference"``); without them the student's own (``"student-only"``).

    Returns :func:`lm_eval_tbd.core.stats.audit`'s figures of the kept questions (``auc`` > 0.5 =
    the benchmark looks MORE SEEN than the reference; its ``auc_ci``; one-sided ``p_value``;
    ``contaminated_fraction`` with CI; BH ``flagged``), plus ``method``, ``score``,
    ``kept_ids`` (benchmark questions in the order of ``p_values``), ``flagged_ids`` (most
    significant first), ``excluded`` (``{"min_tokens", "benchmark": [...], "reference": [...]}``,
    each entry ``{"id", "tokens"}``) and ``uncontrolled``: what this audit could not control for.

    Raises :class:`BaseRunMismatch` when a base run does not hold the same questions, and
    :class:`~lm_eval_tbd.core.stats.UndefinedMetricError` when fewer than 2 questions are left on
    a side.

    Example: a student that is more certain than its base model on every benchmark question and
    on none of the reference's gives ``auc`` 1.0 under ``"base-difference"``.
    """
    if (base_benchmark is None) != (base_reference is None):
        raise ValueError("the base-model calibration needs the base model's runs of both the benchmark and the "
                         "reference task")
    with_base = base_benchmark is not None
    values = {"benchmark": calibrated_values(benchmark, score, base_benchmark, role="benchmark"),
              "reference": calibrated_values(reference, score, base_reference, role="reference")}
    runs = {"benchmark": benchmark, "reference": reference}
    excluded, kept = {"min_tokens": int(min_tokens)}, {}
    for side, run in runs.items():
        short = short_generations(run, min_tokens=min_tokens)
        excluded[side] = short
        dropped = {e["id"] for e in short}
        kept[side] = [i for i, q in enumerate(run.questions) if q.question_id not in dropped]
    for side in runs:
        if len(kept[side]) < 2 and excluded[side]:  # else audit() says what is missing
            raise UndefinedMetricError(
                f"{runs[side].task}: {len(kept[side])} of {len(runs[side].questions)} questions left after leaving out "
                f"{len(excluded[side])} whose generation ended before {min_tokens} tokens; the audit needs at least 2 "
                f"(a lower min_generated_tokens keeps more)")
    b = values["benchmark"][kept["benchmark"]]
    r = values["reference"][kept["reference"]]
    a = audit(b, r, fdr=fdr, n_resamples=n_resamples, seed=seed)
    kept_ids = [benchmark.questions[i].question_id for i in kept["benchmark"]]
    order = sorted((i for i, f in enumerate(a["flagged"]) if f), key=lambda i: (a["bh_adjusted"][i], i))
    uncontrolled = []
    if not with_base:
        uncontrolled.append("how differently the model treats the two question sets whatever it was trained on "
                            "(difficulty, source, format), beyond what the text-only diagnostic catches")
    uncontrolled.append("questions the base model itself saw (pre-training contamination) look clean"
                        if with_base else "a leak shared by the benchmark and the reference")
    return {**a, "method": BASE_DIFFERENCE if with_base else STUDENT_ONLY, "score": score, "kept_ids": kept_ids,
            "kept_index": kept["benchmark"], "flagged_ids": [kept_ids[i] for i in order], "excluded": excluded,
            "uncontrolled": uncontrolled}
