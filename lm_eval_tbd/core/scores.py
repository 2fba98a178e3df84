"""Token-level contamination scores over arrays of generated-token log-probabilities.

Pure functions: numpy in, floats out. No torch, no harness. Every function documents which
direction means "seen" (a member of the distillation data).

The last part, :func:`score_record`, computes every score of one generation record (TBD and the
likelihood baselines) in each score's own direction; :func:`decision_value` turns any of them into
HIGHER = more likely seen.

Convention (as in scikit-learn's metrics): inputs are natural-log probabilities of the tokens the
model actually generated, in generation order, shape (n_tokens,).
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from lm_eval_tbd.core.record import LOGPROB_TOLERANCE, check_logprobs

if TYPE_CHECKING:
    from lm_eval_tbd.core.record import GenerationRecord

__all__ = [
    "TBDParams", "tbd_score", "tbd_underflows", "DEFAULT_TAU", "DEFAULT_ALPHA", "DEFAULT_MAX_TOKENS",
    "mean_logprob", "min_k", "max_k", "min_k_plus_plus", "zlib_ratio", "mean_entropy", "ratio_min_k",
    "certain_share", "SCORES", "ScoreSpec", "decision_value", "score_record", "mean_scores", "K",
]

DEFAULT_TAU = 1.0
DEFAULT_ALPHA = 0.6
DEFAULT_MAX_TOKENS = 300


@dataclass(frozen=True)
class TBDParams:
    """Parameters of the TBD score (defaults are the paper's: tau=1.0, alpha=0.6, M=300)."""

    tau: float = DEFAULT_TAU
    alpha: float = DEFAULT_ALPHA
    max_tokens: int = DEFAULT_MAX_TOKENS

    def __post_init__(self) -> None:
        # Validate here so every entry point (YAML, --metadata, the CLI, Python) gets the same
        # message. Non-finite values are refused: alpha = inf sends every (tau - p) < 1 to 0, so
        # every question would score TBD 0, the most seen-like value.
        if not _finite_number(self.tau) or not 0.0 < self.tau <= 1.0:
            raise ValueError(f"tbd_tau must be a number in (0, 1], got {self.tau!r}")
        if not _finite_number(self.alpha) or not self.alpha > 0.0:
            raise ValueError(f"tbd_alpha must be a finite number > 0, got {self.alpha!r}")
        if isinstance(self.max_tokens, bool) or not isinstance(self.max_tokens, int) or self.max_tokens < 1:
            raise ValueError(f"tbd_max_tokens must be an integer >= 1, got {self.max_tokens!r}")


def _finite_number(value) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)


def tbd_score(
    logprobs,
    *,
    tau: float = DEFAULT_TAU,
    alpha: float = DEFAULT_ALPHA,
    max_tokens: int = DEFAULT_MAX_TOKENS,
) -> float:
    """Token Probability Deviation of one generation. LOWER = more likely seen.

    ``TBD = mean over i in S of (tau - p_i) ** alpha`` with ``p_i = exp(logprobs[i])`` and
    ``S = {i < max_tokens : p_i < tau}``. Tokens with ``p_i >= tau`` are dropped from the mean
    (they do not count as zeros); with ``tau = 1`` only tokens whose probability is exactly 1.0 in
    floating point are dropped. Returns 0.0 when ``S`` is empty (including zero generated tokens).

    For ROC metrics with member = positive class, use ``-tbd_score(...)`` as the decision value.
    """
    params = TBDParams(tau=tau, alpha=alpha, max_tokens=max_tokens)
    lp = check_logprobs(logprobs)[: params.max_tokens]
    p = np.exp(lp)
    kept = p[p < params.tau]
    if kept.size == 0:
        return 0.0
    return float(np.mean((params.tau - kept) ** params.alpha))


def tbd_underflows(logprobs, params: TBDParams) -> bool:
    """Whether TBD is 0 only because every ``(tau - p) ** alpha`` underflows to 0 in floating point
    (e.g. alpha 1e300), although some generated token has ``p < tau``: a 0 that reads as the most
    seen-like score and says nothing."""
    p = np.exp(check_logprobs(logprobs)[: params.max_tokens])
    kept = p[p < params.tau]
    return kept.size > 0 and not np.any((params.tau - kept) ** params.alpha)


# ---- likelihood baselines ------------------------------------------------------------------
# All take the log-probs of the scored tokens (already cut to the first M by the caller, or via
# ``max_tokens``) and raise ValueError on zero tokens: a mean over nothing is undefined, and a
# made-up value would be a silent wrong number.


