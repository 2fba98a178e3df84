"""``lm-eval-tbd``: the embedded demo and reports of lm-eval runs.

  lm-eval-tbd demo [--out DIR]                    offline end-to-end demo (the README's main job)
  lm-eval-tbd make-task NAME FILE [--dir DIR]     a named TBD task over your own JSONL file
  lm-eval-tbd report OUTPUT_PATH [--task T] [--tau X --alpha Y --max-tokens M] [--plot DIR] [--json PATH]
                     [--reference TASK [--base BASE_OUT] [--max-auc X] [--significance P] [--fdr Q] ...]
                                                  rich report of a run written with --log_samples,
                                                  optionally re-scored without re-running the model,
                                                  and audited against a clean reference task
                     [--combined MODEL]           ... with the score of a fitted combined detector
                     [--accuracy TBD_TASK=TASK[:METRIC]]  ... and the ordinary task's accuracy against
                                                  seen-likeness (paired by name by default)
  lm-eval-tbd combine fit OUTPUT_PATH... --out MODEL.json
                                                  fit a combined detector on labelled runs (out-of-fold
                                                  figures only; lm_eval_tbd.core.combine)
  lm-eval-tbd score FILE.jsonl [--questions Q.jsonl] [--tau X --alpha Y --max-tokens M] [--json OUT]
                                                  scores from generations logged by any backend or
                                                  API with per-token log-probs (lm_eval_tbd.core.logs)
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import shlex
import sys
from pathlib import Path

# Each command imports its modules when it runs (deferred imports below): `lm-eval-tbd --help`
# and option errors stay fast, with no numpy, scikit-learn, torch or lm-eval loaded.

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


def _positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    value = _finite_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text!r}")
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


def _int_at_least(minimum: int, why: str = ""):
    """argparse type: an integer >= ``minimum`` (argparse names the option in its message)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be an integer >= {minimum}{why}, got {value}")
        return value

    return parse


