"""The TBD tasks' ``metadata`` options (YAML ``metadata:`` or ``--metadata``), parsed and
validated without importing lm-eval, so the pytest gate can check them at configuration time."""

from __future__ import annotations

import difflib
import hashlib
import math
from dataclasses import dataclass
from typing import Any

from lm_eval_tbd.core.compat import METADATA_DEFAULTS
from lm_eval_tbd.core.scores import TBDParams

__all__ = ["METADATA_KEYS", "DECODING_MODES", "TaskOptions", "params_from_metadata", "options_from_metadata",
           "sample_seed"]

#: metadata key -> TBDParams field
PARAM_KEYS = {"tbd_tau": "tau", "tbd_alpha": "alpha", "tbd_max_tokens": "max_tokens"}
#: every metadata key the TBD tasks read (their defaults: lm_eval_tbd.core.compat.METADATA_DEFAULTS); any
#: other ``tbd_*`` key is a typo, and so is a key one slip away from one (``tdb_alpha``, ``TBD_tau``)
METADATA_KEYS = frozenset(METADATA_DEFAULTS)
#: ``tbd_decoding`` values. "greedy" is the paper's text; "sample" (temperature 1 on the raw
#: distribution, no top-k, top-p or penalties) is what the authors' released evaluation code does
#: (vLLM's default temperature of 1.0).
DECODING_MODES = ("greedy", "sample")
# Request fields TBD sets itself, or that would shorten, bias or multiply the generation.
_RESERVED_SERVER_ARGS = frozenset({
    "temperature", "max_tokens", "max_completion_tokens", "max_gen_toks", "min_tokens", "until", "stop",
    "stop_token_ids", "ignore_eos", "logit_bias", "logprobs", "top_logprobs", "prompt", "messages", "n",
    "best_of", "stream", "echo", "do_sample", "use_beam_search", "seed", "top_p",
})
# Penalties change which token is chosen: allowed only at their neutral values (servers such as
# llama.cpp default to a non-neutral one, repeat_penalty 1.1, which this option is there to switch
# off).
_NEUTRAL_SERVER_ARGS = {"repeat_penalty": (1.0,), "repetition_penalty": (1.0,), "frequency_penalty": (0.0,),
                        "presence_penalty": (0.0,)}
# Truncations leave the greedy choice alone but change what a sample can draw: neutral values only
# when sampling (llama.cpp defaults to top_k 40 and min_p 0.05).
_NEUTRAL_SAMPLING_ARGS = {"top_k": (0, -1), "min_p": (0.0,), "typical_p": (1.0,)}


@dataclass(frozen=True)
class TaskOptions:
    params: TBDParams
    input_scores: bool = False  # also score the question's own prompt tokens (costs prefill logits)
    ref_model: str | None = None  # reference model path for the calibrated scores
    # extra JSON fields for OpenAI-compatible server requests (e.g. llama.cpp's repeat_penalty)
    server_args: dict[str, Any] | None = None
    decoding: str = "greedy"  # or "sample": temperature 1 on the raw distribution
    samples: int = 1  # independent samples per question (sample decoding); the score is their mean
    seed: int = 0  # base seed of sampled decoding; each (question, sample) gets its own stream


def sample_seed(seed: int, question: str, index: int) -> int:
    """The seed of sample ``index`` of ``question`` under ``tbd_seed`` ``seed``: a stable 63-bit
    hash, so a question's samples do not depend on batching, order or the other questions.

    Example: ``sample_seed(0, "What is 2+2?", 0)`` is the same number in every run and process.
    """
    digest = hashlib.sha256(f"{seed}\0{index}\0{question}".encode()).digest()
    return int.from_bytes(digest[:8], "big") & (2**63 - 1)


def _number(value, key: str, task: str, integer: bool) -> float | int:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"task {task}: metadata '{key}' must be a number, got {value!r}") from None
    if isinstance(value, bool) or not math.isfinite(number):
        raise ValueError(f"task {task}: metadata '{key}' must be a finite number, got {value!r}")
    if integer:
        if number != int(number):
            raise ValueError(f"task {task}: tbd_max_tokens must be an integer >= 1, got {value!r}")
        return int(number)
    return number


def params_from_metadata(metadata: dict[str, Any] | None, *, task: str = "tbd") -> TBDParams:
    """TBDParams from a task's metadata; a bad value raises ValueError naming the key and task."""
    metadata = metadata or {}
    kwargs = {field: _number(metadata[key], key, task, field == "max_tokens")
              for key, field in PARAM_KEYS.items() if key in metadata}
    try:
        return TBDParams(**kwargs)
    except ValueError as err:
        raise ValueError(f"task {task}: {err}") from None


def _flag(value, key: str, task: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
        return value.lower() in ("true", "1")
    raise ValueError(f"task {task}: metadata '{key}' must be true or false, got {value!r}")


def _osa_distance(a: str, b: str) -> int:
    """Edit distance counting a swap of two neighbouring characters as one edit ("tdb" -> "tbd")."""
    d = [[i + j if i * j == 0 else 0 for j in range(len(b) + 1)] for i in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1]))
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
    return d[-1][-1]