def _scored(logprobs, max_tokens: int | None, what: str) -> np.ndarray:
    lp = check_logprobs(logprobs)
    if max_tokens is not None:
        lp = lp[:max_tokens]
    if lp.size == 0:
        raise ValueError(f"{what} is undefined for zero tokens")
    return lp


def _k_count(n: int, k: float) -> int:
    if not 0.0 < k <= 1.0:
        raise ValueError(f"k must be in (0, 1], got {k!r}")
    # At least one token, as the Min-K% reference code would otherwise average an empty slice.
    return max(1, int(n * k))


def mean_logprob(logprobs, *, max_tokens: int | None = None) -> float:
    """Mean log-probability of the tokens (= -log perplexity). HIGHER = more likely seen."""
    return float(np.mean(_scored(logprobs, max_tokens, "mean_logprob")))


def min_k(logprobs, k: float = 0.2, *, max_tokens: int | None = None) -> float:
    """Min-K% (Shi et al. 2024): mean of the lowest ``k`` fraction of token log-probs
    (``max(1, floor(n k))`` tokens). HIGHER = more likely seen."""
    lp = _scored(logprobs, max_tokens, "min_k")
    return float(np.mean(np.sort(lp)[: _k_count(lp.size, k)]))


def max_k(logprobs, k: float = 0.2, *, max_tokens: int | None = None) -> float:
    """Max-K%: mean of the highest ``k`` fraction of token log-probs. HIGHER = more likely seen."""
    lp = _scored(logprobs, max_tokens, "max_k")
    return float(np.mean(np.sort(lp)[::-1][: _k_count(lp.size, k)]))


def min_k_plus_plus(logprobs, mu, sigma, k: float = 0.2, *, max_tokens: int | None = None) -> float:
    """Min-K%++ (Zhang et al. 2025): per token ``(log p - mu) / sigma`` with ``mu``/``sigma`` the
    mean and standard deviation of log p over the vocabulary under the model's own distribution at
    that position; the mean of the lowest ``k`` fraction. HIGHER = more likely seen.
    """
    lp = _scored(logprobs, max_tokens, "min_k_plus_plus")
    mu = np.asarray(mu, dtype=np.float64)[: lp.size]
    sigma = np.asarray(sigma, dtype=np.float64)[: lp.size]
    if mu.size != lp.size or sigma.size != lp.size:
        raise ValueError(f"min_k_plus_plus: {lp.size} tokens but {mu.size} mu and {sigma.size} sigma values")
    # A certain position (sigma 0) carries no evidence either way: z = 0 there.
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(sigma > 0, (lp - mu) / sigma, 0.0)
    return float(np.mean(np.sort(z)[: _k_count(lp.size, k)]))


def zlib_ratio(logprobs, text: str, *, max_tokens: int | None = None) -> float:
    """Mean log-probability divided by the zlib-compressed length of ``text`` in bytes (Carlini
    et al. 2021's zlib-normalised loss, as a decision value). HIGHER = more likely seen."""
    lp = _scored(logprobs, max_tokens, "zlib_ratio")
    size = len(zlib.compress(text.encode("utf-8")))
    return float(np.mean(lp) / size)


def mean_entropy(vocab_logp_mean, *, max_tokens: int | None = None) -> float:
    """Mean entropy (nats) of the model's next-token distribution over the scored positions,
    from ``vocab_logp_mean[i] = sum_v p_v log p_v = -H_i`` (what the hf capture records for
    Min-K%++). LOWER = more likely seen: a model that learned an answer is near-certain at every
    step, whichever token it then draws.

    Example: positions with H = 0 and H = log 2 give ``mean_entropy([0.0, -0.693147])`` = 0.346574.
    """
    mu = np.asarray(vocab_logp_mean, dtype=np.float64)
    if max_tokens is not None:
        mu = mu[:max_tokens]
    if mu.ndim != 1 or mu.size == 0:
        raise ValueError("mean_entropy is undefined for zero tokens")
    if np.isnan(mu).any() or (mu > LOGPROB_TOLERANCE).any():
        raise ValueError("mean_entropy: sum p log p must be a non-positive number at every position")
    return float(-np.mean(np.minimum(mu, 0.0)))


def _paired(logprobs, ref_logprobs, max_tokens: int | None, what: str) -> tuple[np.ndarray, np.ndarray]:
    lp = _scored(logprobs, max_tokens, what)
    ref = check_logprobs(ref_logprobs, where=f"{what} reference log-probs")[: lp.size]
    if ref.size != lp.size:
        raise ValueError(f"{what}: {lp.size} tokens but {ref.size} reference log-probs")
    return lp, ref


