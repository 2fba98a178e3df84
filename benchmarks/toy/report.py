"""The detection benchmark's report: its markdown (``detection.md``) and plots (ROC, TBD histogram,
memorisation curve)."""

from __future__ import annotations

from pathlib import Path

#: the paper's S1 figure, quoted beside ours
PAPER_S1 = {"auc": 0.918, "tpr_at_1fpr": 0.470}


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