def misspelt_key(key: str) -> str | None:
    """The TBD option ``key`` is a slip away from, when it is not one itself: another case
    (``TBD_tau``), a misspelt prefix (``tdb_alpha``, ``tbdalpha``, ``tbd-seed``), or a misspelt
    ``tbd_*`` name (``tbd_alpa``). None for a key that is far from every TBD option (lm-eval's own
    keys and model arguments: ``version``, ``pretrained``, ``max_tokens``)."""
    if key in METADATA_KEYS or not isinstance(key, str):
        return None
    lower = key.lower()
    if lower in METADATA_KEYS:
        return lower
    for known in sorted(METADATA_KEYS):
        suffix = known[len("tbd_"):]
        prefix = lower[: -len(suffix)]
        if lower.endswith(suffix) and prefix and _osa_distance(prefix, "tbd_") <= 2:
            return known
    completions = [k for k in sorted(METADATA_KEYS) if k.startswith(lower)]
    if lower.startswith("tbd_") and len(completions) == 1:
        return completions[0]
    if lower.startswith("tbd_") or _osa_distance(lower[:3], "tbd") <= 1:
        close = difflib.get_close_matches(lower, sorted(METADATA_KEYS), n=1, cutoff=0.75)
        return close[0] if close else None
    return None


def _check_keys(metadata: dict, task: str) -> None:
    unknown = sorted(k for k in metadata if isinstance(k, str) and k.startswith("tbd_") and k not in METADATA_KEYS)
    near = {k: m for k in metadata if (m := misspelt_key(k)) is not None}
    if unknown or near:
        hints = ", ".join(f"{m!r} for {k!r}" for k, m in sorted(near.items()))
        unknown = sorted(set(unknown) | set(near))
        raise ValueError(f"task {task}: unknown metadata key(s) {unknown}"
                         + (f": did you mean {hints}? (a misspelt key is not read, so the option would keep its "
                            "default)" if hints else "")
                         + f"; known: {sorted(METADATA_KEYS)}")


def options_from_metadata(metadata: dict[str, Any] | None, *, task: str = "tbd") -> TaskOptions:
    """All TBD options from a task's metadata. Unknown ``tbd_*`` keys are errors (typos would
    otherwise silently fall back to defaults), and so are keys one slip away from a TBD option
    (``tdb_alpha``: :func:`misspelt_key`), with a did-you-mean; other keys belong to lm-eval and
    are left alone."""
    metadata = metadata or {}
    _check_keys(metadata, task)
    ref = metadata.get("tbd_ref_model") or None
    if ref is not None and not isinstance(ref, str):
        raise ValueError(f"task {task}: metadata 'tbd_ref_model' must be a model path, got {ref!r}")
    data_file = metadata.get("tbd_data_file")
    if data_file is not None and not (isinstance(data_file, str) and data_file.strip()):
        raise ValueError(f"task {task}: metadata 'tbd_data_file' must be the path of a JSON Lines question file "
                         f"(a string), got {data_file!r}")
    decoding = metadata.get("tbd_decoding", METADATA_DEFAULTS["tbd_decoding"])
    if decoding not in DECODING_MODES:
        raise ValueError(f"task {task}: metadata 'tbd_decoding' must be one of {list(DECODING_MODES)}, got {decoding!r}")
    samples = _count(metadata.get("tbd_samples", METADATA_DEFAULTS["tbd_samples"]), "tbd_samples", task, minimum=1)
    if samples > 1 and decoding != "sample":
        raise ValueError(f"task {task}: metadata 'tbd_samples' {samples} needs 'tbd_decoding': 'sample' "
                         "(greedy decoding gives the same tokens every time)")
    return TaskOptions(
        params=params_from_metadata(metadata, task=task),
        input_scores=_flag(metadata.get("tbd_input_scores", METADATA_DEFAULTS["tbd_input_scores"]), "tbd_input_scores", task),
        ref_model=ref,
        server_args=_server_args(metadata.get("tbd_server_args"), task, decoding),
        decoding=decoding,
        samples=samples,
        seed=_count(metadata.get("tbd_seed", METADATA_DEFAULTS["tbd_seed"]), "tbd_seed", task, minimum=0),
    )


def _count(value, key: str, task: str, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"task {task}: metadata '{key}' must be an integer >= {minimum}, got {value!r}")
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"task {task}: metadata '{key}' must be an integer >= {minimum}, got {value!r}") from None
    if number < minimum:
        raise ValueError(f"task {task}: metadata '{key}' must be an integer >= {minimum}, got {value!r}")
    return number


def _server_args(value, task: str, decoding: str = "greedy") -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise ValueError(f"task {task}: metadata 'tbd_server_args' must be a JSON object of request fields, "
                         f"got {value!r}")
    reserved = sorted(set(value) & _RESERVED_SERVER_ARGS)
    if reserved:
        raise ValueError(f"task {task}: metadata 'tbd_server_args' may not set {reserved}: TBD sets them itself "
                         "(the decoding of tbd_decoding for exactly tbd_max_tokens tokens, per-token log-probabilities)")
    neutral_args = {**_NEUTRAL_SERVER_ARGS, **(_NEUTRAL_SAMPLING_ARGS if decoding == "sample" else {})}
    for key, neutral in neutral_args.items():
        if key in value and (isinstance(value[key], bool) or value[key] not in neutral):
            raise ValueError(f"task {task}: metadata 'tbd_server_args' sets {key} {value[key]!r}; TBD decodes on the "
                             f"model's raw distribution, so only the neutral value {' or '.join(map(str, neutral))} "
                             "is allowed")
    return dict(value)