def ratio_min_k(logprobs, ref_logprobs, k: float = 0.2, *, max_tokens: int | None = None) -> float:
    """Min-K% of the per-token log-likelihood ratios ``log p_i - log q_i`` (student against the
    reference model, usually the base before distillation, on the same generated tokens): the
    mean of the lowest ``k`` fraction. HIGHER = more likely seen.

    Why the lowest: distillation raises the probability of the answer style on every question;
    only on a question it was trained on does it also raise the content tokens the base found
    unlikely, so even the worst-boosted tokens are boosted. -inf ratios (a reference probability
    of 0 against a non-zero student one) count as +inf, and the reverse as -inf.

    Example: ratios [1.0, 0.2, -0.5, 0.3, 0.4] with k = 0.4 average the lowest two:
    (-0.5 + 0.2) / 2 = -0.15.
    """
    lp, ref = _paired(logprobs, ref_logprobs, max_tokens, "ratio_min_k")
    with np.errstate(invalid="ignore"):
        r = lp - ref
    r = np.where(np.isnan(r), 0.0, r)  # both probabilities 0: no evidence either way
    return float(np.mean(np.sort(r)[: _k_count(r.size, k)]))


def certain_share(logprobs, ref_logprobs, *, student_min: float = 0.9, ref_max: float = 0.5,
                  max_tokens: int | None = None) -> float:
    """Share of the scored tokens where the student is near-certain (``p_i >= student_min``) and
    the reference model is not (``q_i < ref_max``). HIGHER = more likely seen.

    Why: TBD counts every near-certain token, including those any model is sure of (formula
    boilerplate, the answer format taught to all questions); this keeps only the certainty the
    reference model does not share, which is what training on the question adds.

    Example: p = [0.95, 0.99, 0.5, 0.92], q = [0.2, 0.99, 0.1, 0.4] -> tokens 0 and 3 qualify:
    2 / 4 = 0.5.
    """
    lp, ref = _paired(logprobs, ref_logprobs, max_tokens, "certain_share")
    return float(np.mean((np.exp(lp) >= student_min) & (np.exp(ref) < ref_max)))


@dataclass(frozen=True)
class ScoreSpec:
    """How to read a score: ``higher_is_seen`` says which direction means "member"."""

    name: str
    higher_is_seen: bool
    description: str


SCORES: dict[str, ScoreSpec] = {
    s.name: s
    for s in (
        ScoreSpec("tbd", False, "Token Probability Deviation of the generated tokens (lower = seen)"),
        ScoreSpec("gen_mean_logprob", True, "mean log-probability of the generated tokens (-log perplexity)"),
        ScoreSpec("gen_min_k", True, "Min-K% (k=0.2) of the generated tokens"),
        ScoreSpec("gen_max_k", True, "Max-K% (k=0.2) of the generated tokens"),
        ScoreSpec("gen_min_k_pp", True, "Min-K%++ (k=0.2) of the generated tokens"),
        ScoreSpec("gen_zlib", True, "mean log-probability / zlib bytes of the generated text"),
        ScoreSpec("q_mean_logprob", True, "mean log-probability of the question's tokens"),
        ScoreSpec("q_min_k", True, "Min-K% (k=0.2) of the question's tokens"),
        ScoreSpec("q_max_k", True, "Max-K% (k=0.2) of the question's tokens"),
        ScoreSpec("q_min_k_pp", True, "Min-K%++ (k=0.2) of the question's tokens"),
        ScoreSpec("q_zlib", True, "mean log-probability / zlib bytes of the question"),
        ScoreSpec("ref_tbd", False, "TBD of the student's generated tokens minus their TBD under the reference model"),
        ScoreSpec("ref_logprob", True, "mean log-prob of the generated tokens, student minus reference model"),
        ScoreSpec("gen_entropy", False, "mean entropy of the next-token distribution at the generated positions"),
        ScoreSpec("ref_ratio_min_k", True, "Min-K% (k=0.2) of per-token log-prob ratios, student over reference"),
        ScoreSpec("ref_certain_share", True, "share of generated tokens the student is near-certain of (p >= 0.9) "
                                             "and the reference model is not (q < 0.5)"),
        ScoreSpec("q_ref_logprob", True, "mean log-prob of the question's tokens, student minus reference model"),
        ScoreSpec("q_ref_min_k", True, "Min-K% (k=0.2) of the question tokens' log-prob ratios, student over reference"),
        # Not computed from a record: added by lm_eval_tbd.core.combine.with_combined from a fitted model.
        ScoreSpec("combined", True, "a fitted combination of the other scores (lm_eval_tbd.core.combine)"),
    )
}


