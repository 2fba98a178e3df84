"""Detection benchmark: does TBD catch real distillation data, and when?

The paper's S1 protocol at a size 2 CPU cores can run, with a positive and a null control:

1. s1K (``../shared/data/s1k.jsonl``) is shuffled with ``random.Random(42)``; the first 80% are
   distillation data (members), the last 20% never seen (non-members). So that sequences stay
   short enough for CPU training, only questions under ``--max-question-chars`` characters are
   used; the filter applies to both groups alike. The first ``--members`` members and the first
   ``--nonmembers`` non-members (in shuffled order) are evaluated.
2. A small GPT-2 with a locally trained tokenizer is first "pretrained" on MATH-500 and GSM8K
   (question -> solution in its chat format): the base model, which knows the answer format.
3. It is distilled on the members, question -> solution truncated to its first
   ``--answer-tokens`` tokens, loss on the response only, as the paper does (SFT on traces). A
   checkpoint is saved at each epoch of ``--epochs`` (one continuous schedule): the memorisation
   curve. Epoch 0 is the base model: the null control.
4. Every checkpoint scores members and non-members with the TBD task through the real
   ``lm_eval`` CLI (M = 300, input-side scores on, the base model as reference for the
   calibrated scores). TBD is re-scored from the logged log-probs for M in {100, 300} and tau in
   {0.9, 1.0}; every baseline comes from the same pass.
5. Reported per checkpoint: the share of members whose first 50 greedy tokens reproduce their
   training answer (is the student really memorising?), AUC with a bootstrap CI, and TPR@1%FPR
   (strict, and the paper's convention).

Writes ``detection.json``, ``detection.md``, ``roc.png``, ``hist.png`` and ``curve.png`` to
``--out`` (default ``benchmarks/results``). ``--quick`` is a reduced run for CI (<= 5 minutes).
Figures are reported, not asserted. The library it calls: ``benchmarks.toy``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchmarks.toy.pipeline import run

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="reduced run for CI (<= 5 minutes)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="directory with s1k/math500/gsm8k_test.jsonl")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--max-question-chars", type=int, default=600)
    args = parser.parse_args(argv)
    run(args.data, args.out.resolve(), max_question_chars=args.max_question_chars, quick=args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
