"""lm_eval_tbd.core.openai_format: generation records from OpenAI-style choices (completions and
chat completions), greedy and sampled. Response shapes follow the OpenAI completions / chat
completions APIs; tests/integration/test_api_server.py checks them against a real server."""

from __future__ import annotations

import pytest

from lm_eval_tbd.core.openai_format import (
    MissingLogprobsError,
    record_from_chat_choice,
    record_from_completion_choice,
)
from tests.helpers.openai_responses import WORKED
from tests.helpers.openai_responses import chat_choice as _chat
from tests.helpers.openai_responses import completion_choice as _completion


def test_chat_and_completion_choices_give_the_same_record():
    a = record_from_chat_choice(_chat(WORKED, ["a", "b", "c"]))
    b = record_from_completion_choice(_completion(WORKED, ["a", "b", "c"], finish="stop"))
    for rec in (a, b):
        assert rec.tokens == ["a", "b", "c"] and rec.token_ids is None
        assert rec.logprobs == pytest.approx(WORKED) and rec.finish_reason == "eos" and rec.text == "abc"


def test_vllm_token_id_strings_give_ids():
    rec = record_from_completion_choice(_completion(WORKED, ["token_id:5", "token_id:7", "token_id:2"]))
    assert rec.token_ids == [5, 7, 2] and rec.tokens is None and rec.finish_reason == "length"


def test_length_finish_and_limit():
    assert record_from_chat_choice(_chat(WORKED, finish="length")).finish_reason == "length"
    # finish_reason missing from a log: the request's max_tokens tells them apart
    choice = _chat(WORKED)
    del choice["finish_reason"]
    assert record_from_chat_choice(choice, max_tokens=3).finish_reason == "length"
    assert record_from_chat_choice(choice, max_tokens=10).finish_reason == "eos"
    with pytest.raises(ValueError, match="content_filter"):
        record_from_chat_choice(_chat(WORKED, finish="content_filter"))


def test_missing_logprobs_name_the_option():
    no_lp = {"index": 0, "text": "x", "finish_reason": "length", "logprobs": None}
    with pytest.raises(MissingLogprobsError, match="'logprobs': 1"):
        record_from_completion_choice(no_lp)
    with pytest.raises(MissingLogprobsError, match="'logprobs': true"):
        record_from_chat_choice({"index": 0, "message": {"content": "x"}, "finish_reason": "stop", "logprobs": None})
    with pytest.raises(MissingLogprobsError, match="token 1"):
        record_from_chat_choice(_chat([-0.1, None, -0.2], tops=[-0.1, -0.1, -0.2]))
    with pytest.raises(MissingLogprobsError, match="token 0"):
        record_from_completion_choice(_completion([float("nan")]))


def test_non_greedy_tokens_are_refused():
    with pytest.raises(ValueError, match="not the server's top choice") as err:
        record_from_chat_choice(_chat([-1.2, -0.1], tops=[-0.4, -0.1]))
    # the fix for each server: llama.cpp's default penalty, and vLLM's from the model's generation_config.json
    assert '{"repeat_penalty": 1.0}' in str(err.value) and '{"repetition_penalty": 1.0}' in str(err.value)
    assert "--generation-config vllm" in str(err.value)
    with pytest.raises(ValueError, match="> 0"):
        record_from_chat_choice(_chat([0.5]))


def test_length_finish_short_of_the_limit_is_refused():
    with pytest.raises(ValueError, match="after 3 of 10 tokens"):
        record_from_chat_choice(_chat(WORKED, finish="length"), max_tokens=10)
    assert record_from_chat_choice(_chat(WORKED)).extra["greedy_checked"] is True
    choice = _completion(WORKED)
    choice["logprobs"]["top_logprobs"] = None
    assert record_from_completion_choice(choice).extra["greedy_checked"] is False


def test_sampled_choice_checks():
    from lm_eval_tbd.core.openai_format import record_from_completion_choice

    choice = {"text": "ab", "finish_reason": "length",
              "logprobs": {"tokens": ["a", "b"], "token_logprobs": [-2.0, -0.1],
                           "top_logprobs": [{"a": -2.0, "c": -0.3}, {"b": -0.1}]}}
    # a sampled token below the top-1 is fine when sampling, an error when greedy
    rec = record_from_completion_choice(choice, max_tokens=2, decoding="sample")
    assert rec.decoding == "sample" and rec.extra == {"sample_checked": True}
    with pytest.raises(ValueError, match="not the server's top choice"):
        record_from_completion_choice(choice, max_tokens=2)
    above = {**choice, "logprobs": {**choice["logprobs"], "top_logprobs": [{"c": -2.5}, {"b": -0.1}]}}
    with pytest.raises(ValueError, match="above the reported top-1"):
        record_from_completion_choice(above, max_tokens=2, decoding="sample")
    impossible = {**choice, "logprobs": {"tokens": ["a"], "token_logprobs": [float("-inf")]}}
    with pytest.raises(ValueError, match="probability 0"):
        record_from_completion_choice(impossible, max_tokens=1, decoding="sample")
