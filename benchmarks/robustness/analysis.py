"""Beyond's figures: every score's ROC figures and paired difference against TBD per condition,
each score's AUC change under a threat, and the verdicts drawn from them."""

from __future__ import annotations

KEEP = ("auc", "auc_ci", "tpr@1%fpr", "tpr@5%fpr", "tpr@5%fpr_ci")
COMBINED, CALIBRATED_BEFORE = "combined", "combined (calibrated before)"


def _labels_and(run, name: str):
    from lm_eval_tbd.core.scores import decision_value

    return [q.label for q in run.questions], [decision_value(name, v) for v in run.score_values(name)]


def condition_figures(run, windows, n_resamples: int, combined: dict | None = None) -> dict:
    """Every score's ROC figures, TBD per window, paired differences against TBD (``vs_tbd``), and
    extra decision arrays by name (``combined``: the combined detector's out-of-fold decisions)."""
    from lm_eval_tbd.app.report import compare_scores
    from lm_eval_tbd.core.scores import TBDParams
    from lm_eval_tbd.core.stats import UndefinedMetricError, paired_auc_difference, roc_report

    scores = {k: {x: v[x] for x in KEEP} for k, v in compare_scores(run, n_resamples=n_resamples).items()}
    labels, tbd = _labels_and(run, "tbd")
    decisions = {k: _labels_and(run, k)[1] for k in scores}
    for name, values in (combined or {}).items():
        scores[name] = {x: v for x, v in roc_report(labels, values, n_resamples=n_resamples, seed=0).items() if x in KEEP}
        decisions[name] = list(values)
    vs_tbd = {}
    for name, values in decisions.items():
        if name != "tbd":
            d = paired_auc_difference(labels, values, tbd, n_resamples=n_resamples)
            vs_tbd[name] = {"difference": d["difference"], "ci": d["ci"], "p": d["p_two_sided"]}
    out = {"n_members": sum(labels), "n_nonmembers": len(labels) - sum(labels), "scores": scores, "vs_tbd": vs_tbd,
           "tbd_windows": {}}
    for m in windows:
        try:
            r = compare_scores(run.rescore(TBDParams(max_tokens=m)), n_resamples=n_resamples)["tbd"]
        except UndefinedMetricError:
            continue
        out["tbd_windows"][str(m)] = {x: r[x] for x in KEEP}
    return out


def change_against(original, variant, n_resamples: int) -> dict:
    """Each score's paired AUC(variant) - AUC(original) over the same questions (the robustness
    loss: negative = the variant hides the signal)."""
    from lm_eval_tbd.core.stats import paired_auc_difference

    ids = [q.question_id for q in original.questions]
    order = {q.question_id: i for i, q in enumerate(variant.questions)}
    if sorted(order) != sorted(ids):
        raise SystemExit(f"{variant.task}: not the questions of {original.task}")
    out = {}
    for name in original.questions[0].scores:
        if name not in (variant.questions[0].scores or {}):
            continue
        labels, a = _labels_and(original, name)
        _, b = _labels_and(variant, name)
        b = [b[order[i]] for i in ids]
        d = paired_auc_difference(labels, b, a, n_resamples=n_resamples)
        out[name] = {"difference": d["difference"], "ci": d["ci"], "p": d["p_two_sided"]}
    return out


def verdicts(s: dict) -> list[str]:
    """Plain statements from the figures: does any score beat greedy TBD on a real-student
    checkpoint (paired CI excluding 0) without losing on the other conditions; the issue's bar
    (+0.10 AUC with a CI excluding 0, and twice TBD's strict TPR at 5% FPR)."""
    out = []
    conditions = s["conditions"]
    student = [k for k in conditions if k.startswith("real student, epoch") and k.endswith(", greedy")
               and k != "real student, epoch 0, greedy"]  # the base model is the null control, not a student
    winners = set()
    for key in student:
        c = conditions[key]
        tbd = c["scores"]["tbd"]
        beats = sorted((n for n, d in c["vs_tbd"].items() if d["ci"][0] > 0), key=lambda n: -c["vs_tbd"][n]["difference"])
        line = f"{key}: TBD AUC {tbd['auc']:.3f}, TPR@5% {tbd['tpr@5%fpr']:.3f}; "
        if not beats:
            out.append(line + "no score beats it with a paired CI excluding 0.")
            continue
        parts = []
        for n in beats:
            d, r = c["vs_tbd"][n], c["scores"][n]
            bar = d["ci"][0] > 0 and d["difference"] >= 0.10 and r["tpr@5%fpr"] >= 2 * tbd["tpr@5%fpr"] and r["tpr@5%fpr"] > 0
            parts.append(f"{n} {d['difference']:+.3f} [{d['ci'][0]:+.3f}, {d['ci'][1]:+.3f}], TPR@5% "
                         f"{r['tpr@5%fpr']:.3f} (the bar: {'met' if bar else 'not met'})")
            winners.add(n)
        out.append(line + "beaten by " + "; ".join(parts) + ".")
    for n in sorted(winners):
        losses = [k for k, c in conditions.items() if n in c["vs_tbd"] and c["vs_tbd"][n]["ci"][1] < 0]
        out.append(f"{n} loses to TBD with a CI excluding 0 on: {', '.join(losses) or 'no condition'}.")
    if not winners:
        out.append("Nothing beats greedy TBD on any real-student checkpoint: TBD stays the default.")
    return out
