"""lm_eval_tbd.backends.hf: generate_logprobs on lm-eval's real HFLM (the session's tiny models):
captured log-probs against an independent teacher-forced forward pass, batched (left-padded)
against batch size 1, stopping rules; and the Gumbel-max sampler's draws against the distribution
they come from."""

import math
from types import SimpleNamespace

import pytest
import torch
from lm_eval.api.instance import Instance
from lm_eval.models.huggingface import HFLM
from transformers import AutoModelForCausalLM, AutoTokenizer

from lm_eval_tbd import patches
from lm_eval_tbd.core.record import REQUEST_TYPE, GenerationRecord
from tests.helpers import read_questions

patches.install()


def hflm(path, batch_size):
    return HFLM(pretrained=str(path), device="cpu", dtype="float32", batch_size=batch_size)


def requests_for(contexts, max_gen_toks, spans=None, **gen):
    spans = spans or [None] * len(contexts)
    return [
        Instance(request_type=REQUEST_TYPE, doc={}, idx=0,
                 arguments=(c, {"max_gen_toks": max_gen_toks, **gen}, {"question_span": span}))
        for c, span in zip(contexts, spans)
    ]


def run(lm, contexts, max_gen_toks, spans=None, **gen):
    return [GenerationRecord.from_json(r) for r in lm.generate_logprobs(requests_for(contexts, max_gen_toks, spans, **gen))]


@pytest.fixture(scope="module")
def contexts(benchmark_data, tiny_model_dir):
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    questions = read_questions(benchmark_data / "aime24.jsonl")[:8]
    return [tok.apply_chat_template([{"role": "user", "content": q}], tokenize=False, add_generation_prompt=True) for q in questions]


@pytest.fixture(scope="module")
def batched(tiny_model_dir, contexts):
    return run(hflm(tiny_model_dir, 4), contexts, 24)


def test_batch_mixes_eos_and_length_finishes(batched):
    # precondition for the padding checks below: some rows stop early, some run to the limit
    reasons = {r.finish_reason for r in batched}
    assert reasons == {"eos", "length"}
    for r in batched:
        assert 1 <= r.n_tokens <= 24
        assert (r.finish_reason == "length") == (r.n_tokens == 24 and r.token_ids[-1] != 1)


def test_logprobs_equal_an_independent_forward_pass(tiny_model_dir, contexts, batched):
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    for ctx, rec in zip(contexts, batched):
        prompt = tok(ctx)["input_ids"]
        assert rec.prompt_n_tokens == len(prompt)
        ids = torch.tensor([prompt + rec.token_ids])
        with torch.no_grad():
            logp = torch.log_softmax(model(ids).logits[0].float(), -1)
        positions = torch.arange(len(prompt) - 1, ids.shape[1] - 1)
        expected = logp[positions, ids[0, len(prompt):]]
        assert torch.allclose(torch.tensor(rec.logprobs), expected, atol=1e-4), ctx[:40]
        # greedy: every generated token is the argmax of the teacher-forced distribution
        assert torch.equal(logp[positions].argmax(-1), ids[0, len(prompt):])
        # Min-K%++ statistics: p-weighted mean / std of log p over the vocabulary
        p = logp[positions].exp()
        mu = (p * logp[positions]).sum(-1)
        sigma = (p * (logp[positions] - mu[:, None]) ** 2).sum(-1).sqrt()
        assert torch.allclose(torch.tensor(rec.vocab_logp_mean), mu, atol=1e-4)
        assert torch.allclose(torch.tensor(rec.vocab_logp_std), sigma, atol=1e-4)


def test_batched_equals_batch_size_one(tiny_model_dir, contexts, batched):
    single = run(hflm(tiny_model_dir, 1), contexts, 24)
    for a, b in zip(batched, single):
        assert a.token_ids == b.token_ids
        assert a.finish_reason == b.finish_reason
        assert a.logprobs == pytest.approx(b.logprobs, abs=1e-5)


def test_generation_stops_at_the_scored_length(tiny_model_dir, contexts):
    recs = run(hflm(tiny_model_dir, 4), contexts, 5)
    assert max(r.n_tokens for r in recs) == 5


def test_model_that_emits_eos_at_once(eos_model_dir, contexts):
    recs = run(hflm(eos_model_dir, 2), contexts[:2], 16)
    for r in recs:
        assert r.token_ids == [1] and r.finish_reason == "eos" and r.text == ""
        assert len(r.logprobs) == 1 and math.isfinite(r.logprobs[0])


def teacher_forced(model, ids):
    with torch.no_grad():
        return torch.log_softmax(model(torch.tensor([ids])).logits[0].float(), -1)


