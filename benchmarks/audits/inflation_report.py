"""The inflation benchmark's markdown (``inflation.md``): each leak student's true inflation
beside the label-free estimate."""

from __future__ import annotations


def markdown(rows: dict, command: str) -> str:
    lines = ["# Inflation: what a leak did to the score", "",
             "True: accuracy on the seen questions (members, or the leaked half) minus the clean ones, minus the same gap "
             "for the base model. Estimated with no labels (`lm_eval_tbd.core.accuracy.inflation`): the student's gap, "
             "most seen-like quarter by TBD minus the rest, minus the base model's gap on the same split. Points: the "
             "share of the whole benchmark's accuracy each accounts for. Answers judged on the greedy TBD generation.",
             "", f"Command: `{command}`.", "",
             "| student | set | accuracy (base) | true gap seen - clean [CI] | true inflation | estimated inflation [CI] | "
             "points: true / estimated |", "|---|---|---|---|---|---|---|"]
    for name, x in rows.items():
        c = cells(x)
        lines.append(f"| {name} | {x['set']} | {c['accuracy']} | {c['gap']} | {c['inflation']} | {c['estimated']} | "
                     f"{c['points']} |")
    return "\n".join(lines) + "\n"


def cells(x: dict) -> dict[str, str]:
    """One leak student's evidence (``benchmarks.audits.accuracy.inflation_evidence``) as table
    cells: accuracy (base), true gap seen - clean [CI], true inflation, estimated inflation [CI],
    points of accuracy true / estimated, and the base model's gap."""
    t, e = x["true"], x["estimated_from_scores"]
    g = t["student_gap_leaked_minus_clean"]
    gci = g.get("gap_ci") or [float("nan")] * 2
    ci = e.get("inflation_ci") or [float("nan")] * 2
    return {"accuracy": f"{x['accuracy_student']:.2f} ({x['accuracy_base']:.2f})",
            "gap": f"{g['gap']:+.2f} [{gci[0]:+.2f}, {gci[1]:+.2f}]", "inflation": f"{t['inflation']:+.2f}",
            "estimated": f"{e['inflation']:+.2f} [{ci[0]:+.2f}, {ci[1]:+.2f}]",
            "points": f"{100 * t['overall_points']:+.1f} / {100 * e['overall_points']:+.1f}",
            "base_gap": f"{t['base_gap_same_halves']['gap']:+.2f}"}
