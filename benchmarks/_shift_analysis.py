"""The shift benchmark's analysis: every ordered pair of sets of each model, audited by every
candidate method, counted against the targets; its markdown and its verdict heat-map.

A *view* is a set as the audits see it: on the base model the two halves of MATH-500 (and of
GSM8K) are one clean 100-question set; on a student the leaked half stands alone (seen) and the
clean sets are its other half and the whole of the other benchmark.
"""

from __future__ import annotations

import math
from pathlib import Path

from lm_eval_tbd.core.calibrated import DEFAULT_MIN_TOKENS, calibrated_audit
from lm_eval_tbd.core.runs import TaskRun
from lm_eval_tbd.core.samples import load_run
from lm_eval_tbd.core.stats import UndefinedMetricError
from lm_eval_tbd.core.text_shift import DEFAULT_MAX_TEXT_AUC, text_only_auc

#: the scores audited: TBD and the generated-side likelihood scores every backend logs
SCORES = ("tbd", "gen_mean_logprob", "gen_min_k", "gen_zlib")
#: the README's audit thresholds
MAX_AUC, ALPHA = 0.65, 0.01
#: candidate -> (min_tokens, with the base run)
METHODS = {
    "raw": (0, False),
    f"length-{DEFAULT_MIN_TOKENS}": (DEFAULT_MIN_TOKENS, False),
    f"length-{DEFAULT_MIN_TOKENS}+base": (DEFAULT_MIN_TOKENS, True),
    "length-10": (10, False),
    "length-20": (20, False),
    "length-40": (40, False),
    "base": (0, True),
    "length-10+base": (10, True),
    "length-20+base": (20, True),
    "length-40+base": (40, True),
}
#: text-only AUC limits tried for the "confounded" verdict of the audits without a base run
TEXT_LIMITS = tuple(sorted({0.7, 0.75, 0.8, 0.85, 0.9, 0.95, DEFAULT_MAX_TEXT_AUC}))
VIEW_LABELS = {"aime24": "AIME24", "aime25": "AIME25", "math": "MATH", "math_a": "MATH a (leaked)",
               "math_b": "MATH b", "gsm": "GSM8K", "gsm_a": "GSM a (leaked)", "gsm_b": "GSM b",
               "s1k_members": "s1K members", "s1k_nonmembers": "s1K non-members"}


def _join(name: str, *runs: TaskRun) -> TaskRun:
    return TaskRun(name, runs[0].samples_file, tuple(q for r in runs for q in r.questions))


def views(runs: dict[str, TaskRun], seen: set[str]) -> dict[str, TaskRun]:
    """The sets as one model's audits see them (see the module text)."""
    out = {k: runs[k] for k in ("aime24", "aime25", "s1k_members", "s1k_nonmembers")}
    for src in ("math", "gsm"):
        a, b = runs[f"{src}_a"], runs[f"{src}_b"]
        if f"{src}_a" in seen:
            out[f"{src}_a"], out[f"{src}_b"] = a, b
        else:
            out[src] = _join(src, a, b)
    return out


def verdict(a: dict) -> str:
    return "FAIL" if a["auc"] > MAX_AUC or a["p_value"] < ALPHA else "PASS"


def _cell(bench: TaskRun, ref: TaskRun, base: dict | None, names: tuple[str, str], score: str, min_tokens: int,
          n_resamples: int) -> dict:
    kw = {}
    if base is not None:
        kw = {"base_benchmark": base[names[0]], "base_reference": base[names[1]]}
    try:
        a = calibrated_audit(bench, ref, score=score, min_tokens=min_tokens, n_resamples=n_resamples, **kw)
    except UndefinedMetricError as err:
        return {"verdict": "undefined", "reason": str(err)}
    return {"auc": round(a["auc"], 4), "auc_ci": [round(x, 4) for x in a["auc_ci"]], "p": a["p_value"],
            "share": round(a["contaminated_fraction"], 4), "n_b": a["n_benchmark"], "n_r": a["n_reference"],
            "excluded_b": len(a["excluded"]["benchmark"]), "excluded_r": len(a["excluded"]["reference"]),
            "flagged": len(a["flagged_ids"]), "verdict": verdict(a)}


