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

from lm_eval_tbd.core.runs import TaskRun

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
    from lm_eval_tbd.app.report import compare_scores, summarise

    summary = summarise(run)
    comparison = compare_scores(run) if run.labelled and "roc_undefined" not in summary else None
    return TaskFigures(run, summary, comparison)


def report_json(output_path, params, figures: list[TaskFigures], audits=None, criteria=None,
                plots: list[Path] | None = None) -> dict:
    """The report's figures as one JSON-ready dict: ``params`` (null: as the run logged them),
    per task its ``summary`` and, when labelled, ``scores`` (the comparison of every score), and
    with a reference task, ``audit`` (criteria and each task's verdict and figures in the gate's
    format). Non-finite floats are left to :func:`lm_eval_tbd.core.atomic.json_safe`."""
    out = {
        "output_path": str(output_path),
        "params": dataclasses.asdict(params) if params is not None else None,
        "tasks": {f.run.task: {"samples_file": str(f.run.samples_file), "summary": f.summary,
                               **({"scores": f.comparison} if f.comparison is not None else {})}
                  for f in figures},
    }
    if criteria is not None:
        out["audit"] = {**criteria.to_json(), "tasks": {o.task: o.to_json() for o in audits}}
    if plots is not None:
        out["plots"] = [str(p) for p in plots]
    return out


def report_folder(output_path, *, tasks: list[str] | None = None, params=None, top: int = 10, criteria=None,
                  plot_dir=None, json_path=None, console=None, combined=None) -> int:
    """Report ``tasks`` (default: every TBD task found) of ``output_path``; returns the exit
    status: 2 when no TBD task is found, else 0, whatever an audit's verdict (a report, not a gate).

    ``params``: re-score every task (and the reference) with these TBDParams. ``criteria``: an
    :class:`~lm_eval_tbd.app.audit_report.AuditCriteria` to audit every other task against its
    reference task. ``plot_dir`` / ``json_path``: also write PNGs / the figures as JSON there.
    ``combined``: a :class:`~lm_eval_tbd.core.combine.CombinedModel` whose decision is added to every
    task as the score "combined".
    """
    from rich.console import Console

    from lm_eval_tbd.app.report import print_run
    from lm_eval_tbd.core.atomic import json_safe, write_json_atomic
    from lm_eval_tbd.core.samples import find_tasks, load_run

    console = console or Console()
    if plot_dir is not None:
        from lm_eval_tbd.app.plots import require_matplotlib

        require_matplotlib()  # before any work, not at the end of it
    names = tasks or find_tasks(output_path)
    if not names:
        console.print(f"[red]no TBD samples under {output_path}[/] (run lm_eval with --log_samples --output_path)")
        return 2

    def load(task: str) -> TaskRun:
        run = load_run(output_path, task)
        if params is not None:
            run = run.rescore(params)
            console.print(f"[dim]{task}: re-scored from logged log-probabilities with {params}[/]")
        if combined is not None:
            from lm_eval_tbd.core.combine import with_combined

            run = with_combined(run, combined, warn=lambda msg: console.print(f"[yellow]{msg}[/]"))
        return run

    figures = []
    for task in names:
        f = task_figures(load(task))
        print_run(f.run, console, top=top, summary=f.summary, comparison=f.comparison)
        figures.append(f)
    audits = []
    plots = [] if plot_dir is not None else None
    if criteria is not None:
        audits = _audit(figures, load, criteria, top, console, plots, plot_dir)
    if plot_dir is not None:
        from lm_eval_tbd.app.plots import plot_task

        for f in figures:
            plots += plot_task(f.run, plot_dir, summary=f.summary)
        console.print(f"[dim]wrote {len(plots)} plot(s) under {plot_dir}[/]")
    if json_path is not None:
        write_json_atomic(json_path, json_safe(report_json(output_path, params, figures, audits, criteria, plots)))
    return 0


def _audit(figures: list[TaskFigures], load, criteria, top: int, console, plots, plot_dir) -> list:
    """Audit every reported task but the reference against it; print the table; plot each
    defined comparison when ``plot_dir`` is given."""
    from lm_eval_tbd.app.audit_report import audit_run, render_audit

    runs = {f.run.task: f.run for f in figures}
    reference = runs.get(criteria.reference) or load(criteria.reference)
    outcomes = [audit_run(f.run, reference, criteria, top=top) for f in figures if f.run.task != criteria.reference]
    if not outcomes:
        console.print(f"[yellow]audit: no task besides the reference {criteria.reference} to compare with it[/]")
        return outcomes
    console.print(render_audit(outcomes, criteria))
    if plot_dir is not None:
        from lm_eval_tbd.app.plots import plot_audit

        plots += [plot_audit(runs[o.task], reference, criteria.score, plot_dir) for o in outcomes if o.result is not None]
    return outcomes
