"""``generate_logprobs`` for lm-eval's stock ``hf`` model (HFLM): greedy generation that keeps the
log-probability of every generated token, captured while generating.

How: a forward hook on the model sees the raw logits of each decoding step (before any logits
processor), turns the last position into a log-softmax row, and holds that one [batch x vocab] row
until the next step's input shows which token was chosen; then it keeps one float per sequence
and drops the row. Nothing of size [tokens x vocab] is ever kept, and no text is re-tokenised.
"""

from __future__ import annotations

import logging

import torch
from tqdm import tqdm

from lm_eval_tbd.record import REQUEST_TYPE, GenerationRecord

log = logging.getLogger(__name__)

# Greedy choices are compared with the row maximum with this slack (float32 log-softmax).
_GREEDY_TOL = 1e-4


class LogprobCapture:
    """Forward hook collecting, per decoding step and sequence, the log-prob of the chosen token.

    Also records the p-weighted mean and standard deviation of log p over the vocabulary (the
    mu and sigma of Min-K%++) and the row maximum (to check that decoding was greedy).
    """

    def __init__(self, vocab_stats: bool = True) -> None:
        self.vocab_stats = vocab_stats
        self._row: torch.Tensor | None = None
        self.chosen_ids: list[torch.Tensor] = []
        self.chosen: list[torch.Tensor] = []
        self.row_max: list[torch.Tensor] = []
        self.means: list[torch.Tensor] = []
        self.stds: list[torch.Tensor] = []

    def _take(self, ids: torch.Tensor) -> None:
        row = self._row
        ids = ids.to(row.device)
        self.chosen_ids.append(ids)
        self.chosen.append(row.gather(-1, ids[:, None])[:, 0])
        self._row = None

    def hook(self, module, args, kwargs, output) -> None:
        logits = output.logits if hasattr(output, "logits") else output[0]
        if self._row is not None:
            input_ids = kwargs.get("input_ids", args[0] if args else None)
            if input_ids is None:
                raise RuntimeError("generate_logprobs: the model was called without input_ids during decoding")
            self._take(input_ids[:, -1])
        row = torch.log_softmax(logits[:, -1, :].float(), dim=-1)
        self.row_max.append(row.max(dim=-1).values)
        if self.vocab_stats:
            p = row.exp()
            mu = torch.special.xlogy(p, p).sum(-1)
            centred = torch.where(p > 0, row - mu[:, None], torch.zeros_like(row))
            self.means.append(mu)
            self.stds.append((p * centred.square()).sum(-1).sqrt())
        self._row = row

    def finish(self, generated: torch.Tensor) -> None:
        """Take the last step's token (no forward call follows it) and check the bookkeeping."""
        if self._row is not None:
            self._take(generated[:, -1])
        if len(self.chosen) != generated.shape[1]:
            raise RuntimeError(
                f"generate_logprobs: captured {len(self.chosen)} decoding steps for {generated.shape[1]} generated tokens"
            )
        if generated.shape[1] and not torch.equal(torch.stack(self.chosen_ids, 1).to(generated.device), generated):
            raise RuntimeError("generate_logprobs: captured token ids differ from the generated ones")


def _eos_ids(lm) -> set[int]:
    ids: set[int] = set()
    for source in (lm.tokenizer.eos_token_id, getattr(lm.model.generation_config, "eos_token_id", None)):
        if isinstance(source, int):
            ids.add(source)
        elif source is not None:
            ids.update(int(i) for i in source)
    if not ids:
        raise ValueError("generate_logprobs: the tokenizer and generation_config define no end-of-sequence token")
    return ids


