"""Generation records from OpenAI-style responses: the legacy completions API and chat completions.

Used both by the ``local-completions`` / ``local-chat-completions`` backends (the response of one
greedy request) and by ``lm-eval-tbd score`` (responses a user logged from any server or closed
API, re-scored without re-running generation). Pure functions over the parsed JSON: no harness,
no network.

Shapes read (one ``choice`` of ``response["choices"]``):

- completions: ``{"text", "finish_reason", "logprobs": {"tokens": [...], "token_logprobs": [...],
  "top_logprobs": [{token: logprob}, ...]}}``; vLLM's ``return_tokens_as_token_ids`` spells tokens
  ``"token_id:123"``, which gives the ids too.
- chat completions: ``{"message": {"content"}, "finish_reason", "logprobs": {"content":
  [{"token", "logprob", "top_logprobs": [{"token", "logprob"}]}]}}``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from lm_eval_tbd.core.record import GREEDY_TOLERANCE, GenerationRecord, check_logprobs

__all__ = ["MissingLogprobsError", "record_from_choice", "record_from_completion_choice", "record_from_chat_choice"]

# finish_reason values meaning "the model stopped by itself" (EOS or a stop sequence; TBD
# requests send no stop sequences, so it is the end-of-sequence token).
_STOPPED = ("stop", "eos", "eos_token", "end_turn", "stop_sequence")


class MissingLogprobsError(ValueError):
    """A response carries no per-token log-probabilities for its generated tokens."""


def _finish(choice: Mapping, n_tokens: int, max_tokens: int | None, where: str) -> str:
    reason = choice.get("finish_reason")
    if reason in _STOPPED:
        return "eos"
    if reason == "length" or (max_tokens is not None and n_tokens >= max_tokens):
        if max_tokens is not None and n_tokens < max_tokens:
            raise ValueError(f"{where}: generation stopped at the length limit after {n_tokens} of {max_tokens} "
                             "tokens (the model's context is full, or hidden reasoning tokens used the budget); "
                             "its score would cover fewer tokens than asked")
        return "length"
    if reason is None:
        # Logged responses sometimes drop the field; without it we cannot tell, so trust the length.
        return "length" if max_tokens is None else "eos"
    raise ValueError(f"{where}: finish_reason {reason!r} is neither a stop nor the length limit; "
                     "the generation was cut short (content filter, error) and cannot be scored")


def _present_logprobs(values: Sequence, where: str) -> list:
    """The server's log-probs, refusing absent ones with :class:`MissingLogprobsError` (the server
    was not asked for them, or dropped some), then checked as every record's are."""
    for i, v in enumerate(values):
        # bool is an int to Python: a JSON false would pass as log-probability 0 (certainty).
        if v is None or isinstance(v, bool) or not isinstance(v, (int, float)) or math.isnan(v):
            raise MissingLogprobsError(f"{where}: generated token {i} has log-probability {v!r}")
    return check_logprobs(values, where=where).tolist()


def _check_sampled(logprobs: list[float], top: Sequence[float | None], where: str) -> bool:
    """A sampled token must have non-zero probability and cannot beat the reported top-1 (both
    come from one distribution). True when every token had a top-1 to compare with. Whether the
    server's log-probs are of the raw distribution (before its own temperature or truncation) is
    the server's convention and cannot be seen from the response."""
    for i, lp in enumerate(logprobs):
        if lp == float("-inf"):
            raise ValueError(f"{where}: sampled token {i} has probability 0 under the reported log-probs; "
                             "they are not those of the distribution it was drawn from")
    if len(top) != len(logprobs):
        return False
    for i, (lp, best) in enumerate(zip(logprobs, top, strict=True)):
        if best is not None and lp > best + GREEDY_TOLERANCE:
            raise ValueError(f"{where}: sampled token {i} (log-prob {lp:.4f}) is above the reported top-1 "
                             f"({best:.4f}); the log-probs are inconsistent")
    return all(best is not None for best in top)


def _check_decoding(decoding: str, logprobs: list[float], top: Sequence[float | None], where: str) -> dict:
    if decoding == "greedy":
        return {"greedy_checked": _check_greedy(logprobs, top, where)}
    if decoding == "sample":
        return {"sample_checked": _check_sampled(logprobs, top, where)}
    raise ValueError(f"{where}: unknown decoding {decoding!r}")


def _check_greedy(logprobs: list[float], top: Sequence[float | None], where: str) -> bool:
    """Raise if a token falls below the reported top-1; True when every token could be checked."""
    if len(top) != len(logprobs):
        return False
    for i, (lp, best) in enumerate(zip(logprobs, top, strict=True)):
        if best is not None and lp < best - GREEDY_TOLERANCE:
            raise ValueError(
                f"{where}: generated token {i} (log-prob {lp:.4f}) is not the server's top choice "
                f"(log-prob {best:.4f}); the server did not decode greedily. TBD needs temperature 0 and "
                "no repetition penalty. llama.cpp servers apply repeat_penalty 1.1 unless asked not to: pass "
                "--metadata '{\"tbd_server_args\": {\"repeat_penalty\": 1.0}}'. vLLM servers apply the "
                "model's generation_config.json defaults (repetition_penalty among them) unless started with "
                "--generation-config vllm: pass --metadata '{\"tbd_server_args\": {\"repetition_penalty\": 1.0}}'."
            )
    return all(best is not None for best in top)


