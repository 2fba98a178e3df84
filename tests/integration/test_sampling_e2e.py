"""Sampled decoding end to end: the real lm_eval CLI on a tiny model built here from generated
questions (no shared data), checked against an independent forward pass. The Gumbel-max
sampler's draws are checked in tests/unit/backends/test_hf.py."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from lm_eval_tbd.core.options import sample_seed
from lm_eval_tbd.core.record import GenerationRecord
from lm_eval_tbd.core.scores import tbd_score
from tests.helpers import offline_env


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny chat model and a 6-question file, both made here."""
    from lm_eval_tbd.demo import make_problems
    from lm_eval_tbd.demo.tiny_model import build_model, save_tiny_model, train_tokenizer

    d = tmp_path_factory.mktemp("sampling")
    rows = make_problems(40, seed=3)
    tok = train_tokenizer([r["question"] + " " + r["solution"] for r in rows], vocab_size=300)
    model_dir = save_tiny_model(build_model(tok, initializer_range=0.2, seed=0), tok, d / "model")
    questions = d / "q.jsonl"
    questions.write_text("".join(json.dumps({"id": f"q{i}", "question": r["question"], "label": i % 2}) + "\n"
                                 for i, r in enumerate(rows[:6])))
    return model_dir, questions


def lm_eval_sampled(tiny, out, *, seed=5, batch_size=4, samples=2):
    model_dir, questions = tiny
    meta = {"tbd_data_file": str(questions), "tbd_decoding": "sample", "tbd_samples": samples, "tbd_seed": seed,
            "tbd_max_tokens": 16}
    proc = subprocess.run(
        [sys.executable, "-m", "lm_eval", "--model", "hf", "--model_args", f"pretrained={model_dir},dtype=float32",
         "--tasks", "tbd_jsonl", "--metadata", json.dumps(meta), "--batch_size", str(batch_size), "--device", "cpu",
         "--apply_chat_template", "--log_samples", "--output_path", str(out)],
        env=offline_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (path,) = sorted(out.rglob("samples_tbd_jsonl_*.jsonl"))
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def sampled_out(tiny, tmp_path_factory):
    out = tmp_path_factory.mktemp("run_a")
    return lm_eval_sampled(tiny, out), out


@pytest.fixture(scope="module")
def sampled(sampled_out):
    return sampled_out[0]


def test_every_sample_is_logged_with_its_seed_and_the_score_is_their_mean(sampled):
    assert len(sampled) == 6
    for line in sampled:
        records = [GenerationRecord.from_json(r[0]) for r in line["resps"]]
        assert len(records) == 2
        assert [r.decoding for r in records] == ["sample", "sample"]
        assert [r.sample_index for r in records] == [0, 1]
        assert [r.seed for r in records] == [sample_seed(5, line["doc"]["question"], i) for i in (0, 1)]
        per = [tbd_score(r.logprobs, max_tokens=16) for r in records]
        assert line["tbd"] == pytest.approx(sum(per) / 2)
        assert line["tbd_sample_std"] == pytest.approx(abs(per[0] - per[1]) / 2)
    # two samples of one question differ somewhere (they are independent draws)
    assert any(GenerationRecord.from_json(line["resps"][0][0]).token_ids != GenerationRecord.from_json(line["resps"][1][0]).token_ids
               for line in sampled)


def test_sampled_logprobs_equal_an_independent_forward_pass_and_are_not_greedy(sampled, tiny):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny[0], dtype=torch.float32).eval()
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny[0])
    below_max = 0
    for line in sampled:
        prompt = tok(line["arguments"]["gen_args_0"]["arg_0"], add_special_tokens=False)["input_ids"]
        for resp in line["resps"]:
            rec = GenerationRecord.from_json(resp[0])
            ids = torch.tensor([prompt + rec.token_ids])
            with torch.no_grad():
                logp = torch.log_softmax(model(ids).logits[0].float(), -1)
            pos = torch.arange(len(prompt) - 1, ids.shape[1] - 1)
            expected = logp[pos, ids[0, len(prompt):]]
            assert torch.allclose(torch.tensor(rec.logprobs), expected, atol=1e-4)
            below_max += int((expected < logp[pos].max(-1).values - 1e-3).sum())
    assert below_max > 0, "temperature-1 samples of an untrained model pick non-maximal tokens"


def test_same_seed_same_tokens_at_any_batch_size_and_another_seed_differs(sampled, tiny, tmp_path):
    ids = lambda lines: [[GenerationRecord.from_json(r[0]).token_ids for r in line["resps"]] for line in lines]  # noqa: E731
    again = lm_eval_sampled(tiny, tmp_path / "b", batch_size=1)
    assert ids(again) == ids(sampled)
    other = lm_eval_sampled(tiny, tmp_path / "c", seed=6, samples=1)
    assert [x[0] for x in ids(other)] != [x[0] for x in ids(sampled)]


def test_report_and_run_reader_read_every_sample(sampled_out):
    from lm_eval_tbd.core.samples import load_run
    from lm_eval_tbd.core.scores import TBDParams

    out = sampled_out[1]
    run = load_run(out, "tbd_jsonl")
    for q in run.questions:
        assert len(q.records) == 2 and len(q.sample_scores) == 2
        assert q.tbd == pytest.approx(sum(s["tbd"] for s in q.sample_scores) / 2)
        assert q.spread("tbd") == pytest.approx(abs(q.sample_scores[0]["tbd"] - q.sample_scores[1]["tbd"]) / 2)
    assert [q.tbd for q in run.rescore(TBDParams(max_tokens=16)).questions] == pytest.approx([q.tbd for q in run.questions])
    first = run.first_sample(TBDParams(max_tokens=16))
    assert [q.tbd for q in first.questions] == pytest.approx([q.sample_scores[0]["tbd"] for q in run.questions])
    proc = subprocess.run([sys.executable, "-m", "lm_eval_tbd", "report", str(out)], capture_output=True, text=True,
                          env=offline_env())
    assert proc.returncode == 0, proc.stderr
    assert "tbd_jsonl" in proc.stdout
