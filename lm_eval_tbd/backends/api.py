"""``generate_logprobs`` for lm-eval's OpenAI-compatible API models (``local-completions``,
``local-chat-completions`` and their OpenAI / Azure subclasses): one request per generation
(greedy, or a seeded temperature-1 sample) that asks the server for the log-probability of every
generated token.

The payload comes from the model class's own ``_create_payload`` (so subclasses keep their
quirks, such as OpenAI's ``max_completion_tokens``), then TBD's own fields are set over it:
temperature 0, the scored length, no stop sequences, the log-probability fields. Requests are
retried with lm-eval's policy (``max_retries``, exponential wait) and ``timeout``;
``num_concurrent`` > 1 sends that many at once.

What a server cannot give: the probability of the end-of-sequence token (servers strip it) and
the vocabulary statistics Min-K%++ needs; records from this backend have neither.
"""

from __future__ import annotations

import json
import logging
from concurrent.futures import ThreadPoolExecutor

from tqdm import tqdm

from lm_eval_tbd.backends import check_prompt_fits, refuse_weight_options, scored_length
from lm_eval_tbd.core.openai_format import record_from_chat_choice, record_from_completion_choice
from lm_eval_tbd.core.record import REQUEST_TYPE

# lm-eval's classes are imported in the functions that use them: lm-eval's model modules import
# this one through the patch table (lm_eval_tbd.patches) while they load, so importing them back at
# module level would be circular; requests and tenacity come with the optional lm-eval[api].

log = logging.getLogger(__name__)

__all__ = ["generate_logprobs"]

_LIMIT_KEYS = ("max_tokens", "max_completion_tokens")


def _is_chat(lm) -> bool:
    from lm_eval.models.openai_completions import LocalChatCompletion

    return isinstance(lm, LocalChatCompletion)


def _messages(context) -> list[dict] | None:
    """The chat messages of a chat-templated context, or None for a plain string."""
    from lm_eval.models.api_models import JsonChatStr

    if isinstance(context, JsonChatStr):
        return json.loads(context.prompt)
    if isinstance(context, list):  # tokenizer_backend=remote leaves the chat history as a list
        return context
    return None


def _prompt(lm, context, chat: bool, max_tokens: int, doc: dict | None = None):
    """The prompt to send: messages for chat endpoints, text or token ids for completions."""
    messages = _messages(context)
    if chat:
        return messages if messages is not None else [{"role": "user", "content": context}]
    if messages is not None:
        # A completions endpoint needs the chat rendered with the model's template.
        if getattr(lm, "tokenizer", None) is None or not hasattr(lm.tokenizer, "apply_chat_template"):
            raise ValueError(
                f"{type(lm).__name__}: --apply_chat_template needs the model's chat template to build a completions "
                "prompt: pass tokenizer_backend=huggingface and tokenizer=<path or hub id> in --model_args, or use "
                "--model local-chat-completions"
            )
        context = lm.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    if lm.tokenized_requests:
        ids = lm.tok_encode(context, add_special_tokens=lm.add_bos_token)
        check_prompt_fits(len(ids), max_tokens, lm.max_length, doc=doc)
        return ids
    return context


def _payload(lm, prompt, max_tokens: int, chat: bool, server_args: dict | None = None,
             seed: int | None = None) -> dict:
    """The request body. ``seed`` None means greedy (temperature 0); a seed means one sample at
    temperature 1 with top_p 1 (servers' own truncations, such as llama.cpp's top_k and min_p,
    are switched off through tbd_server_args)."""
    message = prompt if chat else lm.create_message([prompt])
    temperature = 0 if seed is None else 1.0
    gen = {**(server_args or {}), "max_gen_toks": max_tokens, "temperature": temperature, "until": []}
    payload = lm._create_payload(message, generate=True, gen_kwargs=gen, seed=lm._seed, eos=None)
    # TBD's own fields win over whatever the class set (OpenAI's class forces temperature 1 for
    # reasoning models, for one): the decoding, the scored length, no stop sequences, log-probs.
    payload["temperature"] = temperature
    if seed is not None:
        payload.update(top_p=1.0, seed=int(seed))
    for key in _LIMIT_KEYS:
        if key in payload:
            payload[key] = max_tokens
    payload.pop("stop", None)
    payload.update({"logprobs": True, "top_logprobs": 1} if chat else {"logprobs": 1})
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


def _record(lm, response, max_tokens: int, prompt_len: int | None, chat: bool, extra: dict | None = None):
    choices = response.get("choices") if isinstance(response, dict) else None
    if not choices:
        raise ValueError(f"{lm.base_url}: response has no 'choices': {json.dumps(response)[:300]}")
    parse = record_from_chat_choice if chat else record_from_completion_choice
    extra = extra or {}
    decoding = "sample" if extra.get("seed") is not None else "greedy"
    record = parse(choices[0], max_tokens=max_tokens, backend=type(lm).__name__, where=f"response from {lm.base_url}",
                   decoding=decoding)
    if decoding == "sample":
        record.seed, record.sample_index = int(extra["seed"]), extra.get("sample_index")
    if record.n_tokens > max_tokens:
        raise ValueError(f"{lm.base_url}: returned {record.n_tokens} tokens for max_tokens {max_tokens}")
    record.prompt_n_tokens = prompt_len
    return record


def generate_logprobs(self, requests, disable_tqdm: bool = False) -> list[str]:
    """API-model method answering ``generate_logprobs`` requests with ``GenerationRecord`` JSON.

    Only the scored length (``gen_kwargs["max_gen_toks"]``) is generated. Question-side and
    reference-model scores need the weights and are refused here.
    """
    chat = _is_chat(self)
    # Payloads are built here, in one thread (tokenizers are not safe to share across threads);
    # only the HTTP calls run concurrently.
    work = []
    for req in requests:
        context, gen = req.args[0], req.args[1]
        extra = (req.args[2] if len(req.args) > 2 else None) or {}
        refuse_weight_options(gen, type(self).__name__)
        sample = gen.get("decoding", "greedy") == "sample"
        if sample and extra.get("seed") is None:
            raise ValueError("generate_logprobs: sampled decoding needs a seed per request (extra['seed'])")
        # Token-id prompts must fit max_length (refused otherwise); text prompts are the server's business.
        max_tokens = scored_length(gen, self.max_length if self.tokenized_requests else None)
        payload = _payload(self, _prompt(self, context, chat, max_tokens, req.doc), max_tokens, chat, gen.get("server_args"),
                           seed=extra["seed"] if sample else None)
        prompt = payload.get("prompt")
        prompt_len = len(prompt[0]) if isinstance(prompt, list) and prompt and isinstance(prompt[0], list) else None
        work.append((payload, max_tokens, prompt_len, extra if sample else None))

    pbar = tqdm(total=len(work), disable=disable_tqdm, desc=f"Requesting API ({REQUEST_TYPE})")

    def run(item):
        payload, max_tokens, prompt_len, extra = item
        record = _record(self, _post(self, payload), max_tokens, prompt_len, chat, extra)
        pbar.update(1)
        return record

    try:
        workers = max(1, int(self._concurrent))
        if workers == 1:
            records = [run(item) for item in work]
        else:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                records = list(pool.map(run, work))  # map keeps request order
    finally:
        pbar.close()
    unchecked = sum(not (r.extra.get("greedy_checked") or r.extra.get("sample_checked")) for r in records)
    if unchecked:
        log.warning("%s: the server returned no top log-probabilities for %d of %d generations, so the "
                    "decoding could not be verified for them", self.base_url, unchecked, len(records))
    return [r.to_json() for r in records]
