"""``generate_logprobs`` for lm-eval's stock ``hf`` model (HFLM): greedy or sampled generation
that keeps the log-probability of every generated token, captured while generating.

How: a forward hook on the model sees the raw logits of each decoding step (before any logits
processor), turns the last position into a log-softmax row, and holds that one [batch x vocab] row
until the next step's input shows which token was chosen; then it keeps one float per sequence
and drops the row. Nothing of size [tokens x vocab] is ever kept, and no text is re-tokenised.

Memory: the per-step values go into [batch x max_new_tokens] buffers allocated once, and the
[batch x vocab] work of each step reuses buffers too. Lists of many small per-step tensors,
interleaved with large transient [batch x vocab] ones, fragmented the heap: on a 49K vocabulary
the process's peak RSS grew 7% (greedy) to 15% (sampled) over plain generation.
"""

from __future__ import annotations

import inspect
import logging

import torch
from tqdm import tqdm

from lm_eval_tbd.backends import check_prompt_fits, cpu_allocator, scored_length
from lm_eval_tbd.backends.teacher_forced import load_reference, question_positions, token_logprobs, vocab_stats
from lm_eval_tbd.core.record import GREEDY_TOLERANCE, REQUEST_TYPE, GenerationRecord

# lm-eval's and transformers' names are imported in the functions that use them: lm-eval's hf
# module imports this one through the patch table (lm_eval_tbd.patches) while it loads, so
# importing lm-eval back at module level would be circular.

log = logging.getLogger(__name__)


