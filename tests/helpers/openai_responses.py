"""OpenAI-style choices (completions and chat completions, with log-probs) and JSONL files of
logged generations, as the tests of lm_eval_tbd.core.logs, lm_eval_tbd.core.openai_format and
`lm-eval-tbd score` build them. Response shapes follow the OpenAI completions / chat completions
APIs; tests/integration/test_api_server.py checks them against a real server."""

from __future__ import annotations

import json
import math

__all__ = ["LN", "WORKED", "chat_choice", "completion_choice", "write_jsonl"]

LN = math.log
WORKED = [LN(1.0), LN(0.9), LN(0.5)]  # docs/method.md's worked example: TBD 0.455471


def chat_choice(logprobs, tokens=None, finish="stop", tops=None):
    tokens = tokens or [f"t{i}" for i in range(len(logprobs))]
    tops = tops or logprobs
    return {"index": 0, "finish_reason": finish, "message": {"role": "assistant", "content": "".join(tokens)},
            "logprobs": {"content": [{"token": t, "logprob": lp, "top_logprobs": [{"token": t, "logprob": top}]}
                                     for t, lp, top in zip(tokens, logprobs, tops, strict=True)]}}


def completion_choice(logprobs, tokens=None, finish="length"):
    tokens = tokens or [f"t{i}" for i in range(len(logprobs))]
    return {"index": 0, "text": "".join(tokens), "finish_reason": finish,
            "logprobs": {"tokens": tokens, "token_logprobs": logprobs,
                         "top_logprobs": [{t: lp} for t, lp in zip(tokens, logprobs, strict=True)]}}


def write_jsonl(path, lines):
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path
