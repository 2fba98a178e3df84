"""A prompt that would be left-truncated is refused, naming the question, instead of being
scored as if it were the whole question."""

import pytest

from lm_eval_tbd.backends import PromptTooLongError, check_prompt_fits


def test_check_prompt_fits_names_question_lengths_and_options():
    check_prompt_fits(84, 16, 100)  # exactly fits
    check_prompt_fits(10_000, 16, None)  # no known limit: the server's business
    with pytest.raises(PromptTooLongError) as err:
        check_prompt_fits(85, 16, 100, doc={"id": "q7"})
    text = str(err.value)
    assert "question 'q7'" in text and "85 tokens" in text and "room for 84" in text and "max_length" in text
    with pytest.raises(PromptTooLongError, match="max_model_len"):
        check_prompt_fits(85, 16, 100, length_option="max_model_len")


@pytest.mark.slow
def test_hf_refuses_a_prompt_it_would_cut(tmp_path):
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    from lm_eval_tbd import patches
    from lm_eval_tbd.demo import make_problems
    from lm_eval_tbd.core.record import REQUEST_TYPE
    from lm_eval_tbd.demo.tiny_model import build_model, save_tiny_model, train_tokenizer

    patches.install()
    rows = make_problems(20, seed=0)
    tok = train_tokenizer([r["question"] for r in rows], vocab_size=300)
    path = save_tiny_model(build_model(tok, seed=0), tok, tmp_path / "m")
    lm = HFLM(pretrained=str(path), device="cpu", dtype="float32", batch_size=2, max_length=64)
    short, long_ = rows[0]["question"], " ".join(r["question"] for r in rows)
    reqs = [Instance(request_type=REQUEST_TYPE, doc={"id": qid}, idx=0,
                     arguments=(q, {"max_gen_toks": 8}, {"question_span": None}))
            for qid, q in (("short", short), ("long", long_))]
    with pytest.raises(PromptTooLongError, match="question 'long' has a prompt of"):
        lm.generate_logprobs(reqs)
    assert len(lm.generate_logprobs(reqs[:1])) == 1
