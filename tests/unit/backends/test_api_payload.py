"""What the OpenAI-compatible backend sends, built by lm-eval's real model classes (no server
needed to build a payload), and which lm-eval API models answer the request type."""

from __future__ import annotations

import pytest

from lm_eval_tbd import patches
from lm_eval_tbd.backends.api import _payload, _prompt, generate_logprobs
from lm_eval_tbd.core.record import REQUEST_TYPE

patches.install()


@pytest.fixture
def completions():
    from lm_eval.models.openai_completions import LocalCompletionsAPI

    return LocalCompletionsAPI(base_url="http://127.0.0.1:9/v1/completions", model="m", tokenizer_backend=None)


def test_completions_payload(completions):
    prompt = _prompt(completions, "Q?", chat=False, max_tokens=300)
    payload = _payload(completions, prompt, 300, chat=False, server_args={"repeat_penalty": 1.0})
    assert payload["prompt"] == "Q?" and payload["max_tokens"] == 300 and payload["temperature"] == 0
    assert payload["logprobs"] == 1 and "stop" not in payload and payload["repeat_penalty"] == 1.0


def test_openai_chat_payload_stays_greedy():
    """lm-eval's OpenAI chat class forces temperature 1 for reasoning-model names and renames the
    length field; TBD's own fields are set over it."""
    from lm_eval.models.openai_completions import OpenAIChatCompletion

    lm = OpenAIChatCompletion(model="gpt-5-mini")
    messages = _prompt(lm, "Q?", chat=True, max_tokens=300)
    assert messages == [{"role": "user", "content": "Q?"}]
    payload = _payload(lm, messages, 300, chat=True)
    assert payload["temperature"] == 0 and payload["max_completion_tokens"] == 300 and "max_tokens" not in payload
    assert payload["logprobs"] is True and payload["top_logprobs"] == 1 and "stop" not in payload


def test_only_openai_compatible_models_answer_the_request():
    from lm_eval.api.model import LM
    from lm_eval.models.api_models import TemplateAPI
    from lm_eval.models.openai_completions import LocalChatCompletion, LocalCompletionsAPI

    assert LocalCompletionsAPI.generate_logprobs is generate_logprobs
    assert LocalChatCompletion.generate_logprobs is generate_logprobs
    # Other API models (Anthropic, LiteLLM, SGLang) inherit TemplateAPI and get the refusal.
    assert TemplateAPI.generate_logprobs is LM.generate_logprobs
    with pytest.raises(NotImplementedError, match="Supported --model values"):
        getattr(LM, REQUEST_TYPE)(object(), [])


def test_sampled_payload_is_temperature_one_with_its_seed(completions):
    prompt = _prompt(completions, "Q?", chat=False, max_tokens=300)
    payload = _payload(completions, prompt, 300, chat=False, server_args={"top_k": 0, "min_p": 0.0}, seed=77)
    assert payload["temperature"] == 1.0 and payload["top_p"] == 1.0 and payload["seed"] == 77
    assert payload["top_k"] == 0 and payload["min_p"] == 0.0 and payload["max_tokens"] == 300 and "stop" not in payload
