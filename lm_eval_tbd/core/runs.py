"""The run model: one question's outcome (:class:`QuestionResult`) and one task's run
(:class:`TaskRun`), re-scorable under other TBD parameters without the model.

Reading them from lm-eval's output folders is :mod:`lm_eval_tbd.core.samples`' job.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from lm_eval_tbd.core.record import GenerationRecord
from lm_eval_tbd.core.scores import SCORES, TBDParams, mean_scores, score_record

__all__ = ["QuestionResult", "TaskRun"]


@dataclass(frozen=True)
class QuestionResult:
    """One question's outcome. ``tbd``: LOWER = more likely seen.

    ``record`` is the (first) generation; with sampled decoding ``records`` holds every sample
    and ``sample_scores`` each sample's scores, and ``tbd`` / ``scores`` are means over them."""

    doc_id: int
    question_id: str
    question: str
    label: int | None
    tbd: float
    record: GenerationRecord
    # every score logged for this question (see lm_eval_tbd.core.scores.SCORES); empty for none
    scores: dict = field(default_factory=dict)
    records: tuple = ()
    sample_scores: tuple = field(default=(), compare=False)

    def spread(self, name: str = "tbd") -> float:
        """Population standard deviation of score ``name`` across this question's samples (0.0
        for a single generation)."""
        values = [s[name] for s in self.sample_scores if name in s]
        return statistics.pstdev(values) if len(values) > 1 else 0.0


@dataclass(frozen=True)
class TaskRun:
    task: str
    samples_file: Path
    questions: tuple[QuestionResult, ...]
    # The TBD parameters the scores were recomputed with here (rescore, first_sample,
    # with_reference_questions); None: the scores are those the run logged.
    params: TBDParams | None = None

    @property
    def labelled(self) -> bool:
        return any(q.label is not None for q in self.questions)

    def tbd_values(self) -> np.ndarray:
        """Every question's TBD, in question order (LOWER = more likely seen); every score of one
        question is its ``scores``, one score of every question :meth:`score_values`."""
        return np.array([q.tbd for q in self.questions], dtype=float)

    def rescore(self, params: TBDParams) -> TaskRun:
        """The same run with TBD recomputed from the logged log-probabilities under ``params``."""
        qs = []
        for q in self.questions:
            per_sample = tuple(score_record(r, params, question=q.question) for r in (q.records or (q.record,)))
            scores = mean_scores(list(per_sample))
            qs.append(QuestionResult(q.doc_id, q.question_id, q.question, q.label, scores["tbd"], q.record, scores,
                                     q.records, per_sample))
        return TaskRun(self.task, self.samples_file, tuple(qs), params)

    def first_sample(self, params: TBDParams) -> TaskRun:
        """The run with each question reduced to its first generation, scored under ``params``
        (for sampled runs: the k = 1 figure)."""
        qs = []
        for q in self.questions:
            scores = score_record(q.record, params, question=q.question)
            qs.append(QuestionResult(q.doc_id, q.question_id, q.question, q.label, scores["tbd"], q.record, scores,
                                     (q.record,), (scores,)))
        return TaskRun(self.task, self.samples_file, tuple(qs), params)

    def with_reference_questions(self, reference: TaskRun, params: TBDParams) -> TaskRun:
        """The run with every record's ``ref_question_logprobs`` taken from ``reference``: a run of
        the reference model (e.g. the base before distillation) over the same questions and
        prompts, with input scores on. Then scored under ``params``, so the ``q_ref_*`` scores
        exist for runs made without ``tbd_ref_model``. Records that already hold reference
        question log-probs keep them.

        Raises ValueError naming the question when ``reference`` lacks it (by id), words it
        differently, has no question log-probs for it, or tokenised it to another number of
        question tokens.
        """
        by_id = {q.question_id: q for q in reference.questions}
        qs = []
        for q in self.questions:
            where = f"{self.task}: question {q.question_id!r}"
            twin = by_id.get(q.question_id)
            if twin is not None and twin.question != q.question:
                raise ValueError(f"{where}: the reference run {reference.task} words it differently")
            ref = twin.record if twin is not None else None
            if ref is None or ref.question_logprobs is None:
                raise ValueError(f"{where}: the reference run {reference.task} has no question log-probs for it")
            records = []
            for r in q.records or (q.record,):
                if r.ref_question_logprobs is None:
                    if r.question_logprobs is None or len(r.question_logprobs) != len(ref.question_logprobs):
                        raise ValueError(f"{where}: {len(r.question_logprobs or [])} question tokens, but "
                                         f"{len(ref.question_logprobs)} in the reference run (another prompt?)")
                    r = replace(r, ref_question_logprobs=list(ref.question_logprobs))
                records.append(r)
            qs.append(replace(q, record=records[0], records=tuple(records) if q.records else ()))
        return TaskRun(self.task, self.samples_file, tuple(qs)).rescore(params)

    def zero_tbd_note(self) -> str | None:
        """Why TBD cannot rank this run's questions, when every question that generated tokens
        scores TBD exactly 0 (no generated token has a probability below tau, or every
        ``(tau - p) ** alpha`` underflows to 0, as with tau 1e-300 or alpha 1e300); else None."""
        scored = [q for q in self.questions if q.record.n_tokens > 0]
        if not scored or any(q.tbd != 0.0 for q in scored):
            return None
        under = f" under tau {self.params.tau:g}, alpha {self.params.alpha:g}" if self.params is not None else ""
        return (f"{self.task}: all {len(scored)} questions that generated tokens score TBD 0{under}, so TBD cannot "
                "rank them (no generated token has a probability below tau, or (tau - p) ** alpha underflows to 0); "
                "0 would read as the most seen-like score")

    def score_names(self) -> list[str]:
        """Scores every question has (in SCORES order), e.g. for a comparison table."""
        return [n for n in SCORES if all(n in q.scores for q in self.questions)]

    def score_values(self, name: str) -> np.ndarray:
        """Score ``name`` of every question, in question order, in the score's own direction."""
        return np.array([q.scores[name] for q in self.questions], dtype=float)
