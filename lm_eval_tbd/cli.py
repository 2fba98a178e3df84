"""``lm-eval-tbd``: the embedded demo and reports of lm-eval runs.

  lm-eval-tbd demo [--out DIR]                    offline end-to-end demo (the README's main job)
  lm-eval-tbd make-task NAME FILE [--dir DIR]     a named TBD task over your own JSONL file
  lm-eval-tbd report OUTPUT_PATH [--task T] [--tau X --alpha Y --max-tokens M]
                                                  rich report of a run written with --log_samples,
                                                  optionally re-scored without re-running the model
"""

from __future__ import annotations

import argparse
import sys

__all__ = ["main"]


def _report(args) -> int:
    from rich.console import Console

    from lm_eval_tbd.report import print_run
    from lm_eval_tbd.results import find_tasks, load_run
    from lm_eval_tbd.scores import TBDParams

    console = Console()
    tasks = args.task or find_tasks(args.output_path)
    if not tasks:
        console.print(f"[red]no TBD samples under {args.output_path}[/] (run lm_eval with --log_samples --output_path)")
        return 2
    params = None
    if any(v is not None for v in (args.tau, args.alpha, args.max_tokens)):
        defaults = TBDParams()
        params = TBDParams(
            tau=args.tau if args.tau is not None else defaults.tau,
            alpha=args.alpha if args.alpha is not None else defaults.alpha,
            max_tokens=args.max_tokens if args.max_tokens is not None else defaults.max_tokens,
        )
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
    print(f"wrote {path}; run it with: lm_eval --include_path {args.dir} --tasks {args.name} ...")
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
    rep.add_argument("--task", action="append", help="task name (repeatable; default: every tbd* task found)")
    rep.add_argument("--top", type=int, default=10, help="suspicious questions to list (default: 10)")
    rep.add_argument("--tau", type=float, help="re-score with this reference probability")
    rep.add_argument("--alpha", type=float, help="re-score with this exponent")
    rep.add_argument("--max-tokens", type=int, help="re-score the first M generated tokens")
    rep.set_defaults(func=_report)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (FileNotFoundError, ValueError) as err:
        print(f"lm-eval-tbd: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
