"""The per-question generation record every backend returns for the ``generate_logprobs`` request.

A backend answers each request with ``GenerationRecord(...).to_json()``: lm-eval ``str()``-s
responses when it logs samples, so a JSON string survives ``--log_samples`` and can be parsed back
to recompute any token-level score with other parameters without re-running the model.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import numpy as np

__all__ = ["GenerationRecord", "REQUEST_TYPE", "FINISH_REASONS", "DECODINGS", "LOGPROB_TOLERANCE", "GREEDY_TOLERANCE",
           "check_logprobs", "shared_prefix_length", "loads_json"]

#: The largest positive value read as a log-probability (as 0): float32 log-softmax can give a
#: certain token a rounding error of this order. Anything larger is a probability or a logit, not
#: a natural-log probability, and is refused. Every backend, reader and score uses this check.
LOGPROB_TOLERANCE = 1e-4
#: The slack with which a greedy token must be the maximum of its row (hf, and servers' top-1):
#: float32 log-softmax rounding. The one greedy tolerance of the package.
GREEDY_TOLERANCE = 1e-4

#: The lm-eval request type (a method name on the LM) that this plugin adds.
REQUEST_TYPE = "generate_logprobs"
#: "eos": the model emitted an end-of-sequence token (included in ``token_ids`` when the backend
#: reports it; OpenAI-compatible servers usually do not); "length": the scored length was reached.
FINISH_REASONS = ("eos", "length")
# 2 added question_* and ref_logprobs, 3 the server's token strings (``tokens``) with ``token_ids``
# optional, 4 the decoding mode and sample seed, 5 ref_question_logprobs; older records still read
# (as greedy).
SCHEMA_VERSION = 5
#: How the generated tokens were chosen: "greedy" (the row maximum of the raw distribution) or
#: "sample" (drawn from the raw distribution at temperature 1).
DECODINGS = ("greedy", "sample")


def _unique_keys(pairs: list) -> dict:
    seen = set()
    for key, _ in pairs:
        if key in seen:
            raise ValueError(f"key {key!r} appears twice in one object (which one was meant?)")
        seen.add(key)
    return dict(pairs)


def loads_json(text: str):
    """``json.loads`` refusing an object with a key twice (``json.loads`` keeps the last silently):
    ValueError (a ``json.JSONDecodeError`` for malformed JSON) naming the key. Every JSON input of
    the package (question files, logged generations, samples and their records, model files) is
    read with it."""
    return json.loads(text, object_pairs_hook=_unique_keys)


@dataclass
class GenerationRecord:
    """What a generation (greedy, or sampled at temperature 1) produced, token by token.

    ``token_ids[i]`` is the i-th generated id and ``logprobs[i]`` its natural-log probability
    under the model's raw distribution (before any logits processor). An end-of-sequence token
    that stopped generation is included as the last entry. ``vocab_logp_mean``/``vocab_logp_std``
    (optional) are the mean and standard deviation of log p over the vocabulary at each position,
    which Min-K%++ needs; they are computed on the fly, never from stored [tokens x vocab] arrays.
    ``question_*`` (optional) are the same quantities for the question's own prompt tokens (the
    input side; the first prompt token has no prediction and is not included), and
    ``ref_logprobs`` the log-probs of ``token_ids`` under a reference model, when one was given,
    and ``ref_question_logprobs`` the question tokens' log-probs under it (one per
    ``question_logprobs`` entry).

    Backends that only see a server's response (OpenAI-compatible APIs) may know the generated
    tokens as strings, not ids: they set ``tokens`` and leave ``token_ids`` None. One of the two is
    always given, with one entry per log-probability.

    ``decoding`` says which mode made the record; a sampled record carries the ``seed`` of its
    own random stream and its ``sample_index`` among the question's samples.
    """

    token_ids: list[int] | None
    logprobs: list[float]
    finish_reason: str
    text: str = ""
    prompt_n_tokens: int | None = None
    vocab_logp_mean: list[float] | None = None
    vocab_logp_std: list[float] | None = None
    backend: str = ""
    question_logprobs: list[float] | None = None
    question_logp_mean: list[float] | None = None
    question_logp_std: list[float] | None = None
    ref_logprobs: list[float] | None = None
    tokens: list[str] | None = None
    decoding: str = "greedy"
    seed: int | None = None
    sample_index: int | None = None
    ref_question_logprobs: list[float] | None = None
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.token_ids is None and self.tokens is None:
            raise ValueError("generation record: neither token_ids nor tokens given")
        for name in ("token_ids", "tokens"):
            values = getattr(self, name)
            if values is not None and len(values) != len(self.logprobs):
                raise ValueError(
                    f"generation record: {len(values)} {name.replace('_', ' ')} but {len(self.logprobs)} log-probabilities"
                )
        if self.decoding not in DECODINGS:
            raise ValueError(f"generation record: decoding must be one of {DECODINGS}, got {self.decoding!r}")
        if self.finish_reason not in FINISH_REASONS:
            raise ValueError(f"generation record: finish_reason must be one of {FINISH_REASONS}, got {self.finish_reason!r}")
        for name in ("vocab_logp_mean", "vocab_logp_std", "ref_logprobs"):
            values = getattr(self, name)
            if values is not None and len(values) != len(self.logprobs):
                raise ValueError(f"generation record: {name} has {len(values)} entries for {len(self.logprobs)} tokens")
        if self.ref_question_logprobs is not None and self.question_logprobs is None:
            raise ValueError("generation record: ref_question_logprobs given without question_logprobs")
        if self.question_logprobs is not None:
            for name in ("question_logp_mean", "question_logp_std", "ref_question_logprobs"):
                values = getattr(self, name)
                if values is not None and len(values) != len(self.question_logprobs):
                    raise ValueError(f"generation record: {name} has {len(values)} entries for "
                                     f"{len(self.question_logprobs)} question tokens")
        for name in ("logprobs", "question_logprobs", "ref_logprobs", "ref_question_logprobs"):
            values = getattr(self, name)
            if values is not None:
                setattr(self, name, check_logprobs(values, where=f"generation record: {name}").tolist())

    @property
    def n_tokens(self) -> int:
        return len(self.logprobs)

    def to_json(self) -> str:
        # -inf (probability 0) is kept as the JSON extension "-Infinity", which json.loads reads back.
        return json.dumps({"v": SCHEMA_VERSION, **asdict(self)}, ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> GenerationRecord:
        """Parse a record written by :meth:`to_json` (also as found in ``resps`` of logged samples)."""
        if isinstance(text, (list, tuple)) and len(text) == 1:
            text = text[0]
        if not isinstance(text, str):
            raise TypeError(
                f"expected a generation record as a JSON string, got {type(text).__name__}; is the model "
                f"backend answering the '{REQUEST_TYPE}' request with GenerationRecord.to_json()?"
            )
        try:
            data = loads_json(text)
        except ValueError as err:
            raise ValueError(f"not a generation record ({'invalid JSON: ' if isinstance(err, json.JSONDecodeError) else ''}"
                             f"{err}): {text[:80]!r}") from None
        version = data.pop("v", None) if isinstance(data, dict) else None
        if version not in range(1, SCHEMA_VERSION + 1):
            raise ValueError(f"not a generation record of schema version 1-{SCHEMA_VERSION}: {text[:80]!r}")
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"generation record has unknown field(s) {sorted(unknown)}")
        return cls(**data)


def check_logprobs(values, *, where: str = "logprobs"):
    """``values`` as a 1-D float64 numpy array of natural-log probabilities, or ValueError naming
    ``where`` and the token positions at fault.

    Refused: a shape other than 1-D; missing, non-numeric or NaN entries (JSON booleans too: Python
    reads ``false`` as 0, a certain token, which would silently give TBD 0, the most seen-like
    score); values above :data:`LOGPROB_TOLERANCE`. Accepted: ``-inf`` (probability 0), and
    values in (0, tolerance], returned as 0.

    Example: ``check_logprobs([-0.5, 3e-5]).tolist()`` is ``[-0.5, 0.0]``.
    """
    if not isinstance(values, np.ndarray) or values.dtype.kind not in "fiu":
        objects = np.asarray(values, dtype=object)
        if objects.ndim != 1:
            raise ValueError(f"{where}: expected a 1-D sequence of log-probabilities, got shape {objects.shape}")
        bad = [i for i, v in enumerate(objects.tolist())
               if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating))]
        if bad:
            raise ValueError(f"{where}: missing, non-numeric or NaN log-probability at token position(s) {bad[:5]} "
                             f"(first: {objects[bad[0]]!r})")
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{where}: expected a 1-D sequence of log-probabilities, got shape {arr.shape}")
    nan = np.flatnonzero(np.isnan(arr))
    if nan.size:
        raise ValueError(f"{where}: missing, non-numeric or NaN log-probability at token position(s) "
                         f"{nan[:5].tolist()} (first: nan)")
    above = np.flatnonzero(arr > LOGPROB_TOLERANCE)
    if above.size:
        raise ValueError(f"{where}: log-probability > 0 at token position(s) {above[:5].tolist()} (first: "
                         f"{arr[above[0]]:.6g}); expected natural-log probabilities")
    return np.minimum(arr, 0.0)


def shared_prefix_length(a: GenerationRecord, b: GenerationRecord, decode=None) -> int:
    """How many leading generated tokens two records of the same question share (e.g. from two
    backends). Compared as ids when both records have them, else as token strings; a record that
    has only ids is then decoded token by token with ``decode`` (``lambda i: tok.decode([i])``)."""
    as_strings = a.token_ids is None or b.token_ids is None

    def pieces(record: GenerationRecord) -> list:
        if not as_strings:
            return record.token_ids
        if record.tokens is not None:
            return record.tokens
        if decode is None:
            raise ValueError("comparing token ids with token strings needs a decode function")
        return [decode(t) for t in record.token_ids]

    x, y = pieces(a), pieces(b)
    return next((i for i, (p, q) in enumerate(zip(x, y)) if p != q), min(len(x), len(y)))
