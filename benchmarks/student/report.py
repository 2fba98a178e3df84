"""The real student's report: its markdown (``real_student.md``) and plots (ROC, TBD histogram,
detection and memorisation by epoch), from the summary and the runs."""

from __future__ import annotations

from pathlib import Path

#: the paper's S1 figure, quoted beside ours
PAPER_S1 = {"auc": 0.918, "tpr_at_1fpr": 0.470, "students": "Qwen2.5-7B/14B/32B-Instruct, full traces, 5 epochs, lr 1e-5"}


def plots(out: Path, stem: str, greedy: dict, sampled, last: str, summary: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from sklearn.metrics import roc_curve

    fig, ax = plt.subplots(figsize=(5, 5))
    curves = [(f"greedy, epoch {last}", greedy[last]), ("base model (null control)", greedy["0"])]
    if sampled is not None:
        curves.insert(1, (f"sampled (mean of k), epoch {last}", sampled))
    for label, run in curves:
        fpr, tpr, _ = roc_curve([q.label for q in run.questions], -run.tbd_values())
        ax.plot(fpr, tpr, label=label)
    ax.plot([0, 1], [0, 1], "k:", lw=0.8, label="chance")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="TBD, s1K members vs non-members")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(out / f"{stem}_roc.png", dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 3.5))
    scores = greedy[last].tbd_values()
    bins = np.linspace(scores.min(), scores.max(), 25)
    for lab, name in ((1, "members"), (0, "non-members")):
        ax.hist([q.tbd for q in greedy[last].questions if q.label == lab], bins=bins, alpha=0.6, label=name)
    ax.set(xlabel="TBD, greedy (lower = more likely seen)", ylabel="questions", title=f"TBD after {last} epochs")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / f"{stem}_hist.png", dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    epochs = sorted(summary["checkpoints"], key=int)
    x = [int(e) for e in epochs]
    ax.plot(x, [summary["checkpoints"][e]["memorisation"]["memorised_share"] for e in epochs], "ko-",
            label="members memorised (50 tokens)")
    for name in ("tbd", "gen_mean_logprob", "ref_tbd", "q_mean_logprob"):
        if all(name in summary["checkpoints"][e]["greedy"]["scores"] for e in epochs):
            ax.plot(x, [summary["checkpoints"][e]["greedy"]["scores"][name]["auc"] for e in epochs], ".--",
                    label=f"AUC {name}")
    ax.axhline(0.5, color="grey", lw=0.6)
    ax.set(xlabel="distillation epochs (0 = base model)", ylim=(0, 1.02), title="Detection and memorisation by epoch")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / f"{stem}_curve.png", dpi=110)
    plt.close(fig)


def ci(r: dict, key: str = "auc") -> str:
    return f"{r[key]:.3f} [{r[key + '_ci'][0]:.2f}, {r[key + '_ci'][1]:.2f}]"


def machine(settings: dict) -> str:
    """Where a run ran, for the reports: the CPU cores, the GPU where it used one, and, step by
    step, the machines that made its cached steps where any was another."""
    cores = f"{settings['cpus']} CPU cores"
    here = cores if settings.get("device", "cpu") == "cpu" else f"one {settings['device_name']} GPU ({cores} beside it)"
    steps = settings.get("steps_ran_on", {})
    if all(name in (cores, settings.get("device_name")) for name in steps.values()):
        return here
    by_machine: dict[str, list[str]] = {}
    for step, name in steps.items():
        by_machine.setdefault("an unrecorded machine" if name == "not recorded" else name, []).append(step)
    return f"{here} for this invocation; cached steps: " + "; ".join(
        f"{', '.join(made)} on {name}" for name, made in by_machine.items())


def distillation_lines(s: dict) -> list[str]:
    """The cached distillation's own command (where another invocation made it) and its losses."""
    d = s["settings"].get("distillation", {})
    lines = []
    if d.get("command") not in (None, "not recorded", s["command"]):
        lines.append(f"The checkpoints come from an earlier invocation, `{d['command']}` "
                     f"(checkpoints after epochs {', '.join(map(str, d.get('checkpoints', [])))}; "
                     f"{d.get('train_dtype')} on {d.get('device_name')}); this one scored or analysed them.")
    if isinstance(d.get("losses"), list):
        lines.append("Response loss by epoch: " + ", ".join(f"{x:.3f}" for x in d["losses"]) + ".")
    return [" ".join(lines), ""] if lines else []


def weight_scores_note(s: dict) -> str:
    """Which greedy passes scored the question side and against the reference model, read from
    the scores each checkpoint has (a cached pass may hold more than its protocol asks)."""
    has = {e: bool({"q_mean_logprob", "ref_tbd"} & set(r["greedy"]["scores"])) for e, r in s["checkpoints"].items()}
    if all(has.values()):
        return "every greedy pass with `tbd_input_scores` and the base model as `tbd_ref_model`."
    with_them = sorted((e for e, v in has.items() if v), key=int)
    if not with_them:
        return "no pass with `tbd_input_scores` or a reference model: TBD and the generation-side scores only."
    named = ", ".join("the base model" if e == "0" else f"epoch {e}" for e in with_them)
    return (f"the greedy passes of {named} with `tbd_input_scores` and the base model as `tbd_ref_model`; the others "
            "score TBD and the other generation-side scores only (so their best other score and combined detector "
            "draw on fewer scores).")


