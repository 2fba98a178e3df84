"""lm_eval_tbd.core.record: the generation record's JSON round trip (ids or token strings, decoding
and seeds), its checks, and the shared prefix of two records."""

import math

import pytest

from lm_eval_tbd.core.record import GenerationRecord


def test_record_round_trip_keeps_minus_infinity():
    rec = GenerationRecord(token_ids=[5, 1], logprobs=[-math.inf, -0.25], finish_reason="eos", text="x")
    back = GenerationRecord.from_json(rec.to_json())
    assert back == rec
    # the form lm-eval logs: a list holding the JSON string
    assert GenerationRecord.from_json([rec.to_json()]) == rec


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"token_ids": [1], "logprobs": [], "finish_reason": "eos"}, "1 token ids but 0"),
        ({"token_ids": [1], "logprobs": [float("nan")], "finish_reason": "eos"}, "NaN log-probability"),
        ({"token_ids": [], "logprobs": [], "finish_reason": "stop"}, "finish_reason"),
        ({"token_ids": [], "logprobs": [], "finish_reason": "eos", "ref_question_logprobs": [-1.0]},
         "without question_logprobs"),
        ({"token_ids": [], "logprobs": [], "finish_reason": "eos", "question_logprobs": [-1.0, -2.0],
          "ref_question_logprobs": [-1.0]}, "ref_question_logprobs has 1 entries for 2 question tokens"),
        ({"token_ids": [], "logprobs": [], "finish_reason": "eos", "question_logprobs": [-1.0],
          "ref_question_logprobs": [0.5]}, "ref_question_logprobs"),
    ],
)
def test_record_rejects_inconsistent_content(kwargs, message):
    with pytest.raises(ValueError, match=message):
        GenerationRecord(**kwargs)


def test_record_from_plain_text_is_a_clear_error():
    with pytest.raises(ValueError, match="not a generation record"):
        GenerationRecord.from_json("The answer is 42")
    with pytest.raises(TypeError, match="generate_logprobs"):
        GenerationRecord.from_json(3.5)


def test_record_with_tokens_round_trips():
    rec = GenerationRecord(token_ids=None, tokens=["a", "b"], logprobs=[-0.1, -0.2], finish_reason="length")
    assert GenerationRecord.from_json(rec.to_json()) == rec
    with pytest.raises(ValueError, match="neither token_ids nor tokens"):
        GenerationRecord(token_ids=None, logprobs=[], finish_reason="length")
    with pytest.raises(ValueError, match="2 tokens but 1"):
        GenerationRecord(token_ids=None, tokens=["a", "b"], logprobs=[-0.1], finish_reason="length")


def test_shared_prefix_length_of_ids_and_strings():
    from lm_eval_tbd.core.record import shared_prefix_length

    ids = GenerationRecord(token_ids=[1, 2, 3], logprobs=[-0.1] * 3, finish_reason="length")
    strings = GenerationRecord(token_ids=None, tokens=["a", "b", "x"], logprobs=[-0.1] * 3, finish_reason="length")
    assert shared_prefix_length(ids, strings, decode=lambda i: "abc"[i - 1]) == 2
    assert shared_prefix_length(ids, ids) == 3
    with pytest.raises(ValueError, match="decode"):
        shared_prefix_length(ids, strings)


def test_record_states_its_decoding_and_reads_old_records_as_greedy():
    rec = GenerationRecord(token_ids=[5], logprobs=[-0.5], finish_reason="length", decoding="sample", seed=11,
                           sample_index=1)
    back = GenerationRecord.from_json(rec.to_json())
    assert (back.decoding, back.seed, back.sample_index) == ("sample", 11, 1)
    old = '{"v":3,"token_ids":[5],"logprobs":[-0.5],"finish_reason":"length"}'
    assert GenerationRecord.from_json(old).decoding == "greedy"
    with pytest.raises(ValueError, match="decoding must be one of"):
        GenerationRecord(token_ids=[5], logprobs=[-0.5], finish_reason="length", decoding="beam")


def test_record_with_reference_question_logprobs_round_trips():
    rec = GenerationRecord(token_ids=[1], logprobs=[-0.1], finish_reason="length", question_logprobs=[-1.0, -2.0],
                           ref_question_logprobs=[-1.5, -math.inf])
    assert GenerationRecord.from_json(rec.to_json()) == rec