def generate_logprobs(self, requests, disable_tqdm: bool = False) -> list[str]:
    """HFLM method answering ``generate_logprobs`` requests with ``GenerationRecord`` JSON strings.

    Each request's arguments are ``(context, gen_kwargs)`` with ``gen_kwargs["max_gen_toks"]``
    the number of tokens to generate. Decoding is greedy on the raw distribution and stops at an
    end-of-sequence token or at ``max_gen_toks``; no stop strings apply.
    """
    from lm_eval.models.utils import Collator

    if self.backend != "causal":
        raise NotImplementedError(f"generate_logprobs supports decoder-only (causal) models, not {self.backend!r}")
    model = self.model
    eos = _eos_ids(self)
    pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else min(eos)

    batch_size = self.batch_size
    if batch_size == "auto":
        batch_size = self._detect_batch_size()
    re_ords = Collator(
        [req.args for req in requests],
        # Longest first, so the first batch shows memory trouble early (as HFLM does).
        sort_fn=lambda req: (-len(self.tok_encode(req[0])), req[0]),
        group_by="gen_kwargs",
        group_fn=lambda req: req[1],
    )
    pbar = tqdm(total=len(requests), disable=disable_tqdm or self.rank != 0, desc=f"Running {REQUEST_TYPE} requests")
    results: list[str] = []
    for chunk in re_ords.get_batched(n=int(batch_size)):
        contexts, all_kwargs = zip(*chunk)
        max_new = int(all_kwargs[0]["max_gen_toks"])
        if max_new < 1:
            raise ValueError(f"generate_logprobs: max_gen_toks must be >= 1, got {max_new}")
        context_enc, attn_mask = self.tok_batch_encode(
            list(contexts), left_truncate_len=self.max_length - max_new, truncation=self.truncation
        )
        context_enc, attn_mask = context_enc.to(self.device), attn_mask.to(self.device)
        capture = LogprobCapture()
        handle = model.register_forward_hook(capture.hook, with_kwargs=True)
        try:
            with torch.no_grad(), torch.autocast(
                device_type=self.device.type,
                dtype=self.mixed_precision_dtype,
                enabled=self.mixed_precision_dtype is not None,
            ):
                out = model.generate(
                    input_ids=context_enc,
                    attention_mask=attn_mask,
                    max_new_tokens=max_new,
                    min_new_tokens=0,
                    do_sample=False,
                    num_beams=1,
                    # Neutralise processors a checkpoint's generation_config may switch on.
                    repetition_penalty=1.0,
                    no_repeat_ngram_size=0,
                    eos_token_id=sorted(eos),
                    pad_token_id=pad_id,
                    use_cache=True,
                )
        finally:
            handle.remove()
        generated = out[:, context_enc.shape[1] :]
        capture.finish(generated)
        results.extend(_records(self, capture, generated, eos, context_enc, attn_mask))
        pbar.update(len(chunk))
    pbar.close()
    return re_ords.get_original(results)


def _records(lm, capture: LogprobCapture, generated, eos, context_enc, attn_mask) -> list[str]:
    steps = generated.shape[1]
    empty = torch.empty(generated.shape[0], 0)
    stack = lambda xs: torch.stack(xs, 1).cpu() if xs else empty  # noqa: E731
    chosen, row_max = stack(capture.chosen), stack(capture.row_max)
    means, stds = stack(capture.means), stack(capture.stds)
    prompt_lens = attn_mask.sum(-1).tolist()
    out = []
    for b, ids in enumerate(generated.tolist()):
        end = next((i + 1 for i, t in enumerate(ids) if t in eos), steps)
        finish = "eos" if end and ids[end - 1] in eos else "length"
        lp = chosen[b, :end]
        # The hook saw the raw distribution; greedy decoding must have picked its maximum.
        off = torch.nonzero(lp < row_max[b, :end] - _GREEDY_TOL)
        if off.numel():
            raise RuntimeError(
                f"generate_logprobs: token {int(off[0, 0])} was not the greedy choice of the model's raw "
                "distribution; a logits processor from the checkpoint's generation_config changed decoding. "
                "TBD needs plain greedy decoding."
            )
        text_ids = ids[: end - 1] if finish == "eos" else ids[:end]
        out.append(
            GenerationRecord(
                token_ids=ids[:end],
                logprobs=lp.tolist(),
                finish_reason=finish,
                text=lm.tok_decode(text_ids, skip_special_tokens=True),
                prompt_n_tokens=int(prompt_lens[b]),
                vocab_logp_mean=means[b, :end].tolist() if capture.vocab_stats else None,
                vocab_logp_std=stds[b, :end].tolist() if capture.vocab_stats else None,
                backend="hf",
            ).to_json()
        )
    return out


def install() -> None:
    """Add ``generate_logprobs`` to lm-eval's HFLM (and so to ``--model hf``) if it lacks it."""
    from lm_eval.models.huggingface import HFLM

    if getattr(HFLM, REQUEST_TYPE, None) is not generate_logprobs:
        setattr(HFLM, REQUEST_TYPE, generate_logprobs)
