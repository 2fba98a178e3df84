"""A prompt that would be left-truncated is refused by the hf backend on a real (tiny) model, naming
the question, instead of being scored as if it were the whole question."""

import pytest

from lm_eval_tbd.backends import PromptTooLongError


def test_hf_refuses_a_prompt_it_would_cut(tmp_path):
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    from lm_eval_tbd import patches
    from lm_eval_tbd.core.record import REQUEST_TYPE
    from lm_eval_tbd.demo import make_problems
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
