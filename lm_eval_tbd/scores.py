"""Token-level contamination scores over arrays of generated-token log-probabilities.

Pure functions: numpy in, floats out. No torch, no harness. Every function documents which
direction means "seen" (a member of the distillation data).

Convention (as in scikit-learn's metrics): inputs are natural-log probabilities of the tokens the
model actually generated, in generation order, shape (n_tokens,).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["TBDParams", "tbd_score", "validate_logprobs", "DEFAULT_TAU", "DEFAULT_ALPHA", "DEFAULT_MAX_TOKENS"]

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
        # Validate here so every entry point (YAML, --metadata, Python) gets the same message.
        if isinstance(self.tau, bool) or not isinstance(self.tau, (int, float)) or not 0.0 < self.tau <= 1.0:
            raise ValueError(f"tbd_tau must be a number in (0, 1], got {self.tau!r}")
        if isinstance(self.alpha, bool) or not isinstance(self.alpha, (int, float)) or not self.alpha > 0.0:
            raise ValueError(f"tbd_alpha must be a number > 0, got {self.alpha!r}")
        if isinstance(self.max_tokens, bool) or not isinstance(self.max_tokens, int) or self.max_tokens < 1:
            raise ValueError(f"tbd_max_tokens must be an integer >= 1, got {self.max_tokens!r}")


def validate_logprobs(logprobs, *, where: str = "logprobs") -> np.ndarray:
    """Return ``logprobs`` as a 1-D float64 array, or raise ValueError naming ``where``.

    Log-probabilities must be <= 0 (a tiny positive rounding error, as float32 log-softmax can
    produce for a certain token, is clipped to 0) and not NaN; -inf (probability 0) is allowed.
    """
    arr = np.asarray(logprobs, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{where}: expected a 1-D sequence of log-probabilities, got shape {arr.shape}")
    if np.isnan(arr).any():
        bad = np.flatnonzero(np.isnan(arr))[:5].tolist()
        raise ValueError(f"{where}: NaN log-probability at token position(s) {bad}")
    if (arr > 1e-4).any():
        bad = np.flatnonzero(arr > 1e-4)[:5].tolist()
        raise ValueError(f"{where}: log-probability > 0 at token position(s) {bad}; expected natural-log probabilities")
    return np.minimum(arr, 0.0)


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
    lp = validate_logprobs(logprobs)[: params.max_tokens]
    p = np.exp(lp)
    kept = p[p < params.tau]
    if kept.size == 0:
        return 0.0
    return float(np.mean((params.tau - kept) ** params.alpha))
