"""Helpers for the tests, importable (``from tests.helpers import offline_env``) so that nothing
imports a conftest: the repository root, the offline environment, the real lm_eval CLI on the
tiny models, and the tiny-model builder. The fixtures that use them are in tests/conftest.py;
the synthetic question sets are in tests/helpers/synthetic_data.py."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from lm_eval_tbd.harness.runner import offline_env

__all__ = ["ROOT", "SMOLLM2_GGUF", "offline_env", "read_questions", "build_tiny_model", "lm_eval", "model_args", "results_json"]

ROOT = Path(__file__).resolve().parents[2]


def read_questions(path: Path) -> list[str]:
    return [json.loads(line)["question"] for line in path.open(encoding="utf-8")]


def build_tiny_model(directory: Path, data: Path, eos_scale: float, eos_always: bool = False) -> Path:
    """A 2-layer GPT-2 with a BPE tokenizer trained on the AIME questions of ``data`` (a folder in
    the benchmark layout), saved to ``directory``."""
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


SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


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