def test_question_logprobs_and_reference_model(tiny_model_dir, eos_model_dir, benchmark_data, contexts):
    questions = read_questions(benchmark_data / "aime24.jsonl")[:4]
    spans = [(c.rfind(q), c.rfind(q) + len(q)) for c, q in zip(contexts, questions)]
    recs = run(hflm(tiny_model_dir, 4), contexts[:4], 12, spans, input_scores=True, ref_model=str(eos_model_dir))
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    student = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    ref = AutoModelForCausalLM.from_pretrained(eos_model_dir, dtype=torch.float32).eval()
    for ctx, (start, end), rec in zip(contexts, spans, recs):
        enc = tok(ctx, return_offsets_mapping=True)
        prompt = enc["input_ids"]
        positions = [i for i, (a, z) in enumerate(enc["offset_mapping"]) if i > 0 and a < end and z > start]
        # the question's tokens only: not the chat template around it
        assert 0 < len(positions) < len(prompt) - 1
        logp = teacher_forced(student, prompt)
        expected = logp[torch.tensor(positions) - 1, torch.tensor(prompt)[positions]]
        assert torch.allclose(torch.tensor(rec.question_logprobs), expected, atol=1e-4)
        assert len(rec.question_logp_mean) == len(rec.question_logp_std) == len(positions)
        # reference log-probs of the student's own generated ids, left padding included
        ref_logp = teacher_forced(ref, prompt + rec.token_ids)
        pos = torch.arange(len(prompt) - 1, len(prompt) + rec.n_tokens - 1)
        assert torch.allclose(torch.tensor(rec.ref_logprobs), ref_logp[pos, torch.tensor(rec.token_ids)], atol=1e-4)
        # the question's tokens under the reference model, from the same teacher-forced pass
        ref_q = ref_logp[torch.tensor(positions) - 1, torch.tensor(prompt)[positions]]
        assert torch.allclose(torch.tensor(rec.ref_question_logprobs), ref_q, atol=1e-4)
    # off by default: nothing extra recorded
    plain = run(hflm(tiny_model_dir, 4), contexts[:2], 4)
    assert plain[0].question_logprobs is None and plain[0].ref_logprobs is None
    assert plain[0].ref_question_logprobs is None


def test_reference_model_with_another_tokenizer_is_rejected(tiny_model_dir, tmp_path, contexts):
    from lm_eval_tbd.demo.tiny_model import build_model, save_tiny_model, train_tokenizer

    other_tok = train_tokenizer(["completely different text " * 20], vocab_size=300)
    other = save_tiny_model(build_model(other_tok), other_tok, tmp_path / "other")
    with pytest.raises(ValueError, match="different tokenizer"):
        run(hflm(tiny_model_dir, 2), contexts[:2], 4, ref_model=str(other))


# ---- sampled decoding: the Gumbel-max sampler ----


def test_gumbel_sampler_draws_follow_the_raw_distribution():
    from lm_eval_tbd.backends.hf import GumbelSampler

    p = torch.tensor([[0.6, 0.3, 0.1, 0.0]])
    row = torch.log(p)
    counts = torch.zeros(4)
    n = 3000
    for seed in range(n):
        sampler = GumbelSampler([seed], SimpleNamespace(_row=row), 1)
        forced = sampler(None, torch.zeros(1, 4))
        choice = int(sampler.expected[0, 0])
        assert forced[0, choice] == 0 and torch.isinf(forced[0]).sum() == 3
        counts[choice] += 1
    freq = counts / n
    # binomial standard error at p=0.6, n=3000 is ~0.009: 4 SE bounds
    assert torch.allclose(freq, p[0], atol=0.036), freq
    assert counts[3] == 0  # probability 0 is never drawn
    # the same seed gives the same stream; streams are per row, not per batch
    a = GumbelSampler([1, 2], SimpleNamespace(_row=row.repeat(2, 1)), 5)
    b = GumbelSampler([2], SimpleNamespace(_row=row), 5)
    for step in range(5):
        assert a.expected.shape == (2, step)  # [batch x steps so far]
        a(None, torch.zeros(2, 4))
        b(None, torch.zeros(1, 4))
    assert a.expected[1].tolist() == b.expected[0].tolist()
    # its buffer holds max_new steps: one more is an error, not a silent overwrite
    with pytest.raises(RuntimeError, match="more than max_new_tokens=5"):
        a(None, torch.zeros(2, 4))


# ---- the capture's per-step buffers ----


def capture_generate(model_dir, contexts, max_new, capture_steps):
    """Plain ``generate`` (greedy, left-padded batch) with a LogprobCapture sized ``capture_steps``."""
    from lm_eval_tbd.backends.hf import LogprobCapture

    tok = AutoTokenizer.from_pretrained(model_dir, padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    enc = tok(contexts, return_tensors="pt", padding=True)
    capture = LogprobCapture(capture_steps)
    handle = model.register_forward_hook(capture.hook, with_kwargs=True)
    try:
        with torch.no_grad():
            out = model.generate(**enc, max_new_tokens=max_new, do_sample=False, eos_token_id=tok.eos_token_id,
                                 pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id)
    finally:
        handle.remove()
    return capture, out[:, enc["input_ids"].shape[1]:]


@pytest.mark.parametrize("model", ["tiny", "eos"])
def test_capture_buffers_are_trimmed_to_the_steps_taken(model, tiny_model_dir, eos_model_dir, contexts):
    # EOS ends generation before max_new (every row at once with the EOS model): the buffers,
    # allocated for 16 steps, are cut to the generated tokens, and the ids are those generated.
    capture, generated = capture_generate(tiny_model_dir if model == "tiny" else eos_model_dir, contexts[:4], 16, 16)
    capture.finish(generated)
    steps = generated.shape[1]
    assert steps < 16 if model == "eos" else 1 <= steps <= 16
    for values in (capture.chosen_ids, capture.chosen, capture.row_max, capture.means, capture.stds):
        assert values.shape == (4, steps)
    assert torch.equal(capture.chosen_ids, generated)
    assert torch.isfinite(capture.chosen).all() and (capture.chosen <= capture.row_max).all()
    assert capture._row is None and capture._row_buffer is None  # the [batch x vocab] row is released


def test_capture_refuses_more_steps_than_its_buffers(tiny_model_dir, contexts):
    with pytest.raises(RuntimeError, match="more than max_new_tokens=3"):
        capture_generate(tiny_model_dir, contexts, 8, 3)
