"""``generate_logprobs`` for lm-eval's OpenAI-compatible API models (``local-completions``,
``local-chat-completions`` and their OpenAI / Azure subclasses): one greedy request per question
that asks the server for the log-probability of every generated token.

The payload comes from the model class's own ``_create_payload`` (so subclasses keep their
quirks), with temperature 0, ``max_tokens`` = the scored length, no stop sequences, and the
log-probability fields added. Requests are retried with lm-eval's policy (``max_retries``,
exponential wait) and ``timeout``; ``num_concurrent`` > 1 sends that many at once.

What a server cannot give: the probability of the end-of-sequence token (servers strip it) and
the vocabulary statistics Min-K%++ needs; records from this backend have neither.
"""

from __future__ import annotations

import json
import logging
from concurrent.futures import ThreadPoolExecutor

from tqdm import tqdm

from lm_eval_tbd.openai_format import record_from_chat_choice, record_from_completion_choice
from lm_eval_tbd.record import REQUEST_TYPE

log = logging.getLogger(__name__)

__all__ = ["generate_logprobs", "patch_module"]


def _is_chat(lm) -> bool:
    from lm_eval.models.openai_completions import LocalChatCompletion

    return isinstance(lm, LocalChatCompletion)


def _prompt(lm, context, chat: bool, max_tokens: int):
    """The prompt to send: messages for chat endpoints, text or token ids for completions."""
    from lm_eval.models.api_models import JsonChatStr

    if chat:
        if isinstance(context, JsonChatStr):
            return json.loads(context.prompt)
        return [{"role": "user", "content": context}]
    if isinstance(context, JsonChatStr):
        # --apply_chat_template without a local tokenizer leaves the chat as messages; a
        # completions endpoint needs them rendered with the model's template.
        tokenizer = lm.tokenizer if lm.tokenizer_backend == "huggingface" else None
        if tokenizer is None or not hasattr(tokenizer, "apply_chat_template"):
            raise ValueError(
                f"{type(lm).__name__}: --apply_chat_template needs the model's chat template to build a completions "
                "prompt: pass tokenizer_backend=huggingface and tokenizer=<path or hub id> in --model_args, or use "
                "--model local-chat-completions"
            )
        context = tokenizer.apply_chat_template(json.loads(context.prompt), tokenize=False, add_generation_prompt=True)
    if lm.tokenized_requests:
        ids = lm.tok_encode(context, add_special_tokens=lm.add_bos_token)
        room = lm.max_length - max_tokens
        if room < 1:
            raise ValueError(f"tbd_max_tokens {max_tokens} leaves no room for the prompt in max_length "
                             f"{lm.max_length + 1}; raise max_length in --model_args")
        if len(ids) > room:
            log.warning("prompt of %d tokens left-truncated to %d (max_length - tbd_max_tokens)", len(ids), room)
        return ids[-room:]
    return context


def _payload(lm, prompt, max_tokens: int, chat: bool, server_args: dict | None = None) -> dict:
    # OpenAI's neutral sampling settings, then the user's server-specific extras.
    gen = {"max_gen_toks": max_tokens, "temperature": 0, "until": [], "top_p": 1, "frequency_penalty": 0,
           "presence_penalty": 0, **(server_args or {})}
    if chat:
        gen.update(logprobs=True, top_logprobs=1)
    else:
        gen.update(logprobs=1)
    message = prompt if chat else lm.create_message([prompt])
    payload = lm._create_payload(message, generate=True, gen_kwargs=gen, seed=lm._seed, eos=None)
    if not payload.get("stop"):
        payload.pop("stop", None)  # no stop sequences: generation ends at EOS or max_tokens
    return payload


def _post(lm, payload: dict) -> dict:
    import requests
    from tenacity import retry, stop_after_attempt, wait_exponential

    @retry(stop=stop_after_attempt(lm.max_retries), wait=wait_exponential(multiplier=0.5, min=1, max=10), reraise=True)
    def call() -> dict:
        response = requests.post(lm.base_url, json=payload, headers=lm.header, verify=lm.verify_certificate,
                                 timeout=lm.timeout)
        if not response.ok:
            log.warning("API request failed (%s): %s. Retrying...", response.status_code, response.text[:500])
        response.raise_for_status()
        return response.json()

    return call()


def _one(lm, context, max_tokens: int, server_args: dict | None, *, chat: bool) -> str:
    payload = _payload(lm, _prompt(lm, context, chat, max_tokens), max_tokens, chat, server_args)
    prompt = payload.get("prompt")
    prompt_len = len(prompt[0]) if isinstance(prompt, list) and prompt and isinstance(prompt[0], list) else None
    response = _post(lm, payload)
    choices = response.get("choices") if isinstance(response, dict) else None
    if not choices:
        raise ValueError(f"{lm.base_url}: response has no 'choices': {json.dumps(response)[:300]}")
    parse = record_from_chat_choice if chat else record_from_completion_choice
    record = parse(choices[0], max_tokens=max_tokens, backend=type(lm).__name__, where=f"response from {lm.base_url}")
    if record.n_tokens > max_tokens:
        raise ValueError(f"{lm.base_url}: returned {record.n_tokens} tokens for max_tokens {max_tokens}")
    record.prompt_n_tokens = prompt_len
    return record.to_json()


def generate_logprobs(self, requests, disable_tqdm: bool = False) -> list[str]:
    """API-model method answering ``generate_logprobs`` requests with ``GenerationRecord`` JSON.

    Only the scored length (``gen_kwargs["max_gen_toks"]``) is generated. Question-side and
    reference-model scores need the weights and are refused here.
    """
    work = []
    for req in requests:
        context, gen = req.args[0], req.args[1]
        for option in ("input_scores", "ref_model"):
            if gen.get(option):
                raise ValueError(f"tbd_{option} needs the model's weights and is not available with "
                                 f"{type(self).__name__}; use --model hf or vllm for it")
        max_tokens = int(gen["max_gen_toks"])
        if max_tokens < 1:
            raise ValueError(f"generate_logprobs: max_gen_toks must be >= 1, got {max_tokens}")
        work.append((context, max_tokens, gen.get("server_args")))
    chat = _is_chat(self)
    pbar = tqdm(total=len(work), disable=disable_tqdm, desc=f"Requesting API ({REQUEST_TYPE})")

    def run(item):
        out = _one(self, *item, chat=chat)
        pbar.update(1)
        return out

    workers = max(1, int(self._concurrent))
    if workers == 1:
        results = [run(item) for item in work]
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(run, work))  # map keeps request order
    pbar.close()
    return results


def patch_module(module) -> None:
    """Add ``generate_logprobs`` to ``lm_eval.models.api_models.TemplateAPI`` (so to every
    OpenAI-compatible model class)."""
    if getattr(module.TemplateAPI, REQUEST_TYPE, None) is not generate_logprobs:
        setattr(module.TemplateAPI, REQUEST_TYPE, generate_logprobs)
