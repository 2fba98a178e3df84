"""Data-parallel hf runs: `accelerate launch` with two CPU processes gives the results of one.

Stock HFLM shards documents across processes only when it counts several GPUs; the plugin makes
a multi-process CPU launch shard too (``lm_eval_tbd.backends.hf``), so this runs on any machine.
An odd number of documents makes the evaluator pad one rank.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from lm_eval_tbd.core.samples import load_run
from tests.helpers import model_args, offline_env, results_json

TASKS = ["tbd_aime24", "tbd_aime25"]
ARGS = ["--model", "hf", "--tasks", ",".join(TASKS), "--limit", "7", "--apply_chat_template",
        "--metadata", json.dumps({"tbd_max_tokens": 16}), "--log_samples"]


def _run(prefix: list[str], tiny_model_dir, benchmark_data, out, **env):
    cmd = [*prefix, "-m", "lm_eval", *ARGS, "--model_args", model_args(tiny_model_dir), "--output_path", str(out)]
    proc = subprocess.run(cmd, cwd=out.parent, capture_output=True, text=True, timeout=600,
                          env=offline_env(LM_EVAL_TBD_DATA_DIR=str(benchmark_data), **env))
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc


def test_two_cpu_processes_match_one(tiny_model_dir, benchmark_data, tmp_path):
    _run([sys.executable], tiny_model_dir, benchmark_data, tmp_path / "single", OMP_NUM_THREADS="1")
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
              "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "0",
              "--num_cpu_threads_per_process", "1"]
    proc = _run(launch, tiny_model_dir, benchmark_data, tmp_path / "dp", ACCELERATE_USE_CPU="true")
    # Each rank built only its share of the requests.
    assert "on rank 1" in proc.stderr and "on rank 0" in proc.stderr

    single, dp = results_json(tmp_path / "single"), results_json(tmp_path / "dp")
    for task in TASKS:
        a, b = load_run(tmp_path / "single", task), load_run(tmp_path / "dp", task)
        assert [q.question_id for q in a.questions] == [q.question_id for q in b.questions]
        assert len(b.questions) == 7
        for qa, qb in zip(a.questions, b.questions, strict=True):
            assert qa.record.token_ids == qb.record.token_ids
            # The same greedy ids; log-probs equal to float32 rounding (the launched processes'
            # model is placed by accelerate, which changes the last bit of some kernels' sums).
            assert qa.record.logprobs == pytest.approx(qb.record.logprobs, rel=1e-6, abs=1e-6)
            assert qa.tbd == pytest.approx(qb.tbd, rel=1e-6)
        m1, m2 = single["results"][task], dp["results"][task]
        assert m1.keys() == m2.keys()
        for key, value in m1.items():
            expected = pytest.approx(value, rel=1e-5) if isinstance(value, float) else value
            assert m2[key] == expected, key
