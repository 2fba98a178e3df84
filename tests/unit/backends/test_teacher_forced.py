"""lm_eval_tbd.backends.teacher_forced: the scores that need the weights, added after generation
(as the vLLM backend does), against the hf backend's, which computes them while generating."""

import dataclasses

import pytest
from transformers import AutoTokenizer

from lm_eval_tbd.backends.teacher_forced import TeacherForced, question_positions
from tests.helpers import read_questions
from tests.unit.backends.test_hf import hflm, run

WEIGHT_FIELDS = ("vocab_logp_mean", "vocab_logp_std", "question_logprobs", "question_logp_mean",
                 "question_logp_std", "ref_logprobs", "ref_question_logprobs")


@pytest.fixture(scope="module")
def setup(tiny_model_dir, eos_model_dir, benchmark_data):
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    questions = read_questions(benchmark_data / "aime24.jsonl")[:4]
    contexts = [tok.apply_chat_template([{"role": "user", "content": q}], tokenize=False, add_generation_prompt=True)
                for q in questions]
    spans = [(c.rfind(q), c.rfind(q) + len(q)) for c, q in zip(contexts, questions)]
    hf = run(hflm(tiny_model_dir, 4), contexts, 12, spans, input_scores=True, ref_model=str(eos_model_dir))
    teacher = TeacherForced(str(tiny_model_dir), tok, dtype="float32", device="cpu", ref_path=str(eos_model_dir))
    return tok, contexts, spans, hf, teacher


def bare(record):
    """What an engine that sees no weights records: ids and their log-probs."""
    return dataclasses.replace(record, **dict.fromkeys(WEIGHT_FIELDS))


def test_the_pass_gives_what_hf_computes_while_generating(setup):
    tok, contexts, spans, hf, teacher = setup
    for ctx, span, rec in zip(contexts, spans, hf):
        prompt = tok(ctx)["input_ids"]
        positions = question_positions(tok, ctx, span, prompt)
        assert 0 < len(positions) < len(prompt) - 1  # the question's tokens, not the template's
        done = teacher.complete(bare(rec), prompt, positions=positions, input_scores=True)
        for name in WEIGHT_FIELDS:
            assert getattr(done, name) == pytest.approx(getattr(rec, name), abs=1e-4), name
        assert done.logprobs == rec.logprobs and done.token_ids == rec.token_ids
        assert done.extra["teacher_forced"] == "hf" and done.extra["teacher_max_abs_dlogp"] < 1e-4


def test_without_input_scores_only_the_generated_side(setup):
    tok, contexts, spans, hf, teacher = setup
    prompt = tok(contexts[0])["input_ids"]
    done = teacher.complete(bare(hf[0]), prompt, positions=question_positions(tok, contexts[0], spans[0], prompt))
    assert done.question_logprobs is None and done.ref_question_logprobs is None
    assert done.ref_logprobs == pytest.approx(hf[0].ref_logprobs, abs=1e-4)
    assert done.vocab_logp_mean == pytest.approx(hf[0].vocab_logp_mean, abs=1e-4)


def test_an_engine_disagreeing_with_the_teacher_shows(setup):
    tok, contexts, _, hf, teacher = setup
    shifted = dataclasses.replace(bare(hf[1]), logprobs=[lp - 0.5 for lp in hf[1].logprobs])
    done = teacher.complete(shifted, tok(contexts[1])["input_ids"])
    assert done.extra["teacher_max_abs_dlogp"] == pytest.approx(0.5, abs=1e-4)


def test_question_positions_need_the_engines_own_tokenisation(setup):
    tok, contexts, spans, _, _ = setup
    prompt = tok(contexts[0])["input_ids"]
    assert question_positions(tok, contexts[0], None, prompt) == []
    assert question_positions(tok, contexts[0], spans[0], prompt[1:]) == []  # ids it cannot reproduce


def test_the_model_as_its_own_reference_takes_one_pass(setup, tiny_model_dir, tmp_path):
    """The base model's pass of a before/after protocol: ref_path is the model's own folder (by
    another spelling), so no second model is loaded; the values equal a separate copy's."""
    import shutil

    tok, contexts, spans, hf, _ = setup
    copy = shutil.copytree(tiny_model_dir, tmp_path / "copy")
    own = TeacherForced(str(tiny_model_dir), tok, dtype="float32", device="cpu", ref_path=f"{tiny_model_dir}/./")
    other = TeacherForced(str(tiny_model_dir), tok, dtype="float32", device="cpu", ref_path=str(copy))
    assert own.ref is None and own.ref_is_model and other.ref is not None and not other.ref_is_model
    prompt = tok(contexts[2])["input_ids"]
    positions = question_positions(tok, contexts[2], spans[2], prompt)
    a = own.complete(bare(hf[2]), prompt, positions=positions, input_scores=True)
    b = other.complete(bare(hf[2]), prompt, positions=positions, input_scores=True)
    assert a.ref_logprobs == pytest.approx(b.ref_logprobs, abs=1e-6) and a.ref_logprobs is not None
    assert a.ref_question_logprobs == pytest.approx(b.ref_question_logprobs, abs=1e-6)
    assert a.ref_question_logprobs == pytest.approx(a.question_logprobs, abs=1e-6)