def _params(args):
    """TBDParams from --tau/--alpha/--max-tokens (defaults for those not given), or None if none is.
    A value TBDParams refuses is a ValueError naming the option."""
    from lm_eval_tbd.core.scores import TBDParams

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
    "Infinity" or "NaN" (lm_eval_tbd.core.atomic.json_safe)."""
    from rich.console import Console

    from lm_eval_tbd.app.report import print_run
    from lm_eval_tbd.app.reporting import task_figures
    from lm_eval_tbd.core.atomic import json_safe, write_json_atomic
    from lm_eval_tbd.core.logs import load_logged_generations
    from lm_eval_tbd.core.scores import TBDParams

    given = _params(args)
    params = given or TBDParams()
    run = load_logged_generations(args.file, questions=args.questions, params=params)
    note = run.zero_tbd_note()
    if note and given is not None:
        raise ValueError(f"{note}; choose another --tau / --alpha")
    if note:
        print(f"lm-eval-tbd: warning: {note}", file=sys.stderr)
    # Computed once for the terminal and the JSON (the comparison bootstraps every score).
    figures = task_figures(run)
    print_run(run, Console(), top=args.top, summary=figures.summary, comparison=figures.comparison)
    if args.json:
        out = {"file": str(args.file), "params": dataclasses.asdict(params), "summary": figures.summary,
               "questions": [{"id": q.question_id, "label": q.label, "n_tokens": q.record.n_tokens, **q.scores}
                             for q in run.questions]}
        if figures.comparison is not None:
            out["scores"] = figures.comparison
        write_json_atomic(args.json, json_safe(out))
    return 0


def _features(text: str | None) -> list[str] | None:
    """--features: comma-separated score names, each once; None when not given."""
    if text is None:
        return None
    features = [f.strip() for f in text.split(",")]
    if not all(features):
        raise ValueError(f"--features {text!r}: an empty score name; give comma-separated scores, e.g. tbd,gen_min_k")
    twice = sorted({f for f in features if features.count(f) > 1})
    if twice:
        raise ValueError(f"--features {text!r}: {', '.join(twice)} given twice")
    return features


def _combine_fit(args) -> int:
    """``lm-eval-tbd combine fit OUT... --out model.json``: fit the combined detector on the
    labelled TBD tasks of the given lm-eval output folders; print its out-of-fold figures."""
    from rich.console import Console

    from lm_eval_tbd.core.combine import fit_combined
    from lm_eval_tbd.core.samples import find_tasks, load_run

    runs = []
    for folder in args.runs:
        for task in args.task or find_tasks(folder):
            run = load_run(folder, task)
            if not run.labelled:
                raise ValueError(f"{folder}: task {task} has no labels; fitting needs labelled questions "
                                 "(your distillation set against held-out ones)")
            runs.append(run)
    if not runs:
        raise ValueError(f"no TBD tasks under {', '.join(args.runs)}")
    features = _features(args.features)
    model = fit_combined(runs, features=features, folds=args.folds, C=args.C,
                         warn=lambda msg: print(f"lm-eval-tbd: warning: {msg}", file=sys.stderr))
    model.save(args.out)
    r = model.out_of_fold
    Console().print(
        f"combined detector over {len(model.features)} scores ({', '.join(model.features)}), fitted on "
        f"{model.n_members} members and {model.n_nonmembers} non-members\n"
        f"out of fold ({model.folds}-fold): AUC {r['auc']:.3f} [{r['auc_ci'][0]:.2f}, {r['auc_ci'][1]:.2f}], "
        f"TPR@1%FPR {r['tpr@1%fpr']:.3f}, TPR@5%FPR {r['tpr@5%fpr']:.3f}\nwrote {args.out}", highlight=False)
    return 0


def _report(args) -> int:
    """``lm-eval-tbd report`` (lm_eval_tbd.app.reporting). Exit status 0 whatever an audit's verdict:
    a report, not a gate. The ``--json`` file is strict JSON, non-finite floats spelled as strings."""
    from lm_eval_tbd.app.reporting import report_folder

    params = _params(args)
    criteria = None
    if args.reference is not None:
        from lm_eval_tbd.app.audit_report import AuditCriteria

        defaulted = {k: v for k, v in (("score", args.audit_score), ("fdr", args.fdr), ("base", args.base),
                                       ("min_generated_tokens", args.min_generated_tokens),
                                       ("max_text_auc", args.max_text_auc)) if v is not None}
        criteria = AuditCriteria(args.reference, max_auc=args.max_auc, significance=args.significance,
                                 max_contaminated_fraction=args.max_contaminated_fraction, **defaulted)
        if args.audit_score == "combined":
            from lm_eval_tbd.app.reporting import combined_audit_criteria

            criteria = combined_audit_criteria(criteria, args.combined)
    combined = None
    if args.combined:
        from lm_eval_tbd.core.combine import load_combined

        combined = load_combined(args.combined)
    return report_folder(args.output_path, tasks=args.task, params=params, top=args.top, criteria=criteria,
                         plot_dir=args.plot, json_path=args.json, combined=combined, accuracy=args.accuracy)


#: report options that only mean something against a reference task
_AUDIT_OPTIONS = ("audit_score", "max_auc", "significance", "max_contaminated_fraction", "fdr", "base",
                  "min_generated_tokens", "max_text_auc")


def _fraction(*, lo_open: bool, hi_open: bool):
    """argparse type: a number in [0, 1], with the ends open as asked (the gate's ranges: a
    max_auc of 1 could never fail, a significance of 0 never pass)."""
    def parse(text: str) -> float:
        value = _finite_float(text)
        if not ((0.0 < value if lo_open else 0.0 <= value) and (value < 1.0 if hi_open else value <= 1.0)):
            raise argparse.ArgumentTypeError(
                f"must be in {'(' if lo_open else '['}0, 1{')' if hi_open else ']'}, got {text}")
        return value

    return parse


def _add_audit_options(rep) -> None:
    from lm_eval_tbd.core.scores import SCORES

    audit = rep.add_argument_group(
        "audit mode", "compare every other task with a clean reference task, with the pytest gate's statistics and "
                      "verdict (printed; the exit status stays 0)")
    audit.add_argument("--reference", metavar="TASK", help="the clean reference task (e.g. questions published "
                                                           "after the model's training cut-off)")
    audit.add_argument("--audit-score", choices=sorted(SCORES), help="score compared (default: tbd)")
    audit.add_argument("--max-auc", type=_fraction(lo_open=False, hi_open=True),
                       help="FAIL when the AUC against the reference (task more seen-like) exceeds this")
    audit.add_argument("--significance", type=_fraction(lo_open=True, hi_open=False), metavar="P",
                       help="FAIL when the one-sided Mann-Whitney p-value is below this (the gate's alpha)")
    audit.add_argument("--max-contaminated-fraction", type=_fraction(lo_open=False, hi_open=True),
                       help="FAIL when the estimated contaminated share exceeds this")
    audit.add_argument("--fdr", type=_fraction(lo_open=True, hi_open=False),
                       help="Benjamini-Hochberg level of the flagged questions (default: 0.05)")
    audit.add_argument("--base", metavar="BASE_OUTPUT_PATH", type=_existing_dir,
                       help="the base model's lm_eval output folder (same tasks, same options): each question's "
                            "score becomes the student's minus the base model's (opt-in: on benchmarks/shift.py it "
                            "cost detections and did not remove the shift a distilled student brings)")
    audit.add_argument("--min-generated-tokens", type=_non_negative_int, metavar="N",
                       help="leave out (and list) questions whose generation ended before N tokens (default: 20; "
                            "0 keeps every question)")
    audit.add_argument("--max-text-auc", type=_text_auc, metavar="X",
                       help="the verdict is 'confounded' when a text-only classifier tells task from reference with "
                            "at least this AUC (default: 0.8)")


def _existing_dir(text: str):
    """argparse type of --base: an existing folder."""
    path = Path(text)
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: no such folder (the base model's lm_eval --output_path)")
    return path


def _text_auc(text: str) -> float:
    """argparse type of --max-text-auc: a number in (0.5, 1)."""
    value = _finite_float(text)
    if not 0.5 < value < 1.0:
        raise argparse.ArgumentTypeError(f"must be in (0.5, 1), got {text}")
    return value


def _make_task(args) -> int:
    from lm_eval_tbd.harness.custom_tasks import write_jsonl_task

    path = write_jsonl_task(args.name, args.data_file, args.dir)
    print(f"wrote {path}; run it with: lm_eval --include_path {shlex.quote(args.dir)} --tasks {args.name} ...")
    return 0


def _demo(args) -> int:
    from lm_eval_tbd.app.demo import run_demo

    run_demo(args.out, n_questions=args.questions, epochs=args.epochs)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lm-eval-tbd", description="TBD contamination detection for lm-eval")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="offline end-to-end demo: distil a small student, score it, report")
    demo.add_argument("--out", default="demo_out", help="output directory (default: demo_out)")
    demo.add_argument("--questions", type=_int_at_least(4, " (half members, half unseen, and half as many fresh "
                                                           "reference questions: at least 2 of each)"),
                      default=96, help="number of generated questions (default: 96; at least 4)")
    demo.add_argument("--epochs", type=_int_at_least(1), default=60, help="distillation epochs (default: 60)")
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
    rep.add_argument("--plot", metavar="DIR", help="also write PNG figures here (needs the 'plot' extra: matplotlib)")
    rep.add_argument("--json", metavar="PATH", help="also write the figures here as JSON (atomically)")
    rep.add_argument("--combined", metavar="MODEL", help="add the score 'combined' from a model written by "
                                                         "'lm-eval-tbd combine fit' (usable as --audit-score too)")
    rep.add_argument("--accuracy", action="append", metavar="TBD_TASK=TASK[:METRIC]",
                     help="join TBD_TASK with the ordinary task TASK of the same run (its METRIC, default the first "
                          "numeric one) for accuracy against seen-likeness (repeatable; default: paired by name, "
                          "e.g. tbd_aime24 with aime24; docs/accuracy.md)")
    _add_audit_options(rep)
    rep.set_defaults(func=_report)
    combine = sub.add_parser("combine", help="a combined detector over the scores of one pass")
    combine_sub = combine.add_subparsers(dest="combine_command", required=True)
    fit = combine_sub.add_parser("fit", help="fit on labelled runs (your distillation set against held-out "
                                             "questions); reports out-of-fold figures only")
    fit.add_argument("runs", nargs="+", metavar="OUTPUT_PATH", help="lm_eval --output_path folder(s) with labelled tasks")
    fit.add_argument("--out", required=True, help="where to write the model (JSON, atomically)")
    fit.add_argument("--task", action="append", help="task name (repeatable; default: every TBD task found)")
    fit.add_argument("--features", help="comma-separated scores (default: every score all questions have, "
                                        "except the zlib ones)")
    fit.add_argument("--folds", type=_int_at_least(2), default=5, help="cross-validation folds (default: 5)")
    fit.add_argument("--C", type=_positive_float, default=1.0,
                     help="inverse L2 regularisation strength, > 0 (default: 1.0)")
    fit.set_defaults(func=_combine_fit)
    score = sub.add_parser("score", help="score generations logged by any backend or API that recorded per-token "
                                         "log-probs (OpenAI responses or batch output, or plain logprob lists)")
    score.add_argument("file", help="JSON Lines of logged generations (see lm_eval_tbd.core.logs for the formats)")
    score.add_argument("--questions", help="question file (id, question, label) joined on id")
    score.add_argument("--top", type=_non_negative_int, default=10,
                       help="suspicious questions to list (default: 10; 0: none)")
    score.add_argument("--tau", type=_finite_float, help="reference probability (default 1.0)")
    score.add_argument("--alpha", type=_finite_float, help="exponent (default 0.6)")
    score.add_argument("--max-tokens", type=int, help="score the first M generated tokens (default 300)")
    score.add_argument("--json", help="also write the scores and figures here (atomically)")
    score.set_defaults(func=_score)
    args = parser.parse_args(argv)
    if args.command == "report" and args.reference is None:
        given = [f"--{k.replace('_', '-')}" for k in _AUDIT_OPTIONS if getattr(args, k) is not None]
        if given:
            rep.error(f"{', '.join(given)} needs --reference TASK (audit mode)")
    if args.command == "report" and args.audit_score == "combined" and not args.combined:
        rep.error("--audit-score combined needs --combined MODEL (a model written by 'lm-eval-tbd combine fit')")
    try:
        return args.func(args)
    except (OSError, ValueError, ImportError) as err:
        # OSError: unreadable paths; ImportError: an optional extra not installed (--plot),
        # whose message gives the install command.
        print(f"lm-eval-tbd: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
