"""The scores that need the model's weights, for a backend whose engine does not expose them.

vLLM returns the log-probability of each generated token, but not the distribution it was drawn
from (the vocabulary statistics of Min-K%++), the question tokens' log-probs (``tbd_input_scores``)
or another model's view of the same tokens (``tbd_ref_model``). :class:`TeacherForced` computes
them afterwards with one forward pass of the transformers model over prompt + generated ids: the
ids the engine produced, never re-tokenised text, and no second generation. Only the rows that
predict a scored token go through the output layer, so no [tokens x vocab] tensor is made beyond
those rows of one sequence.

The same pass gives the model's own log-prob of each generated token: the record keeps the largest
difference from the engine's (``extra["teacher_max_abs_dlogp"]``), so a teacher that is not the
engine's model (another revision, another precision) shows.
"""

from __future__ import annotations

import dataclasses
import inspect

import torch

from lm_eval_tbd.core.errors import user_error
from lm_eval_tbd.core.record import GenerationRecord

__all__ = ["TeacherForced", "vocab_stats", "question_positions", "load_reference", "token_logprobs"]


def vocab_stats(row: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """p-weighted mean and standard deviation of log p over the vocabulary, per row of a
    log-softmax tensor [..., vocab] (the mu and sigma of Min-K%++)."""
    p = row.exp()
    work = torch.special.xlogy(p, p)
    mu = work.sum(-1)
    # In place in one [... x vocab] temporary: (row - mu), zero where p is 0 (log p may be -inf
    # there), squared, times p.
    centred = torch.sub(row, mu[..., None], out=work)
    centred.masked_fill_(~(p > 0), 0.0)
    return mu, centred.square_().mul_(p).sum(-1).sqrt()


def question_positions(tokenizer, context: str, span, ids: list[int]) -> list[int]:
    """Positions in ``ids`` (the context's prompt ids, as the engine tokenised it) of the tokens
    overlapping the question's character ``span`` (start, end) of ``context``; [] where the span
    is unknown or no tokenisation of ``context`` reproduces ``ids``. Position 0 is never included
    (nothing predicts it)."""
    if not span:
        return []
    start, end = span
    for special in (None, False, True):
        kwargs = {} if special is None else {"add_special_tokens": special}
        enc = tokenizer(context, return_offsets_mapping=True, **kwargs)
        if enc["input_ids"] == ids:
            return [i for i, (a, z) in enumerate(enc["offset_mapping"]) if i > 0 and a < end and z > start]
    return []


def load_reference(path: str, tokenizer, *, dtype, device):
    """The reference model at ``path``, refused (a user error naming ``tbd_ref_model``) when it
    cannot be loaded or its vocabulary differs from ``tokenizer``'s."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        ref_vocab = AutoTokenizer.from_pretrained(path).get_vocab()
    except OSError as err:
        raise user_error(ValueError(f"tbd_ref_model: cannot load a tokenizer from {path!r} ({err})")) from None
    if ref_vocab != tokenizer.get_vocab():
        raise user_error(ValueError(f"tbd_ref_model {path!r} has a different tokenizer from the evaluated model; "
                                    "calibration scores the same token ids under both, so the vocabularies must match"))
    return AutoModelForCausalLM.from_pretrained(path, dtype=dtype).to(device).eval()


def token_logprobs(model, ids: list[int], predicted: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """From one forward pass of ``model`` over ``ids`` (one unpadded sequence): the log-softmax rows
    [len(predicted) x vocab] that predict ``ids[p]`` for each p of ``predicted`` (all >= 1), and
    those tokens' log-probs. Only those rows go through the output layer."""
    device = next(model.parameters()).device
    keep = torch.tensor([p - 1 for p in predicted], device=device, dtype=torch.long)
    kwargs = {"logits_to_keep": keep} if "logits_to_keep" in inspect.signature(model.forward).parameters else {}
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids], device=device), **kwargs).logits[0]
    if not kwargs:
        logits = logits[keep]
    rows = torch.log_softmax(logits.float(), dim=-1)
    target = torch.tensor([ids[p] for p in predicted], device=rows.device, dtype=torch.long)
    return rows, rows.gather(-1, target[:, None])[:, 0]


def _same_folder(a: str, b: str) -> bool:
    """Whether two model paths name the same local folder (hub ids compare as written)."""
    from pathlib import Path

    pa, pb = Path(a), Path(b)
    return pa.resolve() == pb.resolve() if pa.is_dir() and pb.is_dir() else a == b


class TeacherForced:
    """The transformers model (and the reference model, if any) that completes engine records.

    ``model_path``: the engine's model folder or hub id; ``dtype``: "auto", "float32", ...;
    ``device``: where the pass runs (default: CUDA when available, else CPU).
    """

    def __init__(self, model_path: str, tokenizer, *, dtype: str = "auto", device: str | None = None,
                 ref_path: str | None = None) -> None:
        from transformers import AutoModelForCausalLM

        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.dtype = getattr(torch, dtype) if isinstance(getattr(torch, dtype, None), torch.dtype) else "auto"
        self.tokenizer = tokenizer
        self.model = AutoModelForCausalLM.from_pretrained(model_path, dtype=self.dtype).to(self.device).eval()
        self.ref_path = ref_path or None
        # The model as its own reference (the base model's pass of a before/after protocol) gives
        # the same log-probs: one forward pass serves both.
        self.ref_is_model = bool(self.ref_path) and _same_folder(self.ref_path, model_path)
        self.ref = (load_reference(ref_path, tokenizer, dtype=self.model.dtype, device=self.device)
                    if self.ref_path and not self.ref_is_model else None)

    def complete(self, record: GenerationRecord, prompt_ids: list[int], *, positions: list[int] | None = None,
                 input_scores: bool = False) -> GenerationRecord:
        """``record`` with the vocabulary statistics of its generated tokens, their log-probs under
        the reference model (when there is one), and with ``input_scores`` the question tokens'
        log-probs and statistics at ``positions`` (indices into ``prompt_ids``; see
        :func:`question_positions`)."""
        n, gen = len(prompt_ids), list(record.token_ids)
        if not gen:
            return record
        ids = prompt_ids + gen
        positions = list(positions or []) if input_scores else []
        q = len(positions)
        predicted = positions + list(range(n, n + len(gen)))
        rows, lp = token_logprobs(self.model, ids, predicted)
        mu, sigma = vocab_stats(rows)
        engine = torch.tensor(record.logprobs, dtype=lp.dtype, device=lp.device)
        changes = {"vocab_logp_mean": mu[q:].tolist(), "vocab_logp_std": sigma[q:].tolist(),
                   "extra": {**record.extra, "teacher_forced": "hf",
                             "teacher_max_abs_dlogp": float((lp[q:] - engine).abs().max())}}
        if positions:
            changes.update(question_logprobs=lp[:q].tolist(), question_logp_mean=mu[:q].tolist(),
                           question_logp_std=sigma[:q].tolist())
        if self.ref is not None or self.ref_is_model:
            ref_lp = lp if self.ref_is_model else token_logprobs(self.ref, ids, predicted)[1]
            changes["ref_logprobs"] = ref_lp[q:].tolist()
            if positions:
                changes["ref_question_logprobs"] = ref_lp[:q].tolist()
        return dataclasses.replace(record, **changes)