def _token_ids(tokens: list[str]) -> list[int] | None:
    if tokens and all(isinstance(t, str) and t.startswith("token_id:") for t in tokens):
        return [int(t.split(":", 1)[1]) for t in tokens]
    return None


def record_from_completion_choice(choice: Mapping, *, max_tokens: int | None = None, backend: str = "openai-completions",
                                  where: str = "completions response", decoding: str = "greedy") -> GenerationRecord:
    """The record of one legacy-completions ``choice`` (requested with ``logprobs >= 0``).

    ``max_tokens`` is the generation limit the request used (to tell a length finish from a
    stop, and a full-length generation from one cut short). Raises :class:`MissingLogprobsError`
    when the choice has no token log-probabilities and ``ValueError`` when decoding was visibly
    not greedy (sampled token below the reported top-1). ``extra["greedy_checked"]`` says whether
    top-1 log-probs came with every token, so that greedy decoding could be verified.
    ``decoding="sample"`` (a temperature-1 sample) checks instead that no token has probability
    0 or beats the reported top-1 (``extra["sample_checked"]``).
    """
    lp = choice.get("logprobs")
    if not isinstance(lp, Mapping) or lp.get("token_logprobs") is None:
        raise MissingLogprobsError(
            f"{where}: no 'logprobs.token_logprobs' for the generated tokens. TBD needs the server to return "
            "per-token log-probabilities (the request sets 'logprobs': 1); use a server that supports it "
            "(vLLM, llama.cpp / llama-cpp-python, TGI) or enable it there (vLLM: --max-logprobs >= 1)."
        )
    tokens = [str(t) for t in lp.get("tokens") or []]
    logprobs = _present_logprobs(lp["token_logprobs"], where)
    if tokens and len(tokens) != len(logprobs):
        raise ValueError(f"{where}: {len(tokens)} tokens but {len(logprobs)} token_logprobs")
    tops = lp.get("top_logprobs") or []
    tops = [max(t.values()) if isinstance(t, Mapping) and t else None for t in tops]
    return _record(choice, tokens, logprobs, tops, choice.get("text") or "", max_tokens=max_tokens, backend=backend,
                   where=where, decoding=decoding)


def record_from_chat_choice(choice: Mapping, *, max_tokens: int | None = None, backend: str = "openai-chat-completions",
                            where: str = "chat completions response", decoding: str = "greedy") -> GenerationRecord:
    """The record of one chat-completions ``choice`` (requested with ``"logprobs": true``).

    Same conventions and errors as :func:`record_from_completion_choice`.
    """
    lp = choice.get("logprobs")
    content = lp.get("content") if isinstance(lp, Mapping) else None
    if content is None:
        raise MissingLogprobsError(
            f"{where}: no 'logprobs.content' for the generated tokens. TBD needs per-token log-probabilities: "
            "the request sets 'logprobs': true and 'top_logprobs': 1; use a model and server that return them."
        )
    tokens = [str(entry.get("token", "")) for entry in content]
    logprobs = _present_logprobs([entry.get("logprob") for entry in content], where)
    tops = [max((t.get("logprob") for t in entry.get("top_logprobs") or [] if t.get("logprob") is not None), default=None)
            for entry in content]
    message = choice.get("message") or {}
    return _record(choice, tokens, logprobs, tops, message.get("content") or "", max_tokens=max_tokens,
                   backend=backend, where=where, decoding=decoding)


def _record(choice: Mapping, tokens: list, logprobs: list[float], tops: list, text: str, *, max_tokens: int | None,
            backend: str, where: str, decoding: str) -> GenerationRecord:
    """The record of a choice's tokens, log-probs and each token's row maximum (``tops``): the
    decoding checked, ids when the tokens spell them (else the token strings, "" when the server
    gave none)."""
    checked = _check_decoding(decoding, logprobs, tops, where)
    ids = _token_ids(tokens)
    return GenerationRecord(
        token_ids=ids,
        tokens=None if ids is not None else (tokens or [""] * len(logprobs)),
        logprobs=logprobs,
        finish_reason=_finish(choice, len(logprobs), max_tokens, where),
        text=text,
        backend=backend,
        decoding=decoding,
        extra=checked,
    )


def record_from_choice(choice: Mapping, **kwargs) -> GenerationRecord:
    """Either kind of choice, told apart by its shape (``message`` means chat)."""
    if "message" in choice or isinstance(choice.get("logprobs"), Mapping) and "content" in choice["logprobs"]:
        return record_from_chat_choice(choice, **kwargs)
    return record_from_completion_choice(choice, **kwargs)
