"""The shift benchmark's analysis: every ordered pair of sets of each model, audited by every
candidate method, counted against the targets.

A *view* is a set as the audits see it: on the base model the two halves of MATH-500 (and of
GSM8K) are one clean 100-question set; on a student the leaked half stands alone (seen) and the
clean sets are its other half and the whole of the other benchmark.
"""

from __future__ import annotations

import math
from pathlib import Path

from benchmarks.audits.accuracy import leak_inflation
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
