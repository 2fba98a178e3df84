"""``lm-eval-tbd demo``: the embedded default job, offline in a few minutes on 2 CPU cores.

1. Generate templated word problems with worked solutions (seeded; nothing downloaded).
2. Split them with a seed into members (distillation data) and non-members.
3. Build a small GPT-2 (tokenizer trained locally) and distil it on the members only:
   question -> solution in its chat format, loss on the response tokens only.
4. Score every question with TBD through the real ``lm_eval`` command, once on the distilled
   student and once on the same model before distillation (the null control), with a third set
   of fresh questions as a clean reference.
5. Print the report: memorisation check, per-question scores, AUC, score distributions.
6. Run ``pytest --contam``: the members fail their gate against the reference, the unseen pass.

Honest by construction: members really were trained on, non-members never were, and the
share of members the student reproduces verbatim is measured and printed. The problems, the
split, the distillation and the tiny model are :mod:`lm_eval_tbd.demo`'s.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch
from rich.console import Console

from lm_eval_tbd.app.report import print_run, summarise
from lm_eval_tbd.core.atomic import write_json_atomic
from lm_eval_tbd.core.runs import TaskRun
from lm_eval_tbd.core.samples import load_run
from lm_eval_tbd.demo.distil import Recipe, chat_examples, distil, progress
from lm_eval_tbd.demo.offline import TASKS, make_problems, memorised_share, split_members
from lm_eval_tbd.demo.tiny_model import build_model, save_tiny_model, train_tokenizer
from lm_eval_tbd.harness.custom_tasks import write_jsonl_task
from lm_eval_tbd.harness.runner import lm_eval_command, run_lm_eval

__all__ = ["run_demo"]


def _lm_eval(model_dir: Path, task_dir: Path, out: Path, log) -> None:
    cmd = lm_eval_command("hf", TASKS, out, model_args=f"pretrained={model_dir},dtype=float32", device="cpu",
                          include_path=task_dir)
    log("  $ lm_eval " + " ".join(cmd[3:]))
    run_lm_eval(cmd)


def _combined(runs, name: str):
    """Members and unseen questions as one labelled run (their files carry the labels)."""
    questions = tuple(q for run in runs for q in run.questions)
    return TaskRun(name, runs[0].samples_file, questions)


GATE_CONFIG = """\
# The demo's contamination gates: each question set against a clean reference set of fresh
# questions the student never saw (audit mode, no labels needed).
[tool.pytest_contam]
results = "student_run"
top = 3

[tool.pytest_contam.benchmarks.demo_members]   # distilled on: should fail
reference = "demo_reference"
max_auc = 0.75
alpha = 0.01

[tool.pytest_contam.benchmarks.demo_unseen]    # never seen: should pass
reference = "demo_reference"
max_auc = 0.75
alpha = 0.01
"""


def _gate(out: Path, log) -> dict:
    (out / "pyproject.toml").write_text(GATE_CONFIG)
    cmd = [sys.executable, "-m", "pytest", "--contam", "-v", "-p", "no:cacheprovider", "--rootdir", str(out),
           "-c", str(out / "pyproject.toml"), f"--contam-json={out / 'gate.json'}"]
    log("  $ pytest --contam -v   (in " + str(out) + ")")
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=out)
    start = proc.stdout.find("contam::")
    if start < 0:
        raise RuntimeError(f"pytest --contam ran no gate (exit status {proc.returncode}):\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    log(proc.stdout[start:].rstrip(), markup=False, highlight=False)
    report = json.loads((out / "gate.json").read_text())
    return {"exit_status": proc.returncode, **{k: v["passed"] for k, v in report["benchmarks"].items()}}


def run_demo(out_dir: str | Path = "demo_out", n_questions: int = 96, epochs: int = 60, console=None) -> dict:
    """Run the whole demo; returns the figures it printed (also written to ``out_dir/demo.json``)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    console = console or Console()
    log = console.print
    out = Path(out_dir).resolve()
    blocking = next((p for p in (out, *out.parents) if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        raise NotADirectoryError(f"--out {out_dir}: {blocking} is a file, not a folder for the demo's outputs")
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    t0 = time.perf_counter()

    problems = make_problems(n_questions + n_questions // 2, seed=0)
    rows = split_members(problems[:n_questions], seed=42)
    reference = [{**r, "label": None} for r in problems[n_questions:]]
    members = [r for r in rows if r["label"] == 1]
    task_dir = out / "tasks"
    for name, subset in zip(TASKS, (members, [r for r in rows if r["label"] == 0], reference)):
        path = out / f"{name}.jsonl"
        path.write_text("".join(json.dumps({k: r[k] for k in ("id", "question", "label") if r[k] is not None}) + "\n"
                                for r in subset))
        write_jsonl_task(name, path, task_dir, tbd_input_scores=True)
    log(f"[bold]1. Data[/]: {len(problems)} generated word problems: {len(members)} members (seed 42), "
        f"{len(rows) - len(members)} unseen, {len(reference)} fresh reference questions")

    tok = train_tokenizer([r["question"] + " " + r["solution"] for r in problems], vocab_size=600)
    base = build_model(tok, n_layer=2, n_embd=128, n_head=4, n_positions=512, seed=0)
    base_dir = save_tiny_model(base, tok, out / "base_model")
    log(f"[bold]2. Distil[/]: GPT-2 ({sum(p.numel() for p in base.parameters()) / 1e6:.2f}M parameters) on the members, {epochs} epochs")
    student = build_model(tok, n_layer=2, n_embd=128, n_head=4, n_positions=512, seed=0)
    distil(student, chat_examples(tok, members), Recipe(epochs=epochs, lr=3e-3, batch_size=16), pad_id=tok.pad_token_id,
           on_epoch=progress(log, epochs))
    student_dir = save_tiny_model(student, tok, out / "student_model")

    log("[bold]3. Score[/] every set with TBD through lm_eval: the student, then the base model (null control)")
    _lm_eval(student_dir, task_dir, out / "student_run", log)
    _lm_eval(base_dir, task_dir, out / "base_run", log)
    student_run = _combined([load_run(out / "student_run", t) for t in TASKS[:2]], "members vs unseen (student)")
    base_run = _combined([load_run(out / "base_run", t) for t in TASKS[:2]], "members vs unseen (base model)")

    figures = {
        "n_questions": len(rows),
        "n_members": len(members),
        "n_reference": len(reference),
        "epochs": epochs,
        "memorised_share": memorised_share(student_run, {r["id"]: r["solution"] for r in members}, tok),
        "student": summarise(student_run),
        "null_control": summarise(base_run),
    }
    log(f"\n[bold]Memorisation check[/]: {figures['memorised_share']:.0%} of members reproduce the first 50 tokens of their training solution")
    print_run(student_run, console)
    log(f"[bold]Null control[/] (same questions, model before distillation): ROC AUC {figures['null_control']['auc']:.3f}")

    log("\n[bold]4. Gate[/]: pytest --contam, each set against the fresh reference questions")
    figures["gate"] = _gate(out, log)
    figures["seconds"] = round(time.perf_counter() - t0, 1)
    log(f"[dim]Finished in {figures['seconds']} s; outputs under {out}[/]")
    write_json_atomic(out / "demo.json", figures)
    return figures
