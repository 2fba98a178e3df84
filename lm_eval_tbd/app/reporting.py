"""``lm-eval-tbd report``: every TBD task of an lm-eval output folder, re-scored when asked, as
the rich terminal report; optionally audited against a clean reference task
(:mod:`lm_eval_tbd.app.audit_report`), plotted (:mod:`lm_eval_tbd.app.plots`) and written as JSON.

TBD: LOWER = more likely seen. AUCs take member = positive on the decision value (higher = more
likely seen); an audit AUC above 0.5 means the task looks more seen than the reference.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from lm_eval_tbd.app.accuracy_report import accuracy_section, resolve_pairs
from lm_eval_tbd.app.audit_report import audit_run, base_run, render_audit
from lm_eval_tbd.app.plots import plot_audit, plot_task, require_matplotlib
from lm_eval_tbd.app.report import compare_scores, print_run, summarise
from lm_eval_tbd.core.atomic import json_safe, write_json_atomic
from lm_eval_tbd.core.combine import with_combined
from lm_eval_tbd.core.compat import check_compatible, generated_limit, run_stamp
from lm_eval_tbd.core.runs import TaskRun
from lm_eval_tbd.core.samples import find_tasks, load_run

__all__ = ["TaskFigures", "task_figures", "report_folder", "report_json"]


@dataclass(frozen=True)
class TaskFigures:
    """One task's run and its figures, computed once for the terminal, the plots and the JSON:
    ``summary`` (lm_eval_tbd.app.report.summarise) and ``comparison`` (compare_scores: every score's
    AUC and TPR with bootstrap CIs; None when unlabelled or the ROC is undefined)."""

    run: TaskRun
    summary: dict
    comparison: dict | None


def task_figures(run: TaskRun) -> TaskFigures:
    summary = summarise(run)
    comparison = compare_scores(run) if run.labelled and "roc_undefined" not in summary else None
    return TaskFigures(run, summary, comparison)


def combined_audit_criteria(criteria, model_path):
    """``criteria`` (an :class:`~lm_eval_tbd.app.audit_report.AuditCriteria` with score "combined")
    whose gate criteria carry the combined model's file, which the evaluation reads for that score
    (``--audit-score combined --combined MODEL``)."""

    @dataclass(frozen=True)
    class CombinedAuditCriteria(type(criteria)):
        combined_model: Path | None = None

        def criteria(self, task: str):
            return dataclasses.replace(super().criteria(task), combined_model=self.combined_model)

        def to_json(self) -> dict:
            return {**super().to_json(), "combined_model": str(self.combined_model)}

    return CombinedAuditCriteria(**dataclasses.asdict(criteria), combined_model=Path(model_path))


def report_json(output_path, params, figures: list[TaskFigures], audits=None, criteria=None,
                plots: list[Path] | None = None, accuracy: dict | None = None) -> dict:
    """The report's figures as one JSON-ready dict: ``params`` (null: as the run logged them),
    per task its samples file, ``run`` (lm-eval's date of it), its ``summary`` and, when
    labelled, ``scores`` (the comparison of every score), and
    with a reference task, ``audit`` (criteria and each task's verdict and figures in the gate's
    format), and with an ordinary task beside a TBD task, ``accuracy`` (lm_eval_tbd.app.accuracy_report).
    Non-finite floats are left to :func:`lm_eval_tbd.core.atomic.json_safe`."""
    out = {
        "output_path": str(output_path),
        "params": dataclasses.asdict(params) if params is not None else None,
        "tasks": {f.run.task: {"samples_file": str(f.run.samples_file), "run": run_stamp(f.run.samples_file),
                               "summary": f.summary,
                               **({"scores": f.comparison} if f.comparison is not None else {})}
                  for f in figures},
    }
    if criteria is not None:
        out["audit"] = {**criteria.to_json(), "tasks": {o.task: o.to_json() for o in audits}}
    if accuracy:
        out["accuracy"] = accuracy
    if plots is not None:
        out["plots"] = [str(p) for p in plots]
    return out


def report_folder(output_path, *, tasks: list[str] | None = None, params=None, top: int = 10, criteria=None,
                  plot_dir=None, json_path=None, console=None, combined=None, accuracy=None) -> int:
    """Report ``tasks`` (default: every TBD task found) of ``output_path``; returns the exit
    status: 2 when no TBD task is found, else 0, whatever an audit's verdict (a report, not a gate).

    ``params``: re-score every task (and the reference) with these TBDParams. ``criteria``: an
    :class:`~lm_eval_tbd.app.audit_report.AuditCriteria` to audit every other task against its
    reference task. ``plot_dir`` / ``json_path``: also write PNGs / the figures as JSON there.
    ``combined``: a :class:`~lm_eval_tbd.core.combine.CombinedModel` whose decision is added to every
    task as the score "combined". ``accuracy``: ``--accuracy TBD_TASK=TASK[:METRIC]`` pairings; every
    TBD task with an ordinary task beside it (so paired, or paired by name) gets its accuracy figures
    (lm_eval_tbd.app.accuracy_report), and an ambiguous or mismatched pairing is a ValueError.

    Every task is named with its run (lm-eval's date of it), and a task whose newest run is older
    than another reported task's is warned about (an interrupted run leaves the earlier one
    newest). Raises ValueError when ``params`` ask for more tokens than a run generated, or
    make every TBD 0; and :class:`~lm_eval_tbd.core.compat.IncompatibleRunsError` when a task
    and the reference were made with other settings (model, decoding, tbd_* options, template).
    """
    console = console or Console()
    _check_outputs(plot_dir, json_path)  # before any work, not at the end of it
    if plot_dir is not None:
        require_matplotlib()
    names = tasks or find_tasks(output_path)
    if not names:
        console.print(f"[red]no TBD samples under {output_path}[/] (run lm_eval with --log_samples --output_path)")
        return 2

    def load(task: str) -> TaskRun:
        run = load_run(output_path, task)
        if params is not None:
            _check_rescoring(run, params)
            run = run.rescore(params)
            console.print(f"[dim]{task}: re-scored from logged log-probabilities with {params}[/]")
        note = run.zero_tbd_note()
        if note and params is not None:
            raise ValueError(f"{note}; choose another --tau / --alpha")
        if note:
            console.print(f"[yellow]warning: {note}[/]")
        if combined is not None:
            run = with_combined(run, combined, warn=lambda msg: console.print(f"[yellow]{msg}[/]"))
        return run

    # Every run is loaded and checked before anything is printed: a mixed report is an error, not
    # a table followed by one.
    runs = [load(task) for task in names]
    reference = None
    if criteria is not None:
        reference = next((r for r in runs if r.task == criteria.reference), None) or load(criteria.reference)
        _check_against_reference(runs, reference)

    pairs = resolve_pairs(runs, accuracy, base_path=criteria.base if criteria is not None else None)
    _warn_stale(runs + ([reference] if reference is not None and all(r is not reference for r in runs) else []), console)
    figures = []
    for run in runs:
        f = task_figures(run)
        print_run(f.run, console, top=top, summary=f.summary, comparison=f.comparison)
        figures.append(f)
    audits = []
    plots = [] if plot_dir is not None else None
    if criteria is not None:
        audits = _audit(figures, reference, criteria, top, console, plots, plot_dir)
    accuracy_figures = accuracy_section(figures, pairs, audits=audits, criteria=criteria, console=console, plots=plots,
                                        plot_dir=plot_dir)
    if plot_dir is not None:
        for f in figures:
            plots += plot_task(f.run, plot_dir, summary=f.summary)
        console.print(f"[dim]wrote {len(plots)} plot(s) under {plot_dir}[/]")
    if json_path is not None:
        write_json_atomic(json_path, json_safe(report_json(output_path, params, figures, audits, criteria, plots,
                                                                  accuracy_figures)))
    return 0


def _check_outputs(plot_dir, json_path) -> None:
    """--plot must name a folder (or a path for one) and --json a file."""
    if plot_dir is not None:
        blocking = next((p for p in (Path(plot_dir), *Path(plot_dir).parents) if p.exists() and not p.is_dir()), None)
        if blocking is not None:
            raise NotADirectoryError(f"--plot {plot_dir}: {blocking} is a file, not a folder for the PNGs")
    if json_path is not None:
        if Path(json_path).is_dir():
            raise IsADirectoryError(f"--json {json_path}: is a directory; give the path of the JSON file to write")
        blocking = next((p for p in Path(json_path).parents if p.exists() and not p.is_dir()), None)
        if blocking is not None:
            raise NotADirectoryError(f"--json {json_path}: {blocking} is a file, not a folder")


def _check_rescoring(run: TaskRun, params) -> None:
    """Re-scoring cannot use tokens a run never generated: ``--max-tokens`` above the run's own
    limit would score what the limit does while the report said otherwise."""
    limit = generated_limit(run)
    if limit is not None and params.max_tokens > limit:
        raise ValueError(f"--max-tokens {params.max_tokens}: {run.task} ({run.samples_file}) generated at most {limit} "
                         f"tokens per question (tbd_max_tokens {limit}), so its records hold no more; re-score with "
                         f"--max-tokens {limit} or less, or run lm_eval again with a larger tbd_max_tokens")


def _check_against_reference(runs: list[TaskRun], reference: TaskRun) -> None:
    """Every audited task must have been made with the reference's settings (lm_eval_tbd.core.compat)."""
    for run in runs:
        if run is not reference and run.task != reference.task:
            check_compatible(run, reference, role_a="task", role_b="reference")


def _warn_stale(runs: list[TaskRun], console) -> None:
    """Warn about a task whose newest run is older than another reported task's."""
    stamps = {r.task: s for r in runs if (s := run_stamp(r.samples_file)) is not None}
    if len(set(stamps.values())) < 2:
        return
    newest_task, newest = max(stamps.items(), key=lambda kv: kv[1])
    for task, stamp in sorted(stamps.items()):
        if stamp < newest:
            console.print(f"[yellow]warning: {task}'s newest run ({stamp}) is older than {newest_task}'s ({newest}): "
                          "this report mixes runs (was a later lm_eval run of it interrupted?)[/]")


def _audit(figures: list[TaskFigures], reference: TaskRun, criteria, top: int, console, plots, plot_dir) -> list:
    """Audit every reported task but the reference against it; print the table; plot each
    defined comparison when ``plot_dir`` is given."""
    runs = {f.run.task: f.run for f in figures}
    # The reference's base run is read once for every task audited against it; when it cannot be
    # read, each audit reads it itself and reports why (its "undefined" outcome), as before.
    base_reference = None
    if criteria.base is not None:
        try:
            base_reference = base_run(criteria.base, reference)
        except ValueError:
            pass
    outcomes = [audit_run(f.run, reference, criteria, top=top, base_reference=base_reference)
                for f in figures if f.run.task != criteria.reference]
    if not outcomes:
        console.print(f"[yellow]audit: no task besides the reference {criteria.reference} to compare with it[/]")
        return outcomes
    console.print(render_audit(outcomes, criteria))
    if plot_dir is not None:
        plots += [plot_audit(runs[o.task], reference, criteria.score, plot_dir) for o in outcomes if o.result is not None]
    return outcomes