def analyse(score_dirs: dict[str, Path], seen: dict[str, set[str]], tasks: dict[str, str], *, quick: bool = False,
            answers: dict[str, dict[str, str]] | None = None) -> dict:
    """Every audit of the benchmark: ``score_dirs`` model -> lm_eval output folder, ``seen`` model
    -> the sets it trained on, ``tasks`` set -> task name. Returns the summary (JSON-ready)."""
    n_resamples = 100 if quick else 1000
    runs = {m: {s: load_run(d, t) for s, t in tasks.items()} for m, d in score_dirs.items()}
    text_cache: dict[tuple[str, str], dict] = {}
    all_views = {m: views(runs[m], seen[m]) for m in runs}
    base_views_full = views(runs["base"], set())
    named = {k: v for vs in all_views.values() for k, v in vs.items()}  # the text is the same on every model

    def text(b: str, r: str) -> dict:
        if (b, r) not in text_cache:
            try:
                text_cache[(b, r)] = text_only_auc([q.question for q in named[b].questions],
                                                   [q.question for q in named[r].questions], n_resamples=n_resamples)
            except UndefinedMetricError as err:
                text_cache[(b, r)] = {"auc": None, "reason": str(err)}
        return text_cache[(b, r)]

    models = {}
    for m, vs in all_views.items():
        # The base model's runs of the same views (the halves split the same way).
        base = {k: (base_views_full[k] if k in base_views_full else runs["base"][k]) for k in vs}
        cells = []
        for b in vs:
            for r in vs:
                if b == r or r in seen[m]:  # references are clean sets only
                    continue
                kind = "power" if b in seen[m] else "null"
                exchangeable = (b, r) in (("math_a", "math_b"), ("gsm_a", "gsm_b"), ("s1k_members", "s1k_nonmembers"))
                t = text(b, r)
                cell = {"benchmark": b, "reference": r, "kind": kind, "exchangeable": exchangeable,
                        "text_auc": t.get("auc"), "text_auc_ci": t.get("auc_ci"), "audits": {}}
                for method, (min_tokens, with_base) in METHODS.items():
                    cell["audits"][method] = {
                        # the other scores' CIs are not reported: fewer resamples keep the analysis to minutes
                        score: _cell(vs[b], vs[r], base if with_base else None, (b, r), score, min_tokens,
                                     n_resamples if score == "tbd" else min(n_resamples, 200))
                        for score in SCORES if all(score in v.score_names() for v in (vs[b], vs[r]))}
                cells.append(cell)
        lengths = {k: _length_figures(v) for k, v in vs.items()}
        models[m] = {"seen": sorted(seen[m]), "cells": cells, "generated_tokens": lengths}
    summary = {"thresholds": {"max_auc": MAX_AUC, "alpha": ALPHA}, "methods": {k: {"min_tokens": v[0], "base": v[1]}
                                                                          for k, v in METHODS.items()},
               "models": models, "text_auc": {f"{b} vs {r}": v for (b, r), v in sorted(text_cache.items())}}
    summary["counts"] = counts(summary)
    summary["default"] = choose(summary)
    summary["text_limit"] = DEFAULT_MAX_TEXT_AUC
    summary["shipped"] = shipped(summary)
    if answers:
        summary["inflation"] = leak_inflation(runs, answers, quick=quick)
    return summary


#: the package's defaults as methods of this benchmark
SHIPPED = {"with_base": f"length-{DEFAULT_MIN_TOKENS}+base", "without_base": f"length-{DEFAULT_MIN_TOKENS}"}


