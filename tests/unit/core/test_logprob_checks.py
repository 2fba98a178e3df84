"""One check of log-probabilities, with one tolerance, for every way a record is made."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lm_eval_tbd.backends.vllm import record_from_vllm
from lm_eval_tbd.core.logs import record_from_logged
from lm_eval_tbd.core.openai_format import record_from_completion_choice
from lm_eval_tbd.core.record import LOGPROB_TOLERANCE, GenerationRecord, check_logprobs
from lm_eval_tbd.core.scores import mean_logprob


def test_hand_values():
    assert check_logprobs([-0.5, 3e-5]).tolist() == [-0.5, 0.0]
    assert check_logprobs(np.array([-1.0, -math.inf], dtype=np.float32)).tolist() == [-1.0, -math.inf]
    assert check_logprobs([]).tolist() == []
    with pytest.raises(ValueError, match=r"where: log-probability > 0 at token position\(s\) \[1\]"):
        check_logprobs([-0.1, 2e-4], where="where")
    with pytest.raises(ValueError, match=r"NaN log-probability at token position\(s\) \[0\]"):
        check_logprobs([float("nan")])
    with pytest.raises(ValueError, match=r"non-numeric .* \[1\] \(first: True\)"):
        check_logprobs([-0.1, True])
    with pytest.raises(ValueError, match=r"non-numeric .* \[0\] \(first: None\)"):
        check_logprobs([None])
    with pytest.raises(ValueError, match="1-D"):
        check_logprobs([[-0.1]])
    with pytest.raises(ValueError, match="> 0"):
        check_logprobs([math.inf])


def _record(lp: float) -> GenerationRecord:
    return GenerationRecord(token_ids=[1], logprobs=[lp], finish_reason="length")


def _vllm(lp: float) -> GenerationRecord:
    return record_from_vllm([1], [{1: lp}], "length", max_tokens=1)


def _server(lp: float) -> GenerationRecord:
    choice = {"index": 0, "text": "a", "finish_reason": "length",
              "logprobs": {"tokens": ["a"], "token_logprobs": [lp], "top_logprobs": [{"a": lp}]}}
    return record_from_completion_choice(choice, max_tokens=1)


def _logged(lp: float) -> GenerationRecord:
    return record_from_logged({"id": "q", "logprobs": [lp]})


def _scores(lp: float):
    return [mean_logprob([lp])]  # every score reads log-probs through record.check_logprobs


@pytest.mark.parametrize("make", [_record, _vllm, _server, _logged, _scores])
def test_every_entry_point_has_the_same_tolerance(make):
    below, above = LOGPROB_TOLERANCE / 2, LOGPROB_TOLERANCE * 2
    made = make(below)
    values = made.logprobs if isinstance(made, GenerationRecord) else list(made)
    assert values == [0.0]  # a rounding error of a certain token reads as certainty
    with pytest.raises(ValueError, match="> 0"):
        make(above)
    with pytest.raises(ValueError, match="(?i)nan"):  # a server's NaN is a missing log-prob
        make(float("nan"))


def test_vllm_no_longer_clips_positive_values_silently():
    # It used to turn any positive value into 0 (certainty): a logit or a probability handed
    # over by mistake would have scored as the most seen-like TBD.
    with pytest.raises(ValueError, match="vLLM log-probs: log-probability > 0"):
        _vllm(0.7)


def test_record_checks_every_log_probability_field():
    for name in ("question_logprobs", "ref_logprobs"):
        with pytest.raises(ValueError, match=f"generation record: {name}: log-probability > 0"):
            GenerationRecord(token_ids=[1], logprobs=[-0.1], finish_reason="eos", **{name: [0.5]})
    rec = GenerationRecord(token_ids=[1], logprobs=[-0.1], ref_logprobs=[5e-5], finish_reason="eos")
    assert rec.ref_logprobs == [0.0]
    assert GenerationRecord.from_json(rec.to_json()) == rec