def decision_value(name: str, value: float) -> float:
    """The score as a decision value where HIGHER = more likely seen (for ROC metrics)."""
    return value if SCORES[name].higher_is_seen else -value


# ---- every score of one record -------------------------------------------------------------

#: The fraction used by Min-K%, Max-K% and Min-K%++ (the value their papers recommend).
K = 0.2


def score_record(record: GenerationRecord, params: TBDParams, question: str | None = None) -> dict[str, float]:
    """``{"tbd": ..., "gen_mean_logprob": ..., ...}`` over the first ``params.max_tokens`` tokens.

    TBD is defined for zero tokens (0); the likelihood baselines are not, and are left out then.
    ``gen_zlib`` is left out when the record holds more than M tokens (see below). The ``q_*``
    scores need the record's question log-probs (and ``question`` text for ``q_zlib``); the
    ``ref_*`` calibrated scores need reference-model log-probs.
    ``gen_min_k_pp`` needs the record's per-position vocabulary statistics and is left out when a
    backend did not record them.
    """
    m = params.max_tokens
    out = {"tbd": tbd_score(record.logprobs, tau=params.tau, alpha=params.alpha, max_tokens=m)}
    out.update(_question_scores(record, question))
    if record.n_tokens == 0:
        return out
    lp = record.logprobs[:m]
    out["gen_mean_logprob"] = mean_logprob(lp)
    out["gen_min_k"] = min_k(lp, K)
    out["gen_max_k"] = max_k(lp, K)
    if record.vocab_logp_mean is not None and record.vocab_logp_std is not None:
        out["gen_min_k_pp"] = min_k_plus_plus(lp, record.vocab_logp_mean[:m], record.vocab_logp_std[:m], K)
    if record.vocab_logp_mean is not None:
        # sum p log p at each position: backends that record it (hf) give the entropy for free.
        out["gen_entropy"] = mean_entropy(record.vocab_logp_mean[:m])
    # zlib needs the text of exactly the scored tokens; a record longer than M (re-scoring with a
    # smaller M) only has the text of all of them, so the score is left out rather than skewed.
    if record.n_tokens <= m:
        out["gen_zlib"] = zlib_ratio(lp, record.text)
    if record.ref_logprobs is not None:
        ref = record.ref_logprobs[:m]
        out["ref_tbd"] = out["tbd"] - tbd_score(ref, tau=params.tau, alpha=params.alpha)
        out["ref_logprob"] = out["gen_mean_logprob"] - mean_logprob(ref)
        out["ref_ratio_min_k"] = ratio_min_k(lp, ref, K)
        out["ref_certain_share"] = certain_share(lp, ref)
    return out


def _question_scores(record: GenerationRecord, question: str | None) -> dict[str, float]:
    """The likelihood scores on the question's own tokens (input side), when recorded."""
    lp = record.question_logprobs
    if not lp:
        return {}
    out = {"q_mean_logprob": mean_logprob(lp), "q_min_k": min_k(lp, K), "q_max_k": max_k(lp, K)}
    if record.question_logp_mean is not None and record.question_logp_std is not None:
        out["q_min_k_pp"] = min_k_plus_plus(lp, record.question_logp_mean, record.question_logp_std, K)
    if question:
        out["q_zlib"] = zlib_ratio(lp, question)
    if record.ref_question_logprobs is not None:
        # The question-side scores measure the question set as much as the model (the base model
        # already ranks members and non-members apart by chance); the reference model's view of
        # the same tokens removes what the two models share.
        out["q_ref_logprob"] = out["q_mean_logprob"] - mean_logprob(record.ref_question_logprobs)
        out["q_ref_min_k"] = ratio_min_k(lp, record.ref_question_logprobs, K)
    return out


def mean_scores(per_sample: list[dict[str, float]]) -> dict[str, float]:
    """One question's scores over several sampled generations: each score's mean over the
    samples that have it (a baseline undefined for an empty generation is left out of its mean),
    in the order of the first sample. One sample is returned as it is.

    Example: ``mean_scores([{"tbd": 0.2}, {"tbd": 0.4}])`` is ``{"tbd": 0.3}`` (up to rounding).
    """
    if not per_sample:
        raise ValueError("mean_scores: no samples")
    if len(per_sample) == 1:
        return dict(per_sample[0])
    names = list(dict.fromkeys(k for s in per_sample for k in s))
    return {k: sum(s[k] for s in per_sample if k in s) / sum(k in s for s in per_sample) for k in names}
