"""Beyond the paper: every score, a combined detector and two robustness threats, on the real student.

Builds on ``python -m benchmarks.real_student``: reads its summary (``--name``) and cached work folder
(the base model, the distilled checkpoints, the question files and every logged generation), so
the scores of its runs are recomputed from the logs without new generation. New runs go through
the stock ``lm_eval`` CLI as there, on the last checkpoint:

1. **Reworded questions.** The same members and non-members reworded with
   ``lm_eval_tbd.core.rewording.reword`` (every kind: an instruction prefix chosen by seed and
   text, whitespace, LaTeX delimiters, numbers outside math written differently), greedy.
2. **Training after distillation.** The last checkpoint fine-tuned for 1 and 2 more epochs on
   unrelated data: ``--post-items`` question -> solution pairs drawn (seeded) from MATH-500 and
   GSM8K after removing any whose question overlaps an s1K question (the same normalised text,
   or a shared run of 12 words), with the distillation recipe; each scored greedily.
3. **Toy control.** The demo (``lm-eval-tbd demo``: a 2-layer GPT-2 trained until it memorises)
   and its null control, rescored with every score; and ``detection.json``'s toy student
   (figures only: its logs are not kept).

For every condition: each score's ROC AUC [95% CI] and strict TPR at 1% and 5% FPR; the paired
bootstrap AUC difference of each score against greedy TBD on the same questions; TBD over the
windows M; the combined detector (``lm_eval_tbd.core.combine``) out of fold, and cross-fitted
from the last checkpoint's original wording to the robustness variants (a user who calibrated
before the rewording or the further training; no question is scored by a model that saw its
label); and, for the robustness variants, each score's paired AUC change against the same score
on the original questions and checkpoint.

Writes ``beyond.{json,md}`` (``--stem``) to ``--out``. ``--quick`` works on ``real_student --quick``'s
folder for CI; its figures mean nothing. The library it calls: ``benchmarks.robustness``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchmarks._cli import check_stem, command_line
from benchmarks.robustness.pipeline import Run, run
from benchmarks.student.cache import run_stem, work_folder
from benchmarks.student.device import resolve_device

ROOT = Path(__file__).resolve().parents[1]
CONDITIONS = ("reworded", "post", "demo")


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="pipeline check on real_student --quick's output")
    parser.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data",
                        help="folder with s1k.jsonl, math500.jsonl and gsm8k_test.jsonl")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--name", help="the real_student run to build on (its --name; default real_student)")
    parser.add_argument("--work", type=Path, help="real_student's work folder (default: OUT/work-real-student[-quick])")
    parser.add_argument("--post-items", type=int, help="unrelated items for training after distillation (default 64)")
    parser.add_argument("--reword-seed", type=int, default=0)
    parser.add_argument("--conditions", default="reworded,post,demo",
                        help="new runs to make, comma-separated: reworded, post (training after distillation), demo "
                             "(the toy control; never with --quick). Default: all")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="where to train and score the new runs (auto: cuda where torch sees a GPU, else cpu)")
    parser.add_argument("--backend", choices=("vllm", "hf"),
                        help="lm_eval --model of the new passes (default: the real-student run's, hf where it "
                             "recorded none)")
    parser.add_argument("--eval-batch", type=int,
                        help="lm_eval --batch_size of the new passes (default: the real-student run's)")
    parser.add_argument("--stem", help="stem of the output files (default: beyond, or beyond-quick)")
    return parser


def main(argv=None) -> int:
    ap = parser()
    args = ap.parse_args(argv)
    if args.stem is not None:
        check_stem(ap, "--stem", args.stem)
    conditions = set(args.conditions.split(",")) - {""}
    if conditions - set(CONDITIONS):
        ap.error(f"--conditions: unknown {sorted(conditions - set(CONDITIONS))}; choose from reworded, post, demo")
    stem = run_stem(args.name, args.quick)
    check_stem(ap, "--name", stem)
    if args.eval_batch is not None and args.eval_batch < 1:
        ap.error(f"--eval-batch {args.eval_batch}: must be at least 1")
    out = args.out.resolve()
    run(Run(data_dir=args.data_dir, out=out, work=work_folder(args.work, out, args.quick), real_student=stem,
            out_stem=args.stem or ("beyond-quick" if args.quick else "beyond"),
            command=command_line(sys.argv[1:] if argv is None else argv, "beyond.py"),
            conditions=frozenset(conditions), post_items=args.post_items or (8 if args.quick else 64),
            device=resolve_device(args.device), backend=args.backend, eval_batch=args.eval_batch,
            reword_seed=args.reword_seed, quick=args.quick))
    return 0


if __name__ == "__main__":
    sys.exit(main())
