"""The shift benchmark's report: its markdown (``shift.md``) and its verdict heat-map."""

from __future__ import annotations

from pathlib import Path

from benchmarks.audits.analysis import ALPHA, MAX_AUC, METHODS, SCORES, SHIPPED, allowed_false_fails
from benchmarks.audits.inflation_report import cells

VIEW_LABELS = {"aime24": "AIME24", "aime25": "AIME25", "math": "MATH", "math_a": "MATH a (leaked)",
               "math_b": "MATH b", "gsm": "GSM8K", "gsm_a": "GSM a (leaked)", "gsm_b": "GSM b",
               "s1k_members": "s1K members", "s1k_nonmembers": "s1K non-members"}


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
            c = cells(x)
            lines.append(f"| {student} | {c['accuracy']} | {c['gap']} | {c['base_gap']} | {c['inflation']} | "
                         f"{c['estimated']} | {c['points']} |")
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
