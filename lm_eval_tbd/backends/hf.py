"""``generate_logprobs`` for lm-eval's stock ``hf`` model (HFLM): greedy or sampled generation
that keeps the log-probability of every generated token, captured while generating.

How: a forward hook on the model sees the raw logits of each decoding step (before any logits
processor), turns the last position into a log-softmax row, and holds that one [batch x vocab] row
until the next step's input shows which token was chosen; then it keeps one float per sequence
and drops the row. Nothing of size [tokens x vocab] is ever kept, and no text is re-tokenised.
"""

from __future__ import annotations

import inspect
import logging

import torch
from tqdm import tqdm

from lm_eval_tbd.backends import check_prompt_fits, scored_length
from lm_eval_tbd.core.record import GREEDY_TOLERANCE, REQUEST_TYPE, GenerationRecord

log = logging.getLogger(__name__)



def vocab_stats(row: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """p-weighted mean and standard deviation of log p over the vocabulary, per row of a
    log-softmax tensor [..., vocab] (the mu and sigma of Min-K%++)."""
    p = row.exp()
    mu = torch.special.xlogy(p, p).sum(-1)
    centred = torch.where(p > 0, row - mu[..., None], torch.zeros_like(row))
    return mu, (p * centred.square()).sum(-1).sqrt()


class LogprobCapture:
    """Forward hook collecting, per decoding step and sequence, the log-prob of the chosen token.

    Also records the p-weighted mean and standard deviation of log p over the vocabulary (the
    mu and sigma of Min-K%++) and the row maximum (to check that decoding was greedy).
    """

    def __init__(self, vocab_stats: bool = True, prompt_positions: list[list[int]] | None = None) -> None:
        self.vocab_stats = vocab_stats
        # Per sequence, the padded prompt positions whose token log-probs to keep (the question's
        # tokens); read from the prefill call's logits, which then cover the whole prompt.
        self.prompt_positions = prompt_positions
        self.prompt: list[tuple[list[float], list[float], list[float]] | None] = []
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
        input_ids = kwargs.get("input_ids", args[0] if args else None)
        if self._row is not None:
            if input_ids is None:
                raise RuntimeError("generate_logprobs: the model was called without input_ids during decoding")
            self._take(input_ids[:, -1])
        elif self.prompt_positions is not None and not self.chosen:
            self._prompt(logits, input_ids)
        row = torch.log_softmax(logits[:, -1, :].float(), dim=-1)
        self.row_max.append(row.max(dim=-1).values)
        if self.vocab_stats:
            mu, sigma = vocab_stats(row)
            self.means.append(mu)
            self.stds.append(sigma)
        self._row = row

    def _prompt(self, logits: torch.Tensor, input_ids: torch.Tensor) -> None:
        if logits.shape[1] != input_ids.shape[1]:
            raise RuntimeError("generate_logprobs: prefill logits do not cover the prompt (logits_to_keep ignored?)")
        for b, positions in enumerate(self.prompt_positions):
            if not positions:
                self.prompt.append(None)
                continue
            pos = torch.tensor(positions, device=logits.device)
            # Only the question's rows, one sequence at a time: never a [batch x prompt x vocab] copy.
            rows = torch.log_softmax(logits[b, pos - 1].float(), dim=-1)
            lp = rows.gather(-1, input_ids[b, pos][:, None])[:, 0]
            mu, sigma = vocab_stats(rows)
            self.prompt.append((lp.tolist(), mu.tolist(), sigma.tolist()))

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


class GumbelSampler:
    """A logits processor that turns greedy ``generate`` into sampling at temperature 1 from the
    raw distribution, with one seeded random stream per sequence.

    argmax(log p + g) with g ~ Gumbel(0, 1) i.i.d. per vocabulary entry is an exact draw from p
    (the Gumbel-max trick). The draw is made on the capture's raw row (the model's own
    distribution, whatever processors ran before), and noted so the backend can check that the
    generated id is that draw. Per-row generators make a question's sample depend only on its own
    seed, not on batching or the other questions.
    """

    def __init__(self, seeds: list[int], capture: LogprobCapture) -> None:
        self.generators = [torch.Generator().manual_seed(int(s)) for s in seeds]
        self.capture = capture
        self.expected: list[torch.Tensor] = []

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        vocab = scores.shape[-1]
        # Uniforms on CPU from each row's generator (reproducible on any device), kept away from 0
        # and 1 so the double log stays finite; the draw is made in float64 on the raw row.
        u = torch.stack([torch.rand(vocab, generator=g, dtype=torch.float64) for g in self.generators])
        gumbel = -torch.log(-torch.log(u.clamp(1e-300, 1 - 1e-16)))
        raw = self.capture._row
        if raw is None or raw.shape != scores.shape:
            raise RuntimeError("generate_logprobs: the sampler found no raw distribution for this step")
        choice = (raw.detach().cpu().double() + gumbel).argmax(-1).to(scores.device)
        self.expected.append(choice)
        # Force the draw (greedy selection then takes it exactly, with no float32 near-tie flips);
        # a processor running after this one that changes it is caught by the backend's check.
        forced = torch.full_like(scores, float("-inf"))
        forced.scatter_(-1, choice[:, None], 0.0)
        return forced


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


def _question_positions(lm, contexts, extras, context_enc, attn_mask) -> list[list[int]]:
    """Padded positions of each context's question tokens (those overlapping the question's
    character span), or [] where the span is unknown or the tokenisation cannot be matched."""
    out = []
    width = context_enc.shape[1]
    for b, (ctx, extra) in enumerate(zip(contexts, extras)):
        span = (extra or {}).get("question_span")
        row = context_enc[b][attn_mask[b].bool()].tolist()
        positions: list[int] = []
        if span:
            start, end = span
            for special in (None, False, True):
                kwargs = {} if special is None else {"add_special_tokens": special}
                enc = lm.tokenizer(ctx, return_offsets_mapping=True, **kwargs)
                if enc["input_ids"] == row:
                    pad = width - len(row)
                    positions = [pad + i for i, (a, z) in enumerate(enc["offset_mapping"])
                                 if i > 0 and a < end and z > start]
                    break
        out.append(positions)
    return out


def _reference_model(lm, path: str):
    """The reference model (e.g. the base model before distillation), loaded once per HFLM."""
    cached = getattr(lm, "_tbd_reference", None)
    if cached is not None and cached[0] == path:
        return cached[1]
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        ref_vocab = AutoTokenizer.from_pretrained(path).get_vocab()
    except OSError as err:
        raise ValueError(f"tbd_ref_model: cannot load a tokenizer from {path!r} ({err})") from None
    if ref_vocab != lm.tokenizer.get_vocab():
        raise ValueError(f"tbd_ref_model {path!r} has a different tokenizer from the evaluated model; "
                         "calibration scores the same token ids under both, so the vocabularies must match")
    ref = AutoModelForCausalLM.from_pretrained(path, dtype=lm.model.dtype).to(lm.device).eval()
    lm._tbd_reference = (path, ref)
    return ref


def _reference_logprobs(ref, sequences, attn_mask, n_prompt: int,
                        question_positions: list[list[int]] | None = None) -> tuple[torch.Tensor, list]:
    """Log-probs [batch, generated] of the generated ids under ``ref``, teacher-forced; and, per
    sequence, the log-probs of its question tokens (``question_positions``, padded prompt
    positions as the capture uses them) under ``ref`` from the same forward pass, or None."""
    steps = sequences.shape[1] - n_prompt
    mask = torch.cat([attn_mask, torch.ones_like(sequences[:, n_prompt:])], dim=1)
    # Explicit positions: with left padding a plain forward would shift them.
    position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
    out, questions = [], []
    with torch.no_grad():
        for b in range(sequences.shape[0]):  # one row at a time bounds the [tokens x vocab] logits
            logits = ref(input_ids=sequences[b : b + 1], attention_mask=mask[b : b + 1],
                         position_ids=position_ids[b : b + 1]).logits[0]
            gen = logits[n_prompt - 1 : -1].float()
            out.append(torch.log_softmax(gen, -1).gather(-1, sequences[b, n_prompt:, None])[:, 0])
            positions = question_positions[b] if question_positions else None
            if positions:
                pos = torch.tensor(positions, device=logits.device)
                rows = torch.log_softmax(logits[pos - 1].float(), -1)
                questions.append(rows.gather(-1, sequences[b, pos][:, None])[:, 0].tolist())
            else:
                questions.append(None)
            del logits, gen
    return (torch.stack(out) if out else torch.empty(0, steps)), questions


def generate_logprobs(self, requests, disable_tqdm: bool = False) -> list[str]:
    """HFLM method answering ``generate_logprobs`` requests with ``GenerationRecord`` JSON strings.

    Each request's arguments are ``(context, gen_kwargs[, extra])``: ``gen_kwargs["max_gen_toks"]``
    tokens are generated; ``gen_kwargs["input_scores"]`` (default False) also records the
    question's prompt-token log-probs, whose character span in ``context`` is
    ``extra["question_span"]``; ``gen_kwargs["ref_model"]`` (a path) scores the generated ids
    under that reference model too. ``gen_kwargs["decoding"]`` is "greedy" (the default: the raw
    distribution's maximum) or "sample" (a draw from the raw distribution at temperature 1, seeded
    per request by ``extra["seed"]``). Generation stops at an end-of-sequence token or at
    ``max_gen_toks``; no stop strings apply.
    """
    from lm_eval.models.utils import Collator

    if self.backend != "causal":
        raise NotImplementedError(f"generate_logprobs supports decoder-only (causal) models, not {self.backend!r}")
    model = self.model
    eos = _eos_ids(self)
    pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else min(eos)

    # Refuse, before generating anything, a prompt that would be left-truncated.
    for req in requests:
        check_prompt_fits(len(self.tok_encode(req.args[0])), scored_length(req.args[1], self.max_length),
                          self.max_length, doc=req.doc)

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
        contexts, all_kwargs = [c[0] for c in chunk], [c[1] for c in chunk]
        extras = [c[2] if len(c) > 2 else None for c in chunk]
        gen = all_kwargs[0]
        max_new = scored_length(gen, self.max_length)
        context_enc, attn_mask = self.tok_batch_encode(
            list(contexts), left_truncate_len=self.max_length - max_new, truncation=self.truncation
        )
        context_enc, attn_mask = context_enc.to(self.device), attn_mask.to(self.device)
        input_scores = bool(gen.get("input_scores"))
        extra_kwargs = {}
        positions = None
        if input_scores:
            positions = _question_positions(self, contexts, extras, context_enc, attn_mask)
            if "logits_to_keep" in inspect.signature(model.forward).parameters:
                extra_kwargs["logits_to_keep"] = 0  # prefill returns the whole prompt's logits
        capture = LogprobCapture(prompt_positions=positions)
        sampler = None
        decoding = gen.get("decoding", "greedy")
        if decoding == "sample":
            seeds = [(e or {}).get("seed") for e in extras]
            if any(s is None for s in seeds):
                raise ValueError("generate_logprobs: sampled decoding needs a seed per request (extra['seed'])")
            from transformers import LogitsProcessorList

            sampler = GumbelSampler(seeds, capture)
            extra_kwargs["logits_processor"] = LogitsProcessorList([sampler])
        elif decoding != "greedy":
            raise ValueError(f"generate_logprobs: unknown decoding {decoding!r}")
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
                    # Sampling is the Gumbel processor over greedy selection (seeded per row).
                    do_sample=False,
                    num_beams=1,
                    # Neutralise processors a checkpoint's generation_config may switch on.
                    repetition_penalty=1.0,
                    no_repeat_ngram_size=0,
                    eos_token_id=sorted(eos),
                    pad_token_id=pad_id,
                    use_cache=True,
                    **extra_kwargs,
                )
        finally:
            handle.remove()
        generated = out[:, context_enc.shape[1] :]
        capture.finish(generated)
        ref_lp = ref_q = None
        if gen.get("ref_model"):
            ref_lp, ref_q = _reference_logprobs(_reference_model(self, gen["ref_model"]), out, attn_mask,
                                                context_enc.shape[1], positions)
            ref_lp = ref_lp.cpu()
        results.extend(_records(self, capture, generated, eos, context_enc, attn_mask, ref_lp, sampler, extras, ref_q))
        pbar.update(len(chunk))
    pbar.close()
    return re_ords.get_original(results)


