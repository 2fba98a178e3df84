"""Beyond's markdown report (``beyond.md``) from its summary."""

from __future__ import annotations

from benchmarks.robustness.analysis import CALIBRATED_BEFORE, COMBINED
from benchmarks.student.report import ci, machine


def _delta(d: dict | None) -> str:
    return "-" if d is None else f"{d['difference']:+.3f} [{d['ci'][0]:+.3f}, {d['ci'][1]:+.3f}]"


def markdown(s: dict) -> str:
    """``beyond.md``: the overview of every condition, how fast each score falls under the threats,
    every score per condition, the data and the verdicts."""
    from lm_eval_tbd.core.scores import SCORES

    st = s["settings"]
    lines = ["# Beyond the paper: every score, a combined detector, robustness (real student)", "",
             f"Command: `{s['command']}`; {s['seconds'] / 60:.1f} min for the new runs and the analysis (the sum of the steps' measured times; the toy demo not counted) on "
             f"{machine(st)}. Builds on `{st['real_student']}.md` (the same student, questions and split)."
             + (f" New passes scored with: {st['backend']}." if "backend" in st else ""), "",
             "AUC [95% bootstrap CI] with members as positives; strict TPR at 1% and 5% FPR. ΔAUC vs TBD: paired "
             f"bootstrap on the same questions. `{COMBINED}`: logistic regression over the pass's scores, out of fold "
             f"(5 stratified folds), never in-sample; `{CALIBRATED_BEFORE}`: fitted on the last checkpoint's original "
             "wording and applied to the variant, cross-fitted so no question is scored by a model that saw its label.",
             "", "## Overview", "",
             "| condition | members memorised | TBD AUC [95% CI] | TPR@1% / 5% | best other score: AUC, ΔAUC vs TBD [95% CI] | "
             f"{COMBINED} (out of fold) |", "|---|---|---|---|---|---|"]
    for name, c in s["conditions"].items():
        t = c["scores"]["tbd"]
        others = {k: v["auc"] for k, v in c["scores"].items() if k not in ("tbd", CALIBRATED_BEFORE)}
        best = max(others, key=others.get)
        memo = c.get("memorisation")
        lines.append(f"| {name} | {'-' if memo is None else format(memo['memorised_share'], '.0%')} | {ci(t)} | "
                     f"{t['tpr@1%fpr']:.3f} / {t['tpr@5%fpr']:.3f} | {best}: {others[best]:.3f}, {_delta(c['vs_tbd'].get(best))} | "
                     f"{ci(c['scores'][COMBINED]) if COMBINED in c['scores'] else '-'} |")
    if s.get("toy_detection"):
        d = s["toy_detection"]
        lines += ["", f"Toy student of `detection.py` ({d['note']}): " + ", ".join(f"{k} {v:.3f}" for k, v in d["auc"].items())
                  + " (AUC; no per-question logs are kept, so no CIs or paired differences)."]
    if s.get("robustness"):
        # every score some condition has (the sampled pass has no question side, say)
        orig = s["conditions"][s["original"]]["scores"]
        names = [n for n in list(SCORES) + [COMBINED] if n in orig and any(n in v for v in s["robustness"].values())]
        lines += ["", "## How fast each score's AUC falls", "",
                  f"Paired ΔAUC of each score against the same score on the original questions after {st['last']} epochs "
                  "(negative = the signal is hidden).", "",
                  "| score | original AUC | " + " | ".join(s["robustness"]) + " |", "|---|---|" + "---|" * len(s["robustness"])]
        for n in names:
            lines.append(f"| {n} | {orig[n]['auc']:.3f} | " + " | ".join(_delta(v.get(n)) for v in s["robustness"].values()) + " |")
    for name, c in s["conditions"].items():
        lines += ["", f"## {name}", "", c["note"], "",
                  "| score | seen when | AUC [95% CI] | TPR@1% | TPR@5% | ΔAUC vs TBD [95% CI] |", "|---|---|---|---|---|---|"]
        for n, r in c["scores"].items():
            direction = SCORES[n].higher_is_seen if n in SCORES else True
            lines.append(f"| {n} | {'higher' if direction else 'lower'} | {ci(r)} | {r['tpr@1%fpr']:.3f} | "
                         f"{r['tpr@5%fpr']:.3f} | {_delta(c['vs_tbd'].get(n))} |")
        if c["tbd_windows"]:
            lines += ["", "TBD by window: " + ", ".join(f"M={m}: {v['auc']:.3f}" for m, v in c["tbd_windows"].items())]
    if "post_data" in s or "reword_example" in s:
        lines += ["", "## Data"]
    if "post_data" in s:
        p = s["post_data"]
        lines += ["", f"Training after distillation: {p['n']} items drawn (seed 0) from MATH-500 and GSM8K. Overlap check "
                  f"against all of s1K: {p['overlap']['candidates']} candidates, {p['overlap']['same_text']} dropped for the "
                  f"same normalised question, {p['overlap']['shared_12_words']} for a shared run of 12 words. Response loss "
                  "by epoch: " + ", ".join(f"{x:.3f}" for x in p["losses"]) + "."]
    if "reword_example" in s:
        lines += ["", f"Rewording (seed {st['reword_seed']}), for example: `{s['reword_example']['original']!r}` becomes "
                  f"`{s['reword_example']['reworded']!r}`."]
    lines += ["", "## Verdicts", ""] + [f"- {v}" for v in s["verdicts"]]
    return "\n".join(lines) + "\n"
