"""Synthetic labelled runs (lm_eval_tbd.core.runs.TaskRun) with reference log-probs, for the tests
of the combined detector: in lm_eval_tbd.core.combine, through the CLI and through the gate."""

import numpy as np

from lm_eval_tbd.core.record import GenerationRecord
from lm_eval_tbd.core.runs import QuestionResult, TaskRun
from lm_eval_tbd.core.scores import TBDParams, score_record

__all__ = ["make_run"]


def make_run(n=40, seed=0, separation=1.0):
    """Members' generated tokens are more probable under the student than under the reference."""
    rng = np.random.default_rng(seed)
    qs = []
    for i in range(n):
        label = i % 2
        p = np.clip(rng.uniform(0.3, 0.95, 12) + label * 0.04 * separation, 0.01, 0.999)
        q = np.clip(p - label * 0.2 * separation + rng.normal(0, 0.05, 12), 0.01, 0.999)
        rec = GenerationRecord(token_ids=list(range(12)), logprobs=np.log(p).tolist(), finish_reason="length",
                               ref_logprobs=np.log(q).tolist())
        scores = score_record(rec, TBDParams())
        qs.append(QuestionResult(i, f"q{i}", f"Q{i}", label, scores["tbd"], rec, scores))
    return TaskRun("calibration", None, tuple(qs))