def shipped(summary: dict) -> dict:
    """The package's defaults (lm_eval_tbd.core.calibrated.DEFAULT_MIN_TOKENS, text_shift.
    DEFAULT_MAX_TEXT_AUC) against the targets, per score, with the raw audit's counts beside."""
    out = {}
    for score in SCORES:
        raw = summary["counts"][f"raw / {score}"]["all"]
        limit = str(DEFAULT_MAX_TEXT_AUC)
        with_base = summary["counts"][f"{SHIPPED['with_base']} / {score}"]["text_limits"][limit]
        without = summary["counts"][f"{SHIPPED['without_base']} / {score}"]["text_limits"][limit]
        decided = {k: v["null"] - v["confounded_null"] - v["undefined"] for k, v in (("with", with_base), ("without", without))}
        out[score] = {"raw": raw, "with_base": with_base, "without_base_confounded_at": DEFAULT_MAX_TEXT_AUC,
                      "without_base": without,
                      "with_base_meets_targets": with_base["false_fail"] <= allowed_false_fails(decided["with"])
                      and not with_base["missed_where_exchangeable_detects"],
                      "without_base_meets_targets": without["false_fail"] <= allowed_false_fails(decided["without"])
                      and not without["missed_where_exchangeable_detects"]}
    return out


def _length_figures(run: TaskRun) -> dict:
    import numpy as np

    n = np.array([q.record.n_tokens for q in run.questions])
    return {"median": float(np.median(n)), "under_10": int((n < 10).sum()), "under_20": int((n < 20).sum()),
            "under_40": int((n < 40).sum()), "n": int(n.size)}


def _tally(cells: list[dict], method: str, score: str, text_limit: float | None = None) -> dict:
    """FAILs among null cells, detections among power cells, and confounded cells (text AUC at or
    above ``text_limit``, when given)."""
    out = {"null": 0, "false_fail": 0, "power": 0, "detected": 0, "confounded_null": 0, "confounded_power": 0,
           "undefined": 0, "missed_where_exchangeable_detects": []}
    exch = {c["benchmark"]: c["audits"][method].get(score, {}).get("verdict") for c in cells if c["exchangeable"]}
    for c in cells:
        a = c["audits"][method].get(score)
        if a is None:
            continue
        out[c["kind"]] += 1
        if a["verdict"] == "undefined":
            out["undefined"] += 1
            continue
        if text_limit is not None and c["text_auc"] is not None and c["text_auc"] >= text_limit:
            out[f"confounded_{c['kind']}"] += 1
            continue
        if c["kind"] == "null" and a["verdict"] == "FAIL":
            out["false_fail"] += 1
        if c["kind"] == "power":
            if a["verdict"] == "FAIL":
                out["detected"] += 1
            elif exch.get(c["benchmark"]) == "FAIL":
                out["missed_where_exchangeable_detects"].append(f"{c['benchmark']} vs {c['reference']}")
    return out


def counts(summary: dict) -> dict:
    """Per method and score: the tallies over every model's cells, and per model."""
    out = {}
    for method in METHODS:
        for score in SCORES:
            per_model = {m: _tally(v["cells"], method, score) for m, v in summary["models"].items()}
            total = _sum(per_model.values())
            entry = {"all": total, "per_model": per_model,
                     "text_limits": {str(t): _sum(_tally(v["cells"], method, score, t)
                                                  for v in summary["models"].values()) for t in TEXT_LIMITS}}
            out[f"{method} / {score}"] = entry
    return out


def _sum(tallies) -> dict:
    tallies = list(tallies)
    out = {k: sum(t[k] for t in tallies) for k in tallies[0] if k != "missed_where_exchangeable_detects"}
    out["missed_where_exchangeable_detects"] = [x for t in tallies for x in t["missed_where_exchangeable_detects"]]
    return out


def allowed_false_fails(n_null: int) -> int:
    return math.ceil(round(ALPHA * n_null, 9))


def choose(summary: dict) -> dict:
    """The methods that meet both targets on TBD: false FAILs over the null cells at most
    ceil(alpha x cells), and every leaked set detected against every clean reference wherever its
    exchangeable test detects it. Among those, the most detections, then the fewest false FAILs."""
    ok = []
    for method, (_, with_base) in METHODS.items():
        t = summary["counts"][f"{method} / tbd"]["all"]
        meets = t["false_fail"] <= allowed_false_fails(t["null"]) and not t["missed_where_exchangeable_detects"]
        ok.append({"method": method, "base": with_base, "false_fail": t["false_fail"], "null": t["null"],
                   "detected": t["detected"], "power": t["power"], "meets_targets": meets})
    ranked = sorted(ok, key=lambda x: (not x["meets_targets"], -x["detected"], x["false_fail"]))
    return {"ranking": ranked, "with_base": next((x for x in ranked if x["base"]), None),
            "without_base": next((x for x in ranked if not x["base"]), None)}