def _rows_at(logits: torch.Tensor, ids: torch.Tensor, positions: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """For one sequence (``logits`` [seq x vocab], ``ids`` [seq]): the log-softmax rows that
    predict the tokens at ``positions``, and those tokens' log-probs."""
    pos = torch.tensor(positions, device=logits.device)
    rows = torch.log_softmax(logits[pos - 1].float(), dim=-1)
    return rows, rows.gather(-1, ids[pos][:, None])[:, 0]


class LogprobCapture:
    """Forward hook collecting, per decoding step and sequence, the log-prob of the chosen token.

    Also records the p-weighted mean and standard deviation of log p over the vocabulary (the
    mu and sigma of Min-K%++) and the row maximum (to check that decoding was greedy).

    The per-step values are written into [batch x ``max_new``] buffers (allocated at the first
    call, on the logits' device) indexed by step: ``chosen_ids``, ``chosen``, ``row_max``,
    ``means``, ``stds``. ``finish`` trims them to the steps taken.
    """

    def __init__(self, max_new: int, vocab_stats: bool = True, prompt_positions: list[list[int]] | None = None) -> None:
        self.max_new = max_new
        self.vocab_stats = vocab_stats
        # Per sequence, the padded prompt positions whose token log-probs to keep (the question's
        # tokens); read from the prefill call's logits, which then cover the whole prompt.
        self.prompt_positions = prompt_positions
        self.prompt: list[tuple[list[float], list[float], list[float]] | None] = []
        self.steps = 0  # rows seen (forward calls)
        self.taken = 0  # of which the chosen token is known
        self._row: torch.Tensor | None = None  # the last row, in _row_buffer
        self._row_buffer: torch.Tensor | None = None
        self.chosen_ids: torch.Tensor | None = None
        self.chosen: torch.Tensor | None = None
        self.row_max: torch.Tensor | None = None
        self.means: torch.Tensor | None = None
        self.stds: torch.Tensor | None = None

    def _allocate(self, batch: int, device: torch.device) -> None:
        # Preallocated rather than appended per step: see the module docstring (fragmentation).
        values = lambda: torch.empty(batch, self.max_new, device=device)  # noqa: E731
        self.chosen_ids = torch.empty(batch, self.max_new, dtype=torch.long, device=device)
        self.chosen, self.row_max = values(), values()
        if self.vocab_stats:
            self.means, self.stds = values(), values()

    def _take(self, ids: torch.Tensor) -> None:
        row = self._row
        ids = ids.to(row.device)
        self.chosen_ids[:, self.taken] = ids
        self.chosen[:, self.taken] = row.gather(-1, ids[:, None])[:, 0]
        self.taken += 1
        self._row = None

    def hook(self, module, args, kwargs, output) -> None:
        logits = output.logits if hasattr(output, "logits") else output[0]
        input_ids = kwargs.get("input_ids", args[0] if args else None)
        if self._row is not None:
            if input_ids is None:
                raise RuntimeError("generate_logprobs: the model was called without input_ids during decoding")
            self._take(input_ids[:, -1])
        elif self.prompt_positions is not None and not self.taken:
            self._prompt(logits, input_ids)
        if self.steps == self.max_new:
            raise RuntimeError(f"generate_logprobs: more than max_new_tokens={self.max_new} decoding steps")
        last = logits[:, -1, :].float()
        if self._row_buffer is None:
            self._row_buffer = torch.empty_like(last, memory_format=torch.contiguous_format)
            self._allocate(last.shape[0], last.device)
        row = torch.log_softmax(last, dim=-1, out=self._row_buffer)
        step = self.steps
        self.row_max[:, step] = row.max(dim=-1).values
        if self.vocab_stats:
            self.means[:, step], self.stds[:, step] = vocab_stats(row)
        self.steps += 1
        self._row = row

    def _prompt(self, logits: torch.Tensor, input_ids: torch.Tensor) -> None:
        if logits.shape[1] != input_ids.shape[1]:
            raise RuntimeError("generate_logprobs: prefill logits do not cover the prompt (logits_to_keep ignored?)")
        for b, positions in enumerate(self.prompt_positions):
            if not positions:
                self.prompt.append(None)
                continue
            # Only the question's rows, one sequence at a time: never a [batch x prompt x vocab] copy.
            rows, lp = _rows_at(logits[b], input_ids[b], positions)
            mu, sigma = vocab_stats(rows)
            self.prompt.append((lp.tolist(), mu.tolist(), sigma.tolist()))

    def finish(self, generated: torch.Tensor) -> None:
        """Take the last step's token (no forward call follows it), check the bookkeeping, trim the
        buffers to the steps taken and release the row."""
        if self._row is not None:
            self._take(generated[:, -1])
        self._row_buffer = None
        if self.taken != generated.shape[1]:
            raise RuntimeError(
                f"generate_logprobs: captured {self.taken} decoding steps for {generated.shape[1]} generated tokens"
            )
        if self.chosen is None:  # no forward call at all
            self._allocate(generated.shape[0], generated.device)
        for name in ("chosen_ids", "chosen", "row_max", "means", "stds"):
            if getattr(self, name) is not None:
                setattr(self, name, getattr(self, name)[:, : self.taken])
        if self.taken and not torch.equal(self.chosen_ids.to(generated.device), generated):
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

    def __init__(self, seeds: list[int], capture: LogprobCapture, max_new: int) -> None:
        self.generators = [torch.Generator().manual_seed(int(s)) for s in seeds]
        self.capture = capture
        # The draws [batch x max_new] on CPU, and the float64 noise of one step, both reused
        # (rather than new per step: fragmentation, see the module docstring).
        self._expected = torch.empty(len(seeds), max_new, dtype=torch.long)
        self._noise: torch.Tensor | None = None
        self.steps = 0

    @property
    def expected(self) -> torch.Tensor:
        """The draws so far, [batch x steps] (CPU)."""
        return self._expected[:, : self.steps]

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        vocab = scores.shape[-1]
        if self._noise is None or self._noise.shape[-1] != vocab:
            self._noise = torch.empty(len(self.generators), vocab, dtype=torch.float64)
        if self.steps == self._expected.shape[1]:
            raise RuntimeError(f"generate_logprobs: more than max_new_tokens={self._expected.shape[1]} sampling steps")
        # Uniforms on CPU from each row's generator (reproducible on any device), kept away from 0
        # and 1 so the double log stays finite; the draw is made in float64 on the raw row.
        gumbel = self._noise
        for g, out in zip(self.generators, gumbel):
            torch.rand(vocab, generator=g, dtype=torch.float64, out=out)
        gumbel.clamp_(1e-300, 1 - 1e-16).log_().neg_().log_().neg_()
        raw = self.capture._row
        if raw is None or raw.shape != scores.shape:
            raise RuntimeError("generate_logprobs: the sampler found no raw distribution for this step")
        choice = gumbel.add_(raw.detach().cpu()).argmax(-1)
        self._expected[:, self.steps] = choice
        self.steps += 1
        # Force the draw (greedy selection then takes it exactly, with no float32 near-tie flips);
        # a processor running after this one that changes it is caught by the backend's check.
        # In place: ``generate`` passes its own float32 copy of the step's logits.
        return scores.fill_(float("-inf")).scatter_(-1, choice.to(scores.device)[:, None], 0.0)


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
        row = context_enc[b][attn_mask[b].bool()].tolist()
        pad = width - len(row)
        out.append([pad + i for i in question_positions(lm.tokenizer, ctx, (extra or {}).get("question_span"), row)])
    return out


def _reference_model(lm, path: str):
    """The reference model (e.g. the base model before distillation), loaded once per HFLM."""
    cached = getattr(lm, "_tbd_reference", None)
    if cached is not None and cached[0] == path:
        return cached[1]
    ref = load_reference(path, lm.tokenizer, dtype=lm.model.dtype, device=lm.device)
    lm._tbd_reference = (path, ref)
    return ref


def _reference_logprobs(ref, sequences, attn_mask, n_prompt: int,
                        question_positions: list[list[int]] | None = None) -> tuple[torch.Tensor, list]:
    """Log-probs [batch, generated] of the generated ids under ``ref``, teacher-forced; and, per
    sequence, the log-probs of its question tokens (``question_positions``, padded prompt
    positions as the capture uses them) under ``ref`` from the same forward pass, or None. One
    unpadded sequence at a time, through :func:`token_logprobs`."""
    steps = sequences.shape[1] - n_prompt
    out, questions = [], []
    for b in range(sequences.shape[0]):
        prompt = sequences[b, :n_prompt][attn_mask[b].bool()].tolist()
        pad = n_prompt - len(prompt)
        ids = prompt + sequences[b, n_prompt:].tolist()
        positions = [p - pad for p in (question_positions[b] if question_positions else [])]
        lp = token_logprobs(ref, ids, positions + list(range(len(prompt), len(ids))))[1]
        out.append(lp[len(positions):])
        questions.append(lp[: len(positions)].tolist() if positions else None)
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

    if self.device.type == "cpu" and cpu_allocator.enabled():
        cpu_allocator.tune_this_process()  # pages reused across decoding steps (see that module)
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
        capture = LogprobCapture(max_new, prompt_positions=positions)
        sampler = None
        decoding = gen.get("decoding", "greedy")
        if decoding == "sample":
            seeds = [(e or {}).get("seed") for e in extras]
            if any(s is None for s in seeds):
                raise ValueError("generate_logprobs: sampled decoding needs a seed per request (extra['seed'])")
            from transformers import LogitsProcessorList

            sampler = GumbelSampler(seeds, capture, max_new)
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
    # [batch x steps], trimmed by capture.finish
    chosen, row_max = capture.chosen.cpu(), capture.row_max.cpu()
    means, stds = (capture.means.cpu(), capture.stds.cpu()) if capture.vocab_stats else (None, None)
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
            expected = sampler.expected[b, :end].tolist()
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
