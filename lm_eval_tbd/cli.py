"""``lm-eval-tbd``: the embedded demo and reports of lm-eval runs.

  lm-eval-tbd demo [--out DIR]                    offline end-to-end demo (the README's main job)
  lm-eval-tbd make-task NAME FILE [--dir DIR]     a named TBD task over your own JSONL file
  lm-eval-tbd report OUTPUT_PATH [--task T] [--tau X --alpha Y --max-tokens M]
                                                  rich report of a run written with --log_samples,
                                                  optionally re-scored without re-running the model
  lm-eval-tbd score FILE.jsonl [--questions Q.jsonl] [--tau X --alpha Y --max-tokens M] [--json OUT]
                                                  scores from generations logged by any backend or
                                                  API with per-token log-probs (lm_eval_tbd.logs)
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import shlex
import sys

__all__ = ["main"]


_PARAM_OPTIONS = {"tau": "--tau", "alpha": "--alpha", "max_tokens": "--max-tokens"}


def _finite_float(text: str) -> float:
    """argparse type: a finite number. ``float()`` alone accepts "inf" and "nan"."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def _non_negative_int(text: str) -> int:
    """argparse type of --top: an integer >= 0 (0 lists no questions; a negative count would
    slice the ranking from its end and list all but a few)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0 (0 lists none), got {value}")
    return value


def _params(args):
    """TBDParams from --tau/--alpha/--max-tokens (defaults for those not given), or None if none is.
    A value TBDParams refuses is a ValueError naming the option."""
    from lm_eval_tbd.scores import TBDParams

    given = {k: v for k, v in (("tau", args.tau), ("alpha", args.alpha), ("max_tokens", args.max_tokens)) if v is not None}
    for key, value in given.items():  # one at a time, so the message names the option at fault
        try:
            TBDParams(**{key: value})
        except ValueError as err:
            raise ValueError(f"{_PARAM_OPTIONS[key]} {value}: {err}") from None
    return TBDParams(**given) if given else None


def _score(args) -> int:
    """``lm-eval-tbd score``. The ``--json`` file is strict JSON: a non-finite float (a mean
    log-prob of -inf after a token of probability 0) is written as the string "-Infinity",
    "Infinity" or "NaN" (lm_eval_tbd.atomic.json_safe)."""
    from rich.console import Console

    from lm_eval_tbd.atomic import json_safe, write_json_atomic
    from lm_eval_tbd.logs import load_logged_generations
    from lm_eval_tbd.report import compare_scores, print_run, summarise
    from lm_eval_tbd.scores import TBDParams

    params = _params(args) or TBDParams()
    run = load_logged_generations(args.file, questions=args.questions, params=params)
    # Computed once for the terminal and the JSON (the comparison bootstraps every score).
    summary = summarise(run)
    comparison = compare_scores(run) if run.labelled and "roc_undefined" not in summary else None
    print_run(run, Console(), top=args.top, summary=summary, comparison=comparison)
    if args.json:
        out = {"file": str(args.file), "params": dataclasses.asdict(params), "summary": summary,
               "questions": [{"id": q.question_id, "label": q.label, "n_tokens": q.record.n_tokens, **q.scores}
                             for q in run.questions]}
        if comparison is not None:
            out["scores"] = comparison
        write_json_atomic(args.json, json_safe(out))
    return 0


def _report(args) -> int:
    from rich.console import Console

    from lm_eval_tbd.report import print_run
    from lm_eval_tbd.results import find_tasks, load_run

    console = Console()
    tasks = args.task or find_tasks(args.output_path)
    if not tasks:
        console.print(f"[red]no TBD samples under {args.output_path}[/] (run lm_eval with --log_samples --output_path)")
        return 2
    params = _params(args)
    for task in tasks:
        run = load_run(args.output_path, task)
        if params is not None:
            run = run.rescore(params)
            console.print(f"[dim]{task}: re-scored from logged log-probabilities with {params}[/]")
        print_run(run, console, top=args.top)
    return 0


def _make_task(args) -> int:
    from lm_eval_tbd.custom_tasks import write_jsonl_task

    path = write_jsonl_task(args.name, args.data_file, args.dir)
    print(f"wrote {path}; run it with: lm_eval --include_path {shlex.quote(args.dir)} --tasks {args.name} ...")
    return 0


def _demo(args) -> int:
    from lm_eval_tbd.demo import run_demo

    run_demo(args.out, n_questions=args.questions, epochs=args.epochs)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lm-eval-tbd", description="TBD contamination detection for lm-eval")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="offline end-to-end demo: distil a small student, score it, report")
    demo.add_argument("--out", default="demo_out", help="output directory (default: demo_out)")
    demo.add_argument("--questions", type=int, default=96, help="number of generated questions (default: 96)")
    demo.add_argument("--epochs", type=int, default=60, help="distillation epochs (default: 60)")
    demo.set_defaults(func=_demo)
    make = sub.add_parser("make-task", help="write a named TBD task over your own JSONL question file")
    make.add_argument("name", help="task name, e.g. my_heldout")
    make.add_argument("data_file", help="JSON Lines with 'question' (and optional 'id', 'label')")
    make.add_argument("--dir", default="tbd_tasks", help="directory for the YAML (default: tbd_tasks)")
    make.set_defaults(func=_make_task)
    rep = sub.add_parser("report", help="report a run written by lm_eval --log_samples --output_path")
    rep.add_argument("output_path")
    rep.add_argument("--task", action="append",
                     help="task name (repeatable; default: every task whose samples hold TBD generation records)")
    rep.add_argument("--top", type=_non_negative_int, default=10,
                     help="suspicious questions to list (default: 10; 0: none)")
    rep.add_argument("--tau", type=_finite_float, help="re-score with this reference probability")
    rep.add_argument("--alpha", type=_finite_float, help="re-score with this exponent")
    rep.add_argument("--max-tokens", type=int, help="re-score the first M generated tokens")
    rep.set_defaults(func=_report)
    score = sub.add_parser("score", help="score generations logged by any backend or API that recorded per-token "
                                         "log-probs (OpenAI responses or batch output, or plain logprob lists)")
    score.add_argument("file", help="JSON Lines of logged generations (see lm_eval_tbd.logs for the formats)")
    score.add_argument("--questions", help="question file (id, question, label) joined on id")
    score.add_argument("--top", type=_non_negative_int, default=10,
                       help="suspicious questions to list (default: 10; 0: none)")
    score.add_argument("--tau", type=_finite_float, help="reference probability (default 1.0)")
    score.add_argument("--alpha", type=_finite_float, help="exponent (default 0.6)")
    score.add_argument("--max-tokens", type=int, help="score the first M generated tokens (default 300)")
    score.add_argument("--json", help="also write the scores and figures here (atomically)")
    score.set_defaults(func=_score)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (FileNotFoundError, ValueError) as err:
        print(f"lm-eval-tbd: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