# ---- report -------------------------------------------------------------------------------------


def _fmt_t(t: dict) -> str:
    miss = len(t["missed_where_exchangeable_detects"])
    return (f"{t['false_fail']}/{t['null']}; {t['detected']}/{t['power']}"
            + (f"; {miss} missed" if miss else ""))


def markdown(s: dict, stem: str) -> str:
    cfg = s["settings"]["cfg"]
    lines = [f"# Shift benchmark ({stem})", "",
             "Audits of every ordered pair of question sets, on the base model and on two students that leaked a "
             "known half of one benchmark. Null cell: both sets clean for that model (every base-model cell); power "
             "cell: a leaked half or the s1K members against a clean reference. Verdict FAIL: AUC > "
             f"{MAX_AUC} or one-sided p < {ALPHA} (the README's thresholds).", "",
             f"Command: `{s['command']}`. Scored with `lm_eval --model {s['settings']['backend']}` on "
             f"{s['settings']['cpus']} CPU cores; M = {cfg['max_tokens']}; students: {cfg['n']} s1K members + {cfg['subset'] // 2} leaked "
             f"questions, lr {cfg['lr']}, {cfg['epochs']} epochs. Total {s['seconds'] / 60:.1f} min "
             f"({', '.join(f'{k} {v / 60:.1f}' for k, v in s['timings'].items())} min).", "",
             "## The package's defaults", "",
             "Questions whose generation ended before 20 tokens left out; the verdict `confounded` (no PASS or FAIL) "
             "where the text-only AUC reaches the limit, with or without a base run.", ""]
    for score, x in s["shipped"].items():
        raw = x["raw"]
        parts = []
        for key, label in (("without_base", f"student only ({SHIPPED['without_base']})"),
                           ("with_base", f"with the base run ({SHIPPED['with_base']})")):
            t = x[key]
            decided = t["null"] - t["confounded_null"] - t["undefined"]
            missed = t["missed_where_exchangeable_detects"]
            parts.append(f"{label}: {t['false_fail']}/{decided} false FAILs among decided null cells (allowed "
                         f"{allowed_false_fails(decided)}), {t['detected']}/{t['power'] - t['confounded_power']} decided "
                         f"power cells detected, {t['confounded_null']} null and {t['confounded_power']} power cells "
                         f"confounded" + (f", missed where the exchangeable test detects: {', '.join(missed)}" if missed else "")
                         + f"; targets {'met' if x[key + '_meets_targets'] else 'NOT met'}")
        lines.append(f"- **{score}**: raw audit {raw['false_fail']}/{raw['null']} false FAILs, {raw['detected']}/"
                     f"{raw['power']} detected. Confounded at text AUC >= {x['without_base_confounded_at']}: "
                     + "; ".join(parts) + ".")
    lines += ["", "## Best candidates by the targets (TBD)", ""]
    d = s["default"]
    for key, label in (("with_base", "with a base-model run"), ("without_base", "without one")):
        x = d[key]
        if x:
            lines.append(f"- {label}: **{x['method']}**: {x['false_fail']}/{x['null']} false FAILs (allowed "
                         f"{allowed_false_fails(x['null'])}), {x['detected']}/{x['power']} power cells detected; "
                         f"targets {'met' if x['meets_targets'] else 'NOT met'}.")
    lines += ["", "## False FAILs and detections by method (TBD)", "",
              "Each cell: false FAILs / null cells; detected / power cells; power cells missed where the "
              "exchangeable test detects", "", "| method | all | " + " | ".join(s["models"]) + " |",
              "|---|---|" + "---|" * len(s["models"])]
    for method in METHODS:
        c = s["counts"][f"{method} / tbd"]
        lines.append(f"| {method} | {_fmt_t(c['all'])} | " + " | ".join(_fmt_t(c["per_model"][m]) for m in s["models"]) + " |")
    lines += ["", "## Other scores (all models)", "", "| method | " + " | ".join(SCORES) + " |",
              "|---|" + "---|" * len(SCORES)]
    for method in METHODS:
        lines.append(f"| {method} | " + " | ".join(_fmt_t(s["counts"][f"{method} / {sc}"]["all"]) for sc in SCORES) + " |")
    lines += ["", "## The confounded verdict by text-only AUC (TBD)", "",
              "Cells whose text-only AUC reaches the limit get `confounded` instead of PASS/FAIL.", "",
              "| method | text AUC limit | false FAILs / decided null | detected / decided power | confounded null | "
              "confounded power |", "|---|---|---|---|---|---|"]
    for method in METHODS:
        for limit, t in s["counts"][f"{method} / tbd"]["text_limits"].items():
            lines.append(f"| {method} | {limit} | {t['false_fail']}/{t['null'] - t['confounded_null'] - t['undefined']} | "
                         f"{t['detected']}/{t['power'] - t['confounded_power']} | {t['confounded_null']} | "
                         f"{t['confounded_power']} |")
    if s.get("inflation"):
        lines += ["", "## What the leak did to the score", "",
                  "Accuracy of each model's greedy answer (the TBD generation, M tokens) on the 100 questions of the leaked "
                  "benchmark. True: leaked half minus clean half, minus the same for the base model. Estimated (no labels, "
                  "`lm_eval_tbd.core.accuracy.inflation`): the student's gap, most seen-like quarter by TBD minus the rest, "
                  "minus the base model's gap on the same split.", "",
                  "| student | accuracy (base) | true gap leaked - clean [CI] | base gap | true inflation | estimated "
                  "inflation [CI] | points of accuracy: true / estimated |", "|---|---|---|---|---|---|---|"]
        for student, x in s["inflation"].items():
            t, e = x["true"], x["estimated_from_scores"]
            g = t["student_gap_leaked_minus_clean"]
            ci = e.get("inflation_ci") or [float("nan")] * 2
            gci = g.get("gap_ci") or [float("nan")] * 2
            lines.append(f"| {student} | {x['accuracy_student']:.2f} ({x['accuracy_base']:.2f}) | {g['gap']:+.2f} "
                         f"[{gci[0]:+.2f}, {gci[1]:+.2f}] | {t['base_gap_same_halves']['gap']:+.2f} | {t['inflation']:+.2f} | "
                         f"{e['inflation']:+.2f} [{ci[0]:+.2f}, {ci[1]:+.2f}] | {100 * t['overall_points']:+.1f} / "
                         f"{100 * e['overall_points']:+.1f} |")
    lines += ["", "## Text-only AUC of each pair", "", "| benchmark vs reference | AUC [95% CI] |", "|---|---|"]
    for pair, t in s["text_auc"].items():
        ci = t.get("auc_ci")
        lines.append(f"| {pair} | " + (f"{t['auc']:.2f} [{ci[0]:.2f}, {ci[1]:.2f}]" if t.get("auc") is not None
                                       else t.get("reason", "-")) + " |")
    lines += ["", "## Generated length (tokens)", "", "| model | " + " | ".join(VIEW_LABELS[k] for k in VIEW_LABELS) + " |",
              "|---|" + "---|" * len(VIEW_LABELS)]
    for m, v in s["models"].items():
        g = v["generated_tokens"]
        lines.append(f"| {m} | " + " | ".join(f"{g[k]['median']:.0f} ({g[k]['under_20']}/{g[k]['n']} < 20)" if k in g
                                              else "" for k in VIEW_LABELS) + " |")
    lines += ["", "Median (questions under 20 tokens / questions).", "",
              f"## Every TBD cell, raw and the default ({SHIPPED['without_base']}; confounded at text AUC >= {s['text_limit']})", "",
              "| model | benchmark | reference | kind | text AUC | raw AUC (p) | "
              "raw | default AUC [CI] (p) | excluded b/r | default |", "|---|---|---|---|---|---|---|---|---|---|"]
    default = SHIPPED["without_base"]
    for m, v in s["models"].items():
        for c in v["cells"]:
            raw, dft = c["audits"]["raw"].get("tbd", {}), c["audits"].get(default, {}).get("tbd", {})
            if "auc" not in raw or "auc" not in dft:
                continue
            shown = "confounded" if c["text_auc"] is not None and c["text_auc"] >= s["text_limit"] else dft["verdict"]
            lines.append(f"| {m} | {c['benchmark']} | {c['reference']} | {c['kind']} | {c['text_auc'] or float('nan'):.2f} | "
                         f"{raw['auc']:.3f} ({raw['p']:.2g}) | {raw['verdict']} | {dft['auc']:.3f} [{dft['auc_ci'][0]:.2f}, "
                         f"{dft['auc_ci'][1]:.2f}] ({dft['p']:.2g}) | {dft['excluded_b']}/{dft['excluded_r']} | "
                         f"{shown} |")
    return "\n".join(lines) + "\n"


