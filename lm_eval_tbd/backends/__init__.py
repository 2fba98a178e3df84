"""Backends answering the ``generate_logprobs`` request, one module per lm-eval model family.

``install()`` attaches the method to the lm-eval model classes we support and gives every other
``LM`` a method that fails with a clear message instead of an AttributeError from the evaluator.
"""

from __future__ import annotations

from lm_eval_tbd.record import REQUEST_TYPE

__all__ = ["install", "SUPPORTED_MODELS"]

#: lm-eval ``--model`` names whose class answers ``generate_logprobs``.
SUPPORTED_MODELS = ("hf", "hf-auto", "huggingface")


def _unsupported(self, requests, disable_tqdm: bool = False):
    raise NotImplementedError(
        f"lm-eval model class {type(self).__name__} cannot answer '{REQUEST_TYPE}' requests (greedy "
        f"generation with per-token log-probabilities), which the TBD tasks need. "
        f"Supported --model values: {', '.join(SUPPORTED_MODELS)}."
    )


def install() -> None:
    from lm_eval.api.model import LM

    from lm_eval_tbd.backends import hf

    if not hasattr(LM, REQUEST_TYPE):
        setattr(LM, REQUEST_TYPE, _unsupported)
    hf.install()