def time_lines(s: dict) -> list[str]:
    """Each step's measured time, and this invocation's wall-clock time (end to end where it made
    every step, else with the steps it found cached)."""
    t = s["timings"]
    passes = ", ".join(f"{name} {sec / 60:.1f}" for name, sec in t.get("pass_s", {}).items())
    line = (f"Time by step (min): distillation {t['distil_s'] / 60:.1f}; scoring passes: {passes}; analysis "
            f"{t['analysis_s'] / 60:.1f}.")
    wall, cached = t.get("invocation_wall_s"), t.get("steps_cached", [])
    if wall is not None:
        line += (f" This invocation, end to end with every step made in it: {wall / 60:.1f} min." if not cached else
                 f" This invocation: {wall / 60:.1f} min, with {', '.join(cached)} cached from earlier ones.")
    return [line, ""]


def markdown(s: dict, stem: str) -> str:
    from lm_eval_tbd.core.scores import SCORES

    c = s["settings"]
    last = str(max(int(e) for e in s["checkpoints"]))
    lines = [
        "# Real student: TBD on a distilled pretrained instruct model (s1K)", "",
        f"Command: `{s['command']}`; {s['seconds'] / 60:.1f} min on {machine(c)} "
        f"(distillation {s['timings']['distil_s'] / 60:.1f} min, scoring {s['timings']['score_s'] / 60:.1f} min; "
        "the sum of the steps' measured times, cached steps counting the time they took when they ran).", "",
        *distillation_lines(s),
        f"Student: {c['base']} ({c['n_params'] / 1e6:.0f}M parameters), fine-tuned on {c['n']} s1K members "
        f"(the paper's seed-42 split; question -> reference solution truncated to {c['answer_tokens']} tokens, chat "
        f"template, loss on the response only), AdamW lr {c['lr']} (betas 0.9/0.95, weight decay 1e-4), "
        f"5% warm-up then cosine over {c['epochs']} epochs, batch {c['batch_size']}. Evaluated: those {c['n']} members "
        f"against the first {c['n']} non-members, M = {c['max_tokens']} generated tokens, through "
        f"`lm_eval --model {c.get('backend', 'hf')} --apply_chat_template`; {weight_scores_note(s)} "
        "Epoch 0 is the base model (null control). Strict TPR: the highest TPR with FPR at or below the budget; "
        f"with {c['n']} non-members, 1% FPR allows no false positive.", "",
        *time_lines(s),
        "## By epoch (greedy decoding)", "",
        f"| epoch | train loss | members memorised | mean prefix (members / non-members) | TBD M={c['windows'][-2]} AUC | "
        f"TBD M={c['windows'][-1]} AUC [95% CI] | TPR@1% | TPR@5% | best other score (AUC) | combined, out of fold: AUC [95% CI] |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for e in sorted(s["checkpoints"], key=int):
        r = s["checkpoints"][e]
        g, m = r["greedy"], r["memorisation"]
        w = g["tbd_windows"]
        big, small = w[str(c["windows"][-1])], w[str(c["windows"][-2])]
        others = {k: v["auc"] for k, v in g["scores"].items() if k != "tbd"}
        best = max(others, key=lambda k: abs(others[k] - 0.5)) if others else "-"
        loss = "-" if r.get("train_loss") is None else f"{r['train_loss']:.3f}"
        lines.append(f"| {e} | {loss} | {m['memorised_share']:.0%} | {m['mean_prefix_members']:.1f} / "
                     f"{m['mean_prefix_nonmembers']:.1f} | {small['auc']:.3f} | {ci(big)} | {big['tpr@1%fpr']:.3f} | "
                     f"{big['tpr@5%fpr']:.3f} | {best} ({others.get(best, float('nan')):.3f}) | "
                     f"{ci(r['combined_oof']) if 'auc' in r.get('combined_oof', {}) else '-'} |")
    lines += ["", "## TBD by window M (greedy; rescored from the same generations)", "",
              "| epoch | " + " | ".join(f"M={m} AUC [95% CI]" for m in c["windows"]) + " | best window (in-sample) |",
              "|---|" + "---|" * (len(c["windows"]) + 1)]
    for e in sorted(s["checkpoints"], key=int):
        w = s["checkpoints"][e]["greedy"]["tbd_windows"]
        best = max(c["windows"], key=lambda m: w[str(m)]["auc"])
        lines.append(f"| {e} | " + " | ".join(ci(w[str(m)]) for m in c["windows"]) + f" | M={best} |")
    trained = [e for e in s["checkpoints"] if e != "0"]
    if trained:
        mean = {m: sum(s["checkpoints"][e]["greedy"]["tbd_windows"][str(m)]["auc"] for e in trained) / len(trained)
                for m in c["windows"]}
        fixed = max(mean, key=mean.get)
        lines += ["", f"Best fixed window over the distilled checkpoints: M={fixed} (mean AUC {mean[fixed]:.3f}; "
                  + ", ".join(f"M={m}: {v:.3f}" for m, v in mean.items())
                  + "). It is chosen on these same questions, so its AUC is optimistic."]
    r = s["checkpoints"][last]
    lines += ["", f"## Every score after {last} epochs", "",
              "| score | seen when | greedy AUC [95% CI] | TPR@1% | TPR@5% [95% CI] |" + (" sampled AUC [95% CI] |" if "sampled" in r else ""),
              "|---|---|---|---|---|" + ("---|" if "sampled" in r else "")]
    for k, g in r["greedy"]["scores"].items():
        row = (f"| {k} | {'higher' if SCORES[k].higher_is_seen else 'lower'} | {ci(g)} | {g['tpr@1%fpr']:.3f} | "
               f"{ci(g, 'tpr@5%fpr')} |")
        if "sampled" in r:
            sm = r["sampled"]["scores"].get(k)
            row += f" {ci(sm) if sm else '-'} |"
        lines.append(row)
    lines += ["", "## Paired bootstrap AUC differences (same questions)", "", "| comparison | ΔAUC [95% CI] | p |", "|---|---|---|"]
    for name, d in r["paired"].items():
        lines.append(f"| {name} | {d['difference']:+.3f} [{d['ci'][0]:+.3f}, {d['ci'][1]:+.3f}] | {d['p_two_sided']:.3f} |")
    if "sampled" in r:
        sm = r["sampled"]
        lines += ["", f"## Greedy against sampled decoding after {last} epochs", "",
                  f"Sampled: temperature 1 on the raw distribution, no top-k/top-p/penalties, k = {c['samples']} "
                  f"samples per question (seed {c['seed']}), the question's score the mean over samples"
                  + ("" if c.get("sampled_ref_model", True) else ", scored without the reference model (no ref_* "
                     "scores)")
                  + (", without question-side scores (they do not depend on the decoding: see greedy)"
                     if "weight_scores" in c else "") + ". "
                  f"Mean per-question spread of TBD across samples (std): {sm['mean_tbd_spread']:.4f}.", "",
                  "| decoding | TBD AUC [95% CI] | TPR@1% | TPR@5% |", "|---|---|---|---|",
                  f"| greedy | {ci(r['greedy']['scores']['tbd'])} | {r['greedy']['scores']['tbd']['tpr@1%fpr']:.3f} | "
                  f"{r['greedy']['scores']['tbd']['tpr@5%fpr']:.3f} |",
                  f"| sampled, k = 1 (first sample) | {ci(sm['k1_tbd'])} | {sm['k1_tbd']['tpr@1%fpr']:.3f} | {sm['k1_tbd']['tpr@5%fpr']:.3f} |",
                  f"| sampled, mean of k = {c['samples']} | {ci(sm['scores']['tbd'])} | {sm['scores']['tbd']['tpr@1%fpr']:.3f} | "
                  f"{sm['scores']['tbd']['tpr@5%fpr']:.3f} |"]
    lines += ["", "## Gates (`pytest --contam`, audit mode, max_auc 0.75, alpha 0.01)", "",
              "| checkpoint | members vs non-members A (should fail once detection works) | non-members B vs A (must pass) |",
              "|---|---|---|"]
    for e in sorted(s["checkpoints"], key=int):
        gt = s["checkpoints"][e]["gates"]
        def cell(k: str, gt: dict = gt) -> str:
            verdict = "PASS" if gt[k]["passed"] else "FAIL"
            return verdict if gt[k].get("auc") is None else f"{verdict} (AUC {gt[k]['auc']:.3f}, p {gt[k]['p_value']:.2g})"

        lines.append(f"| {e} | {cell('rs_members')} | {cell('rs_nonmembers_b')} |")
    lines += ["", "## Beside the paper", "",
              f"The paper's S1 figure: AUC {PAPER_S1['auc']}, TPR@1%FPR {PAPER_S1['tpr_at_1fpr']} ({PAPER_S1['students']}, "
              "200 members vs 200 non-members). Comparable here: the split, the chat-templated prompt, the response-only "
              "loss, the optimiser and schedule shape, the score and M. Not comparable: a 135M student instead of 7B-32B, "
              "reference solutions truncated to a few hundred tokens instead of full reasoning traces, training on the "
              f"{c['n']} evaluated members only, lr {c['lr']}, and {c['n']} + {c['n']} questions (wide CIs).",
              "", f"Plots: `{stem}_roc.png`, `{stem}_hist.png`, `{stem}_curve.png`."]
    return "\n".join(lines) + "\n"