def plot(s: dict, path: Path) -> None:
    """The verdict matrices of TBD: one panel per model and method (raw, the default without a
    base run with its confounded cells, the default with one)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from lm_eval_tbd.core.atomic import write_bytes_atomic

    # the raw audit, then the package's defaults (confounded cells from the text-only limit on)
    panels = [("raw", None), (SHIPPED["without_base"], s["text_limit"]), (SHIPPED["with_base"], s["text_limit"])]
    models = list(s["models"])
    fig, axes = plt.subplots(len(models), len(panels), figsize=(4.6 * len(panels), 4.2 * len(models)), squeeze=False)
    colours = {"PASS": 0, "FAIL": 1, "confounded": 2, "undefined": 3, None: 4}
    cmap = matplotlib.colors.ListedColormap(["#4caf50", "#e53935", "#9e9e9e", "#fdd835", "white"])
    for i, m in enumerate(models):
        cells = s["models"][m]["cells"]
        names = list(dict.fromkeys([c["benchmark"] for c in cells] + [c["reference"] for c in cells]))
        for j, (method, limit) in enumerate(panels):
            grid = np.full((len(names), len(names)), colours[None])
            ax = axes[i][j]
            for c in cells:
                a = c["audits"][method].get("tbd", {})
                v = a.get("verdict")
                if limit is not None and c["text_auc"] is not None and c["text_auc"] >= limit:
                    v = "confounded"
                bi, ri = names.index(c["benchmark"]), names.index(c["reference"])
                grid[bi, ri] = colours[v]
                if c["kind"] == "power":
                    ax.text(ri, bi, "seen", ha="center", va="center", fontsize=6)
            ax.imshow(grid, cmap=cmap, vmin=0, vmax=4)
            ax.set_xticks(range(len(names)), [VIEW_LABELS[n] for n in names], rotation=60, ha="right", fontsize=6)
            ax.set_yticks(range(len(names)), [VIEW_LABELS[n] for n in names], fontsize=6)
            title = f"{m}: {method}" + (f", confounded at text AUC >= {limit}" if limit is not None else "")
            ax.set_title(title, fontsize=8)
            if j == 0:
                ax.set_ylabel("benchmark", fontsize=7)
            ax.set_xlabel("reference", fontsize=7)
    handles = [matplotlib.patches.Patch(color=cmap(colours[k]), label=k) for k in ("PASS", "FAIL", "confounded", "undefined")]
    fig.legend(handles=handles, loc="lower center", ncol=4, fontsize=8)
    fig.suptitle("Audit verdicts on TBD (FAIL: AUC > 0.65 or p < 0.01); 'seen' marks power cells", fontsize=10)
    fig.tight_layout(rect=(0, 0.03, 1, 0.97))
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    write_bytes_atomic(path, buf.getvalue())


# ---- what the leak did to the score (issue 26's evidence) ----------------------------------------


def _boxed(text: str) -> str | None:
    """The content of the last ``\\boxed{...}`` in ``text`` (braces balanced), or None."""
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    depth, i = 0, start + len("\\boxed{") - 1
    for j in range(i, len(text)):
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        if depth == 0:
            return text[i + 1:j]
    return None


def _norm(answer: str) -> str:
    import re

    a = answer.strip().strip("$").replace("\\left", "").replace("\\right", "").replace("\\!", "")
    a = re.sub(r"\\text\{([^}]*)\}", r"\1", a)
    a = re.sub(r"\\[dt]?frac", r"\\frac", a)
    return re.sub(r"\s+", "", a).rstrip(".").replace("^\\circ", "").replace("^{\\circ}", "")


def correct(text: str, answer: str, source: str) -> bool:
    """Whether a generation answers correctly: MATH, the last ``\\boxed{}`` equals the reference
    answer after light normalisation; GSM8K, the last number in the text equals the answer."""

    if source == "math":
        got = _boxed(text)
        return got is not None and _norm(got) == _norm(answer)
    got = last_number(text)
    try:
        return got is not None and got == float(str(answer).replace(",", ""))
    except ValueError:
        return False


def last_number(text: str) -> float | None:
    """The last number in ``text`` (thousands separators dropped), or None."""
    import re

    numbers = re.findall(r"-?\d[\d,]*(?:\.\d+)?", text)
    return float(numbers[-1].replace(",", "")) if numbers else None


def inflation_evidence(set_label: str, decision, ok, ok_base, seen, *, n_resamples: int) -> dict:
    """One leak student's evidence: the true inflation (accuracy ``ok`` on the ``seen`` questions
    minus the rest, minus the same gap of the base model's ``ok_base``) beside the label-free
    estimate of ``lm_eval_tbd.core.accuracy.inflation`` from the student's ``decision`` values."""
    import numpy as np

    from lm_eval_tbd.core.accuracy import group_gap, inflation

    ok, ok_base, seen = (np.asarray(x, dtype=float) for x in (ok, ok_base, seen))
    true_student = group_gap(ok, seen.astype(bool), n_resamples=n_resamples)
    true_base = group_gap(ok_base, seen.astype(bool), n_resamples=n_resamples)
    return {"set": set_label, "accuracy_student": float(ok.mean()), "accuracy_base": float(ok_base.mean()),
            "true": {"student_gap_leaked_minus_clean": true_student, "base_gap_same_halves": true_base,
                     "inflation": true_student["gap"] - true_base["gap"],
                     "overall_points": (true_student["gap"] - true_base["gap"]) * float(seen.mean())},
            "estimated_from_scores": inflation(decision, ok, ok_base, n_resamples=n_resamples)}


