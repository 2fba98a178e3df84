"""benchmarks._agreement: one question's two records compared, hand-computed."""

import pytest

from benchmarks._agreement import agreement, compare
from lm_eval_tbd.core.record import GenerationRecord


def record(ids, lps, **fields):
    return GenerationRecord(token_ids=ids, logprobs=lps, finish_reason="length", **fields)


def test_weight_fields_are_compared_on_the_common_prefix_and_the_question():
    a = record([5, 6, 7], [-0.1, -0.2, -0.3], vocab_logp_mean=[-1.0, -2.0, -3.0], ref_logprobs=[-0.5, -0.5, -0.5],
               question_logprobs=[-1.0, -2.0])
    b = record([5, 6, 9], [-0.1, -0.25, -0.9], vocab_logp_mean=[-1.0, -2.5, -9.0], ref_logprobs=[-0.5, -0.4, -7.0],
               question_logprobs=[-1.5, -2.0])
    row = compare(a, b, max_tokens=3)
    assert row["common_prefix"] == 2  # the third tokens differ: their values are not compared
    assert row["max_abs_dlogp"] == pytest.approx(0.05)
    assert row["max_abs_d_vocab_logp_mean"] == pytest.approx(0.5)
    assert row["max_abs_d_ref_logprobs"] == pytest.approx(0.1)
    assert row["max_abs_d_question_logprobs"] == pytest.approx(0.5)
    assert "max_abs_d_vocab_logp_std" not in row  # neither record holds it
    summary = agreement({"q1": row, "q2": compare(a, a, max_tokens=3)})
    assert summary["max_abs_d_vocab_logp_mean"] == pytest.approx(0.5) and summary["identical_generations"] == 1


def test_question_fields_of_other_lengths_are_refused():
    a = record([5], [-0.1], question_logprobs=[-1.0, -2.0])
    b = record([5], [-0.1], question_logprobs=[-1.0])
    with pytest.raises(ValueError, match="question_logprobs: 2 question tokens"):
        compare(a, b)
