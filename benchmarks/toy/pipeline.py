"""The detection benchmark end to end: pretrain a small GPT-2, distil it on the members with a
checkpoint along the memorisation curve, score each checkpoint through lm_eval, write the
summary, its markdown and plots."""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path

from benchmarks.toy.analysis import evaluate_checkpoint
from benchmarks.toy.report import PAPER_S1, curve_plot, markdown, plots
from benchmarks.toy.split import read_jsonl, s1_split, truncate

#: the full protocol and --quick's (a reduced run for CI)
FULL = dict(members=100, nonmembers=100, epochs=(0, 5, 10, 20, 40, 80), pretrain_epochs=2, pretrain_items=None,
            n_layer=4, n_embd=256, answer_tokens=128, vocab=2000, max_tokens=300, lr=3e-3, batch_size=8)
QUICK = dict(members=24, nonmembers=24, epochs=(0, 100), pretrain_epochs=1, pretrain_items=300,
             n_layer=2, n_embd=128, answer_tokens=64, vocab=1000, max_tokens=100, lr=3e-3, batch_size=4)


def lm_eval_run(model_dir: Path, task_dir: Path, out: Path, task: str) -> None:
    from lm_eval_tbd.harness.runner import lm_eval_command, offline_env, run_lm_eval

    cmd = lm_eval_command("hf", [task], out, model_args=f"pretrained={model_dir},dtype=float32", device="cpu",
                          include_path=task_dir)
    try:
        run_lm_eval(cmd, env=offline_env())
    except RuntimeError as err:
        raise SystemExit(f"{model_dir}: {err}") from None


def run(data: Path, out: Path, *, max_question_chars: int, quick: bool) -> dict:
    """The benchmark on the files in ``data``; writes to ``out`` (its work folder under it) and
    returns the summary."""
    cfg = dict(QUICK if quick else FULL)
    t0 = time.perf_counter()

    import torch

    from lm_eval_tbd.core.atomic import write_json_atomic, write_text_atomic
    from lm_eval_tbd.core.samples import load_run
    from lm_eval_tbd.demo.distil import Recipe, chat_examples, distil, progress
    from lm_eval_tbd.demo.tiny_model import build_model, save_tiny_model, train_tokenizer
    from lm_eval_tbd.harness.custom_tasks import write_jsonl_task

    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    work = out / ("work-quick" if quick else "work")
    work.mkdir(parents=True, exist_ok=True)

    members, nonmembers = s1_split(data, max_question_chars, cfg["members"], cfg["nonmembers"])
    pretrain = [r for name in ("math500.jsonl", "gsm8k_test.jsonl") for r in read_jsonl(data / name)
                if r.get("solution") and len(r["question"]) < max_question_chars]
    if cfg["pretrain_items"]:
        pretrain = random.Random(0).sample(pretrain, cfg["pretrain_items"])
    tok = train_tokenizer([r["question"] + " " + r["solution"] for r in pretrain], vocab_size=cfg["vocab"])
    for r in pretrain + members:
        r["solution"] = truncate(tok, r["solution"], cfg["answer_tokens"])
    answers = {str(r["id"]): r["solution"] for r in members}

    eval_file = work / "s1k_eval.jsonl"
    eval_file.write_text("".join(json.dumps({"id": str(r["id"]), "question": r["question"], "label": lab}) + "\n"
                            for lab, group in ((1, members), (0, nonmembers)) for r in group))
    print(f"data: {len(members)} members, {len(nonmembers)} non-members; pretraining on {len(pretrain)} MATH-500/GSM8K items")

    model = build_model(tok, n_layer=cfg["n_layer"], n_embd=cfg["n_embd"], n_head=4, n_positions=1024, seed=0)
    distil(model, chat_examples(tok, pretrain), Recipe(epochs=cfg["pretrain_epochs"], lr=1e-3, batch_size=16),
           pad_id=tok.pad_token_id, on_epoch=progress(print, cfg["pretrain_epochs"]))
    base_dir = save_tiny_model(model, tok, work / "epoch-0")
    task_dir = work / "tasks"
    write_jsonl_task("s1k_tbd", eval_file, task_dir, tbd_max_tokens=cfg["max_tokens"], tbd_input_scores=True,
                     tbd_ref_model=str(base_dir))

    epochs = tuple(cfg["epochs"])
    checkpoints = {0: base_dir}
    show = progress(print, max(epochs))

    def save(loss, m):
        show(loss, m)
        if loss.epoch in epochs:
            checkpoints[loss.epoch] = save_tiny_model(m, tok, work / f"epoch-{loss.epoch}")

    print(f"distilling {max(epochs)} epochs on the members; checkpoints at {list(epochs)}")
    distil(model, chat_examples(tok, members), Recipe(epochs=max(epochs), lr=cfg["lr"], batch_size=cfg["batch_size"]),
           pad_id=tok.pad_token_id, on_epoch=save)

    runs, results = {}, {}
    for epoch in epochs:
        run_dir = work / f"run-{epoch}"
        lm_eval_run(checkpoints[epoch], task_dir, run_dir, "s1k_tbd")
        runs[epoch] = load_run(run_dir, "s1k_tbd")
        results[str(epoch)] = evaluate_checkpoint(runs[epoch], answers, tok, cfg["max_tokens"])
        t = results[str(epoch)]["scores"]["tbd"]
        print(f"epoch {epoch:>3}: memorised {results[str(epoch)]['memorised_share']:.0%}  TBD AUC {t['auc']:.3f} "
              f"[{t['auc_ci'][0]:.2f}, {t['auc_ci'][1]:.2f}]  TPR@1%FPR {t['tpr@1%fpr']:.3f} (paper {t['tpr@1%fpr_paper']:.3f})")

    plots(out, runs, epochs)
    curve_plot(out, results)
    summary = {
        "command": "python benchmarks/detection.py" + (" --quick" if quick else ""),
        "seconds": round(time.perf_counter() - t0, 1),
        "settings": {**{k: list(v) if isinstance(v, tuple) else v for k, v in cfg.items()},
                     "max_question_chars": max_question_chars, "split_seed": 42, "cpus": os.cpu_count(),
                     "n_params": sum(p.numel() for p in model.parameters())},
        "paper_s1": PAPER_S1,
        "checkpoints": results,
    }
    stem = "detection-quick" if quick else "detection"
    write_json_atomic(out / f"{stem}.json", summary)
    write_text_atomic(out / f"{stem}.md", markdown(summary))
    print(f"wrote {out / (stem + '.json')} and {stem}.md, roc.png, hist.png, curve.png in {summary['seconds']:.0f} s")
    return summary
