"""Every score of one question from its generation record: TBD and the likelihood baselines.

Returns plain values in each score's own direction (see ``scores.SCORES`` for which direction
means "seen"); ``scores.decision_value`` turns any of them into HIGHER = more likely seen.
"""

from __future__ import annotations

from lm_eval_tbd.record import GenerationRecord
from lm_eval_tbd.scores import (
    TBDParams, certain_share, max_k, mean_entropy, mean_logprob, min_k, min_k_plus_plus, ratio_min_k, tbd_score,
    zlib_ratio,
)

__all__ = ["score_record", "mean_scores", "K"]

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
