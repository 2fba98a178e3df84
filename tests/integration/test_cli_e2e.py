"""The real `lm_eval` command on a tiny locally built transformers model, offline."""

import json

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from lm_eval_tbd.core.paths import tasks_dir
from lm_eval_tbd.core.samples import load_run
from lm_eval_tbd.core.scores import TBDParams, tbd_score
from tests.helpers import lm_eval, model_args, results_json


def test_tbd_runs_beside_an_ordinary_task(main_run):
    out, proc = main_run
    res = results_json(out)["results"]
    assert {"tbd_aime", "tbd_aime24", "tbd_aime25", "plain_aime24"} <= set(res)
    for task in ("tbd_aime24", "tbd_aime25"):
        assert 0.0 < res[task]["tbd,none"] <= 1.0
        assert res[task]["tbd_n_tokens,none"] <= 20
    assert res["tbd_aime"]["tbd,none"] == pytest.approx((res["tbd_aime24"]["tbd,none"] + res["tbd_aime25"]["tbd,none"]) / 2)
    assert "exact_match,none" in res["plain_aime24"]
    # no labels in the benchmark files: no ROC metrics, and nothing faked
    assert "tbd_roc_auc,none" not in res["tbd_aime24"]
    assert "tbd" in proc.stdout  # lm-eval's own results table


def test_logged_samples_parse_back_and_rescore(main_run):
    out, _ = main_run
    run = load_run(out, "tbd_aime24")
    assert len(run.questions) == 4
    for q in run.questions:
        assert q.tbd == pytest.approx(tbd_score(q.record.logprobs, max_tokens=20), abs=1e-12)
        assert 1 <= q.record.n_tokens <= 20
    rescored = run.rescore(TBDParams(tau=0.9, alpha=1.0, max_tokens=5))
    assert [q.tbd for q in rescored.questions] == [tbd_score(q.record.logprobs, tau=0.9, alpha=1.0, max_tokens=5) for q in run.questions]


def test_logged_logprobs_equal_an_independent_forward_pass(main_run, tiny_model_dir):
    out, _ = main_run
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    (samples,) = sorted(out.rglob("samples_tbd_aime25_*.jsonl"))
    for line in samples.read_text().splitlines():
        sample = json.loads(line)
        context = sample["arguments"]["gen_args_0"]["arg_0"]  # chat-templated prompt as the model saw it
        assert context.startswith("<|user|>") and context.endswith("<|assistant|>")
        record = json.loads(sample["resps"][0][0])
        prompt = tok(context)["input_ids"]
        ids = torch.tensor([prompt + record["token_ids"]])
        with torch.no_grad():
            logp = torch.log_softmax(model(ids).logits[0], -1)
        expected = logp[torch.arange(len(prompt) - 1, ids.shape[1] - 1), ids[0, len(prompt):]]
        assert torch.allclose(torch.tensor(record["logprobs"]), expected, atol=1e-4)
        assert sample["tbd"] == pytest.approx(tbd_score(record["logprobs"], max_tokens=20))


def test_include_path_without_autoload_and_labelled_metrics(tmp_path, tiny_model_dir, benchmark_data):
    rows = [json.loads(line) for line in (benchmark_data / "aime25.jsonl").read_text().splitlines()[:6]]
    data = tmp_path / "mine.jsonl"
    data.write_text("".join(json.dumps({"id": r["id"], "question": r["question"], "label": i % 2}) + "\n" for i, r in enumerate(rows)))
    proc = lm_eval(
        ["--model", "hf", "--model_args", model_args(tiny_model_dir), "--tasks", "tbd_jsonl",
         "--include_path", str(tasks_dir()), "--batch_size", "3",
         "--metadata", json.dumps({"tbd_data_file": str(data), "tbd_max_tokens": 12, "tbd_tau": 0.9}),
         "--log_samples", "--output_path", str(tmp_path / "out")],
        cwd=tmp_path, LM_EVAL_TBD_AUTOLOAD="0",
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    res = results_json(tmp_path / "out")["results"]["tbd_jsonl"]
    run = load_run(tmp_path / "out", "tbd_jsonl")
    from lm_eval_tbd.core.stats import roc_auc, tpr_at_fpr

    labels = [q.label for q in run.questions]
    assert labels == [0, 1, 0, 1, 0, 1]
    assert res["tbd_roc_auc,none"] == pytest.approx(roc_auc(labels, -run.tbd_values()))
    assert res["tbd_tpr_at_1fpr,none"] == pytest.approx(tpr_at_fpr(labels, -run.tbd_values()))
    assert all(q.tbd == pytest.approx(tbd_score(q.record.logprobs, tau=0.9, max_tokens=12)) for q in run.questions)


def test_without_autoload_or_include_path_the_task_is_unknown(tmp_path):
    proc = lm_eval(["--model", "hf", "--tasks", "tbd_aime24"], cwd=tmp_path, LM_EVAL_TBD_AUTOLOAD="0")
    assert proc.returncode != 0
    assert "tbd_aime24" in proc.stderr


def test_missing_data_file_is_a_clear_error(tmp_path, tiny_model_dir):
    proc = lm_eval(
        ["--model", "hf", "--model_args", model_args(tiny_model_dir), "--tasks", "tbd_math500"],
        cwd=tmp_path, LM_EVAL_TBD_DATA_DIR=str(tmp_path),
    )
    assert proc.returncode != 0
    assert f"question file not found: {tmp_path / 'math500.jsonl'}" in proc.stderr


def test_request_cache_cannot_pair_old_requests_with_new_metadata(tmp_path, tiny_model_dir, benchmark_data):
    args = ["--model", "hf", "--model_args", model_args(tiny_model_dir), "--tasks", "tbd_aime24", "--limit", "4",
            "--cache_requests", "true", "--log_samples"]
    for m in (5, 9):
        proc = lm_eval(args + ["--metadata", json.dumps({"tbd_max_tokens": m}), "--output_path", str(tmp_path / f"m{m}")],
                       cwd=tmp_path, LM_EVAL_TBD_DATA_DIR=str(benchmark_data))
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert "--cache_requests is ignored for TBD tasks" in proc.stderr
        run = load_run(tmp_path / f"m{m}", "tbd_aime24")
        assert max(q.record.n_tokens for q in run.questions) == m


@pytest.mark.parametrize(("metadata", "message"), [
    ({"tbd_alpa": 1.0}, "task tbd_jsonl: unknown metadata key(s) ['tbd_alpa']: did you mean 'tbd_alpha'"),
    ({"tbd_max_tokens": 0}, "task tbd_jsonl: tbd_max_tokens must be an integer >= 1, got 0"),
    ({"tbd_max_tokens": 100000}, "tbd_max_tokens 100000 leaves no room for the prompt in the model's maximum length"),
    ({}, "bad.jsonl:2: field 'question' is empty"),
])
def test_our_errors_inside_lm_eval_are_one_line(tmp_path, tiny_model_dir, metadata, message):
    # they came as the last line of a ~30-line traceback through lm-eval's task loading
    data = tmp_path / "bad.jsonl"
    data.write_text('{"question": "A?"}\n' + ('{"question": ""}\n' if not metadata else ""))
    proc = lm_eval(["--model", "hf", "--model_args", model_args(tiny_model_dir), "--tasks", "tbd_jsonl",
                    "--metadata", json.dumps({"tbd_data_file": str(data), **metadata})], cwd=tmp_path)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    last = proc.stderr.rstrip("\n").splitlines()[-1]
    assert last.startswith("lm-eval-tbd: error: ") and message in last, proc.stderr[-3000:]