def leak_inflation(runs: dict[str, dict[str, TaskRun]], answers: dict[str, dict[str, str]], *, quick: bool = False) -> dict:
    """Per leak student: the true inflation (accuracy of its greedy M-token answers on the leaked
    half minus the clean half, and the same for the base model) beside what the scores estimate
    with no labels (``lm_eval_tbd.core.accuracy.inflation`` over the whole 100-question set: the
    student's accuracy gap, most seen-like quarter by TBD against the rest, minus the base
    model's on the same split). Correctness is judged on the TBD generation itself (M tokens)."""
    import numpy as np

    from lm_eval_tbd.core.scores import decision_value

    n_resamples = 200 if quick else 2000
    out = {}
    for student, source in (("student-math", "math"), ("student-gsm", "gsm")):
        if student not in runs:
            continue
        qs = {m: [q for half in ("a", "b") for q in runs[m][f"{source}_{half}"].questions] for m in (student, "base")}
        leaked = np.array([half == "a" for half in ("a", "b") for _ in runs[student][f"{source}_{half}"].questions])
        base_by_id = {q.question_id: q for q in qs["base"]}
        ok = np.array([correct(q.record.text, answers[source][q.question_id], source) for q in qs[student]], dtype=float)
        ok_base = np.array([correct(base_by_id[q.question_id].record.text, answers[source][q.question_id], source)
                            for q in qs[student]], dtype=float)
        decision = [decision_value("tbd", q.tbd) for q in qs[student]]
        out[student] = inflation_evidence(f"{source} (100: half a leaked, half b clean)", decision, ok, ok_base, leaked,
                                          n_resamples=n_resamples)
    return out