def _records(lm, capture: LogprobCapture, generated, eos, context_enc, attn_mask, ref_lp=None, sampler=None,
             extras=None, ref_q=None) -> list[str]:
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
        if sampler is None:
            # The hook saw the raw distribution; greedy decoding must have picked its maximum.
            off = torch.nonzero(lp < row_max[b, :end] - GREEDY_TOLERANCE)
            if off.numel():
                raise RuntimeError(
                    f"generate_logprobs: token {int(off[0, 0])} was not the greedy choice of the model's raw "
                    "distribution; a logits processor from the checkpoint's generation_config changed decoding. "
                    "TBD needs plain greedy decoding."
                )
        else:
            # Each sampled id must be the Gumbel-max draw from the raw distribution (so its logged
            # log-prob, gathered from that distribution, is the raw log-prob of a true sample).
            expected = torch.stack(sampler.expected, 1)[b, :end].cpu().tolist() if sampler.expected else []
            off = next((i for i, (a, e) in enumerate(zip(ids[:end], expected)) if a != e), None)
            if off is not None or len(expected) != end or not torch.isfinite(lp).all():
                raise RuntimeError(
                    f"generate_logprobs: sampled token {off} is not the draw from the model's raw distribution; a "
                    "logits processor from the checkpoint's generation_config changed decoding."
                )
        extra = (extras[b] if extras else None) or {}
        text_ids = ids[: end - 1] if finish == "eos" else ids[:end]
        question = capture.prompt[b] if capture.prompt else None
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
                question_logprobs=question[0] if question else None,
                question_logp_mean=question[1] if question else None,
                question_logp_std=question[2] if question else None,
                ref_logprobs=ref_lp[b, :end].tolist() if ref_lp is not None else None,
                ref_question_logprobs=ref_q[b] if ref_q and question else None,
                decoding="greedy" if sampler is None else "sample",
                seed=extra.get("seed") if sampler is not None else None,
                sample_index=extra.get("sample_index") if sampler is not None else None,
            ).to_json()
        )
    return out
