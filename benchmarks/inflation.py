"""Inflation: how much of a benchmark score does a leak explain, and does the label-free estimate
find it?

Two students with a known leak:

1. **The demo's student** (``lm-eval-tbd demo``: a 2-layer GPT-2 distilled on 48 of 96 generated
   word problems). True inflation: its accuracy on the members minus the unseen questions, minus
   the same gap for the model before distillation.
2. **The shift benchmark's leak students** (``python -m benchmarks.shift``: SmolLM2-135M-Instruct
   distilled on s1K plus half of a 100-question MATH-500 or GSM8K subset). True inflation: the
   leaked half against the clean half. Read from ``shift.json`` (``--shift``).

Beside each: what ``lm_eval_tbd.core.accuracy.inflation`` estimates from the scores alone, with
no labels: the student's accuracy gap between its most seen-like quarter (by TBD) and the rest,
minus the base model's gap on the same split. Answers are judged on the greedy TBD generation
itself (the last number of the text against the problem's answer). The library it calls:
``benchmarks.audits.accuracy`` and ``benchmarks.audits.inflation_report``.

Writes ``inflation.{json,md}`` to ``--out``; the demo runs in ``--work`` (cached: delete its
``demo.json`` to run it again). ``--quick``: a short demo (CI); its figures mean nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from benchmarks._cli import command_line
from benchmarks.audits.accuracy import demo_evidence
from benchmarks.audits.inflation_report import markdown

ROOT = Path(__file__).resolve().parents[1]


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
    from lm_eval_tbd.core.atomic import write_json_atomic, write_text_atomic

    command = command_line(sys.argv[1:] if argv is None else argv, "inflation.py")
    write_json_atomic(out / f"{stem}.json", {"command": command, "students": rows})
    write_text_atomic(out / f"{stem}.md", markdown(rows, command))
    print(f"wrote {stem}.json and {stem}.md to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
