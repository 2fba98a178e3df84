"""Inflation: how much of a benchmark score does a leak explain, and does the label-free estimate
find it?

Two students with a known leak:

1. **The demo's student** (``lm-eval-tbd demo``: a 2-layer GPT-2 distilled on 48 of 96 generated
   word problems). True inflation: its accuracy on the members minus the unseen questions, minus
   the same gap for the model before distillation.
2. **The shift benchmark's leak students** (``benchmarks/shift.py``: SmolLM2-135M-Instruct
   distilled on s1K plus half of a 100-question MATH-500 or GSM8K subset). True inflation: the
   leaked half against the clean half. Read from ``shift.json`` (``--shift``).

Beside each: what ``lm_eval_tbd.core.accuracy.inflation`` estimates from the scores alone, with
no labels: the student's accuracy gap between its most seen-like quarter (by TBD) and the rest,
minus the base model's gap on the same split. Answers are judged on the greedy TBD generation
itself (the last number of the text against the problem's answer).

Writes ``inflation.{json,md}`` to ``--out``; the demo runs in ``--work`` (cached: delete its
``demo.json`` to run it again). ``--quick``: a short demo (CI); its figures mean nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from _shift_analysis import inflation_evidence, last_number

ROOT = Path(__file__).resolve().parents[1]


def demo_evidence(work: Path, *, quick: bool, n_resamples: int) -> dict:
    """The demo's student: true and estimated inflation on members + unseen questions."""
    import numpy as np

    from lm_eval_tbd.app.demo import TASKS, run_demo
    from lm_eval_tbd.core.samples import load_run
    from lm_eval_tbd.core.scores import decision_value
    from lm_eval_tbd.demo import make_problems

    n_questions, epochs = (16, 10) if quick else (96, 60)
    if not (work / "demo.json").is_file():
        run_demo(work, n_questions=n_questions, epochs=epochs)
    answers = {r["id"]: last_number(r["solution"]) for r in make_problems(n_questions + n_questions // 2, seed=0)}
    runs = {m: [q for t in TASKS[:2] for q in load_run(work / f"{m}_run", t).questions] for m in ("student", "base")}
    base_by_id = {q.question_id: q for q in runs["base"]}
    qs = runs["student"]
    ok = np.array([last_number(q.record.text) == answers[q.question_id] for q in qs], dtype=float)
    ok_base = np.array([last_number(base_by_id[q.question_id].record.text) == answers[q.question_id] for q in qs],
                       dtype=float)
    members = np.array([q.label == 1 for q in qs])
    return inflation_evidence(f"demo word problems ({members.sum()} members, {(~members).sum()} unseen)",
                              [decision_value("tbd", q.tbd) for q in qs], ok, ok_base, members, n_resamples=n_resamples)


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
        t, e = x["true"], x["estimated_from_scores"]
        g = t["student_gap_leaked_minus_clean"]
        gci = g.get("gap_ci") or [float("nan")] * 2
        ci = e.get("inflation_ci") or [float("nan")] * 2
        lines.append(f"| {name} | {x['set']} | {x['accuracy_student']:.2f} ({x['accuracy_base']:.2f}) | {g['gap']:+.2f} "
                     f"[{gci[0]:+.2f}, {gci[1]:+.2f}] | {t['inflation']:+.2f} | {e['inflation']:+.2f} [{ci[0]:+.2f}, "
                     f"{ci[1]:+.2f}] | {100 * t['overall_points']:+.1f} / {100 * e['overall_points']:+.1f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short demo for CI (figures meaningless)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--work", type=Path, help="the demo's folder (default: OUT/work-inflation[-quick])")
    parser.add_argument("--shift", type=Path, help="a shift.json to take the leak students' evidence from "
                                                   "(default: OUT/shift.json where it exists)")
    args = parser.parse_args(argv)
    out = args.out.resolve()
    work = (args.work or out / ("work-inflation-quick" if args.quick else "work-inflation")).resolve()
    stem = "inflation-quick" if args.quick else "inflation"
    n_resamples = 200 if args.quick else 2000
    rows = {"demo student": demo_evidence(work, quick=args.quick, n_resamples=n_resamples)}
    shift = args.shift or (out / "shift.json")
    if shift.is_file():
        rows.update(json.loads(shift.read_text()).get("inflation", {}))
    elif args.shift:
        raise SystemExit(f"--shift {args.shift}: no such file")
    from real_student import command_line

    from lm_eval_tbd.core.atomic import write_json_atomic, write_text_atomic

    command = command_line(sys.argv[1:] if argv is None else argv, "inflation.py")
    write_json_atomic(out / f"{stem}.json", {"command": command, "students": rows})
    write_text_atomic(out / f"{stem}.md", markdown(rows, command))
    print(f"wrote {stem}.json and {stem}.md to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
