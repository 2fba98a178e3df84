"""Detection benchmark: does TBD catch real distillation data, and when?

The paper's S1 protocol at a size 2 CPU cores can run, with a positive and a null control:

1. s1K (``../shared/data/s1k.jsonl``) is shuffled with ``random.Random(42)``; the first 80% are
   distillation data (members), the last 20% never seen (non-members). So that sequences stay
   short enough for CPU training, only questions under ``--max-question-chars`` characters are
   used; the filter applies to both groups alike. The first ``--members`` members and the first
   ``--nonmembers`` non-members (in shuffled order) are evaluated.
2. A small GPT-2 with a locally trained tokenizer is first "pretrained" on MATH-500 and GSM8K
   (question -> solution in its chat format): the base model, which knows the answer format.
3. It is distilled on the members, question -> solution truncated to its first
   ``--answer-tokens`` tokens, loss on the response only, as the paper does (SFT on traces). A
   checkpoint is saved at each epoch of ``--epochs`` (one continuous schedule): the memorisation
   curve. Epoch 0 is the base model: the null control.
4. Every checkpoint scores members and non-members with the TBD task through the real
   ``lm_eval`` CLI (M = 300, input-side scores on, the base model as reference for the
   calibrated scores). TBD is re-scored from the logged log-probs for M in {100, 300} and tau in
   {0.9, 1.0}; every baseline comes from the same pass.
5. Reported per checkpoint: the share of members whose first 50 greedy tokens reproduce their
   training answer (is the student really memorising?), AUC with a bootstrap CI, and TPR@1%FPR
   (strict, and the paper's convention).

Writes ``detection.json``, ``detection.md``, ``roc.png``, ``hist.png`` and ``curve.png`` to
``--out`` (default ``benchmarks/results``). ``--quick`` is a reduced run for CI (<= 5 minutes).
Figures are reported, not asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data"
PAPER_S1 = {"auc": 0.918, "tpr_at_1fpr": 0.470}

FULL = dict(members=100, nonmembers=100, epochs=(0, 5, 10, 20, 40, 80), pretrain_epochs=2, pretrain_items=None,
            n_layer=4, n_embd=256, answer_tokens=128, vocab=2000, max_tokens=300, lr=3e-3, batch_size=8)
QUICK = dict(members=24, nonmembers=24, epochs=(0, 100), pretrain_epochs=1, pretrain_items=300,
             n_layer=2, n_embd=128, answer_tokens=64, vocab=1000, max_tokens=100, lr=3e-3, batch_size=4)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def s1_split(data: Path, max_chars: int, n_members: int, n_nonmembers: int, seed: int = 42):
    """The S1 split (seeded shuffle, first 80% members, last 20% non-members), then the subset."""
    rows = read_jsonl(data / "s1k.jsonl")
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    cut = int(0.8 * len(rows))
    usable = lambda idx: [rows[i] for i in idx if len(rows[i]["question"]) < max_chars and rows[i].get("solution")]  # noqa: E731
    members, nonmembers = usable(order[:cut]), usable(order[cut:])
    if len(members) < n_members or len(nonmembers) < n_nonmembers:
        raise SystemExit(f"only {len(members)} members / {len(nonmembers)} non-members under {max_chars} characters")
    return members[:n_members], nonmembers[:n_nonmembers]


def truncate(tok, text: str, n: int) -> str:
    return tok.decode(tok(text)["input_ids"][:n])


def lm_eval_run(model_dir: Path, task_dir: Path, out: Path, task: str) -> None:
    from lm_eval_tbd.harness.runner import lm_eval_command, offline_env, run_lm_eval

    cmd = lm_eval_command("hf", [task], out, model_args=f"pretrained={model_dir},dtype=float32", device="cpu",
                          include_path=task_dir)
    try:
        run_lm_eval(cmd, env=offline_env())
    except RuntimeError as err:
        raise SystemExit(f"{model_dir}: {err}") from None


def evaluate_checkpoint(run, answers: dict, tok, max_tokens: int) -> dict:
    """Memorisation share, and ROC figures for every TBD setting and every logged score."""
    from lm_eval_tbd.app.report import compare_scores
    from lm_eval_tbd.core.scores import TBDParams
    from lm_eval_tbd.demo import memorised_share

    out = {"memorised_share": memorised_share(run, answers, tok), "scores": compare_scores(run, n_resamples=1000)}
    tbd = {}
    for m in sorted({100, max_tokens}):
        for tau in (0.9, 1.0):
            r = compare_scores(run.rescore(TBDParams(tau=tau, max_tokens=m)), n_resamples=1000)["tbd"]
            tbd[f"M={m},tau={tau}"] = r
    out["tbd_settings"] = tbd
    return out


def plots(out: Path, runs: dict, epochs) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from sklearn.metrics import roc_curve

    last, first = runs[epochs[-1]], runs[epochs[0]]
    fig, ax = plt.subplots(figsize=(5, 5))
    for label, run in ((f"distilled, epoch {epochs[-1]}", last), ("base model (null control)", first)):
        y = [q.label for q in run.questions]
        fpr, tpr, _ = roc_curve(y, -run.tbd_values())
        ax.plot(fpr, tpr, label=label)
    chance = np.logspace(-2, 0, 50)
    ax.plot(chance, chance, "k:", lw=0.8, label="chance")
    ax.set(xscale="log", xlim=(1e-2, 1), xlabel="false positive rate (log)", ylabel="true positive rate",
           title="TBD on s1K members vs non-members")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(out / "roc.png", dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 3.5))
    scores = last.tbd_values()
    bins = np.linspace(scores.min(), scores.max(), 25)
    for lab, name in ((1, "members"), (0, "non-members")):
        ax.hist([q.tbd for q in last.questions if q.label == lab], bins=bins, alpha=0.6, label=name)
    ax.set(xlabel="TBD (lower = more likely seen)", ylabel="questions", title=f"TBD after {epochs[-1]} epochs")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "hist.png", dpi=120)
    plt.close(fig)


def curve_plot(out: Path, results: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = sorted(int(e) for e in results)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(epochs, [results[str(e)]["memorised_share"] for e in epochs], "o-", label="members memorised (first 50 tokens)")
    for name in ("tbd", "gen_mean_logprob", "gen_min_k", "q_mean_logprob"):
        ax.plot(epochs, [results[str(e)]["scores"][name]["auc"] for e in epochs], ".--", label=f"AUC {name}")
    ax.set(xlabel="distillation epochs", ylim=(0, 1.02), title="Memorisation curve")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "curve.png", dpi=120)
    plt.close(fig)


def markdown(summary: dict) -> str:
    s = summary["settings"]
    lines = [
        "# TBD detection benchmark (s1K, S1 protocol at CPU scale)",
        "",
        f"Command: `{summary['command']}` ({summary['seconds']:.0f} s on {s['cpus']} CPU cores).",
        "",
        f"{s['members']} members and {s['nonmembers']} non-members from the seed-42 S1 split of s1K (questions under "
        f"{s['max_question_chars']} characters); a {s['n_params'] / 1e6:.1f}M-parameter GPT-2 pretrained on MATH-500 + GSM8K, "
        f"then distilled on the members' solutions truncated to {s['answer_tokens']} tokens (loss on the response only). "
        f"TBD with M = {s['max_tokens']} generated tokens unless stated.",
        "",
        "## Along the memorisation curve (epoch 0 = the base model, the null control)",
        "",
        "| epochs | members memorised | TBD AUC [95% CI] | TPR@1%FPR strict | TPR@1%FPR paper | best baseline (AUC) |",
        "|---|---|---|---|---|---|",
    ]
    for e, r in summary["checkpoints"].items():
        t = r["scores"]["tbd"]
        others = {k: v["auc"] for k, v in r["scores"].items() if k != "tbd"}
        best = max(others, key=others.get) if others else "-"
        lines.append(f"| {e} | {r['memorised_share']:.0%} | {t['auc']:.3f} [{t['auc_ci'][0]:.2f}, {t['auc_ci'][1]:.2f}] | "
                     f"{t['tpr@1%fpr']:.3f} | {t['tpr@1%fpr_paper']:.3f} | {best} ({others.get(best, float('nan')):.3f}) |")
    last = list(summary["checkpoints"])[-1]
    r = summary["checkpoints"][last]
    lines += ["", f"## TBD settings after {last} epochs", "", "| setting | AUC [95% CI] | TPR@1%FPR strict | paper |", "|---|---|---|---|"]
    for k, t in r["tbd_settings"].items():
        lines.append(f"| {k} | {t['auc']:.3f} [{t['auc_ci'][0]:.2f}, {t['auc_ci'][1]:.2f}] | {t['tpr@1%fpr']:.3f} | {t['tpr@1%fpr_paper']:.3f} |")
    lines += ["", f"## Every score after {last} epochs (same generation pass)", "",
              "| score | seen when | AUC [95% CI] | TPR@1%FPR strict | TPR@5%FPR |", "|---|---|---|---|---|"]
    from lm_eval_tbd.core.scores import SCORES

    for k, t in r["scores"].items():
        lines.append(f"| {k} | {'higher' if SCORES[k].higher_is_seen else 'lower'} | {t['auc']:.3f} "
                     f"[{t['auc_ci'][0]:.2f}, {t['auc_ci'][1]:.2f}] | {t['tpr@1%fpr']:.3f} | {t['tpr@5%fpr']:.3f} |")
    lines += [
        "", "## Beside the paper", "",
        f"The paper's S1 figure: AUC {PAPER_S1['auc']}, TPR@1%FPR {PAPER_S1['tpr_at_1fpr']} (Qwen2.5 7B-32B students, "
        "full s1K traces, 5 epochs). Ours: the row above for the last checkpoint. The settings differ (a tiny student, "
        "truncated answers, many more epochs, 200 questions), so the numbers are not comparable, only the direction is. "
        f"With {s['nonmembers']} non-members, a 1% FPR budget allows no false positive: TPR@1%FPR strict is TPR at 0% FPR.",
        "", "Plots: `roc.png`, `hist.png`, `curve.png`.",
    ]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="reduced run for CI (<= 5 minutes)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="directory with s1k/math500/gsm8k_test.jsonl")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--max-question-chars", type=int, default=600)
    args = parser.parse_args(argv)
    cfg = dict(QUICK if args.quick else FULL)
    t0 = time.perf_counter()

    import torch

    from lm_eval_tbd.core.atomic import write_json_atomic, write_text_atomic
    from lm_eval_tbd.core.samples import load_run
    from lm_eval_tbd.demo.distil import Recipe, chat_examples, distil, progress
    from lm_eval_tbd.demo.tiny_model import build_model, save_tiny_model, train_tokenizer
    from lm_eval_tbd.harness.custom_tasks import write_jsonl_task

    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    out = args.out.resolve()
    work = out / ("work-quick" if args.quick else "work")
    work.mkdir(parents=True, exist_ok=True)

    members, nonmembers = s1_split(args.data, args.max_question_chars, cfg["members"], cfg["nonmembers"])
    pretrain = [r for name in ("math500.jsonl", "gsm8k_test.jsonl") for r in read_jsonl(args.data / name)
                if r.get("solution") and len(r["question"]) < args.max_question_chars]
    if cfg["pretrain_items"]:
        pretrain = random.Random(0).sample(pretrain, cfg["pretrain_items"])
    tok = train_tokenizer([r["question"] + " " + r["solution"] for r in pretrain], vocab_size=cfg["vocab"])
    for r in pretrain + members:
        r["solution"] = truncate(tok, r["solution"], cfg["answer_tokens"])
    answers = {str(r["id"]): r["solution"] for r in members}

    data = work / "s1k_eval.jsonl"
    data.write_text("".join(json.dumps({"id": str(r["id"]), "question": r["question"], "label": lab}) + "\n"
                            for lab, group in ((1, members), (0, nonmembers)) for r in group))
    print(f"data: {len(members)} members, {len(nonmembers)} non-members; pretraining on {len(pretrain)} MATH-500/GSM8K items")

    model = build_model(tok, n_layer=cfg["n_layer"], n_embd=cfg["n_embd"], n_head=4, n_positions=1024, seed=0)
    distil(model, chat_examples(tok, pretrain), Recipe(epochs=cfg["pretrain_epochs"], lr=1e-3, batch_size=16),
           pad_id=tok.pad_token_id, on_epoch=progress(print, cfg["pretrain_epochs"]))
    base_dir = save_tiny_model(model, tok, work / "epoch-0")
    task_dir = work / "tasks"
    write_jsonl_task("s1k_tbd", data, task_dir, tbd_max_tokens=cfg["max_tokens"], tbd_input_scores=True,
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
        "command": "python benchmarks/detection.py" + (" --quick" if args.quick else ""),
        "seconds": round(time.perf_counter() - t0, 1),
        "settings": {**{k: list(v) if isinstance(v, tuple) else v for k, v in cfg.items()},
                     "max_question_chars": args.max_question_chars, "split_seed": 42, "cpus": os.cpu_count(),
                     "n_params": sum(p.numel() for p in model.parameters())},
        "paper_s1": PAPER_S1,
        "checkpoints": results,
    }
    stem = "detection-quick" if args.quick else "detection"
    write_json_atomic(out / f"{stem}.json", summary)
    write_text_atomic(out / f"{stem}.md", markdown(summary))
    print(f"wrote {out / (stem + '.json')} and {stem}.md, roc.png, hist.png, curve.png in {summary['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
