"""``lm-eval-tbd report``'s accuracy section: what a leak did to the score.

Each TBD task is joined with the ordinary task of the same run that holds the same questions
(``tbd_aime24`` with ``aime24``, ``tbd_math500`` with ``minerva_math500`` or
``hendrycks_math500``, ...; ``--accuracy TBD_TASK=TASK[:METRIC]`` sets any pairing), question by
question on their text (:mod:`lm_eval_tbd.core.outcomes`), and the ordinary task's accuracy is set
against seen-likeness (:mod:`lm_eval_tbd.core.accuracy`): the most seen-like quarter against
the rest, flagged against unflagged questions (audit mode), the rank correlation, members against
non-members (labels), and with ``--base`` the estimated inflation. Printed, plotted (accuracy by
decile of the score) and written in ``--json``. A pairing that is ambiguous or whose questions do
not match is an error naming both tasks (exit status 2).
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Group
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from lm_eval_tbd.app.plots import _figure, _file_name, _save
from lm_eval_tbd.core.accuracy import paired_accuracy
from lm_eval_tbd.core.gate import accuracy_groups, interval, points
from lm_eval_tbd.core.outcomes import pair_run, parse_task_metric

__all__ = ["parse_accuracy_options", "resolve_pairs", "accuracy_section", "render_accuracy", "plain_words",
           "plot_accuracy"]


def parse_accuracy_options(specs: list[str] | None, tasks: list[str]) -> dict[str, str]:
    """``--accuracy TBD_TASK=TASK[:METRIC]`` values -> {TBD_TASK: "TASK[:METRIC]"}. A ValueError
    names the option for a malformed value, a TBD task given twice (ambiguous) and one that is not
    reported (``tasks``)."""
    out: dict[str, str] = {}
    for spec in specs or ():
        tbd_task, sep, ordinary = spec.partition("=")
        tbd_task, ordinary = tbd_task.strip(), ordinary.strip()
        if not sep or not tbd_task or not ordinary:
            raise ValueError(f"--accuracy {spec!r}: expected TBD_TASK=TASK[:METRIC], e.g. tbd_math500=minerva_math500")
        try:
            parse_task_metric(ordinary)
        except ValueError as err:
            raise ValueError(f"--accuracy {spec!r}: {err}") from None
        if tbd_task in out and out[tbd_task] != ordinary:
            raise ValueError(f"--accuracy: ambiguous pairing: {tbd_task} is paired with both {out[tbd_task]} and "
                             f"{ordinary}; give one")
        if tbd_task not in tasks:
            raise ValueError(f"--accuracy {spec!r}: {tbd_task} is not a reported TBD task (reported: {', '.join(tasks)})")
        out[tbd_task] = ordinary
    return out


def resolve_pairs(runs, specs: list[str] | None = None, *, base_path=None) -> dict:
    """{TBD task: :class:`~lm_eval_tbd.core.outcomes.Paired`} for every run of ``runs`` with an
    ordinary task (named by ``--accuracy`` ``specs`` or paired by name in the run's folder); read
    and joined before the report prints anything. ``base_path``: the base model's output folder.

    Raises :class:`~lm_eval_tbd.core.outcomes.PairingError` (a ValueError) naming both tasks for an
    ambiguous or mismatched pairing."""
    explicit = parse_accuracy_options(specs, [r.task for r in runs])
    out = {}
    for run in runs:
        paired = pair_run(run, explicit.get(run.task), base_path=base_path)
        if paired is not None:
            out[run.task] = paired
    return out


def accuracy_section(figures, pairs: dict, *, audits=(), criteria=None, console, plots=None, plot_dir=None) -> dict:
    """Compute, print and (with ``plot_dir``) plot each paired task's figures; returns
    {TBD task: figures} for the JSON. The seen-like quarter is taken by the audit's score in audit
    mode, else by TBD; the flagged questions are the audit's."""
    score = criteria.score if criteria is not None else "tbd"
    outcomes = {o.task: o for o in audits}
    out = {}
    for f in figures:
        paired = pairs.get(f.run.task)
        if paired is None:
            continue
        flagged = {}
        o = outcomes.get(f.run.task)
        if o is not None and o.result is not None and o.result.audit:
            a = o.result.audit
            flagged = {"flagged_ids": a["flagged_ids"], "excluded_ids": [e["id"] for e in a["excluded"]["benchmark"]],
                       "flagged_by": f"Benjamini-Hochberg at FDR {a['fdr']:g} against {a['reference']}"}
        try:
            out[f.run.task] = paired_accuracy(f.run, paired, score=score, **flagged)
        except ValueError as err:  # the score was not logged for this task: the others are still reported
            out[f.run.task] = {"tbd_task": f.run.task, "task": paired.outcomes.task, "error": str(err)}
    shown = [fig for fig in out.values() if "error" not in fig]
    for fig in out.values():
        if "error" in fig:
            console.print(f"[yellow]accuracy of {escape(fig['task'])} against {escape(fig['tbd_task'])}: undefined: "
                          f"{escape(fig['error'])}[/]")
    if shown:
        console.print(render_accuracy(shown))
    if plot_dir is not None:
        paths = [plot_accuracy(fig, plot_dir) for fig in shown]
        if plots is not None:
            plots += paths
    return out


def _pct(value) -> str:
    return "-" if value is None else f"{value:.1%}"


def _pct_ci(ci) -> str:
    return f" [{ci[0]:.1%}, {ci[1]:.1%}]" if ci else ""


def render_accuracy(figures: list[dict]):
    """A rich renderable: per benchmark, accuracy of each group against the rest with the
    difference in points and its CI, the rank correlation, the inflation, and the same in plain
    words."""
    parts = []
    for fig in figures:
        table = Table(title=f"Accuracy against seen-likeness: {escape(fig['tbd_task'])} joined with "
                            f"{escape(fig['task'])} ({escape(fig['metric'])}); {fig['match']['matched']} questions, "
                            f"accuracy {fig['accuracy']:.1%}{_pct_ci(fig['accuracy_ci'])}",
                      title_justify="left")
        for col in ("questions", "accuracy (n)", "against (n)", f"difference, points [{fig['confidence']:.0%} CI]"):
            table.add_column(col, justify="left" if col == "questions" else "right")
        for name, rest, g in accuracy_groups(fig):
            if "undefined" in g:
                table.add_row(escape(name), "-", "-", f"[yellow]undefined: {escape(g['undefined'])}[/]")
                continue
            table.add_row(escape(name), f"{_pct(g['accuracy_group'])} ({g['n_group']})",
                          f"{rest} {_pct(g['accuracy_rest'])} ({g['n_rest']})", points(g["gap"]) + interval(g["gap_ci"]))
        inf = fig.get("inflation")
        if inf is not None:
            if "undefined" in inf:
                table.add_row("inflation (student gap - base gap)", "-", "-", f"[yellow]undefined: {escape(inf['undefined'])}[/]")
            else:
                table.add_row("inflation (student gap - base gap)", f"student gap {points(inf['student_gap'])}",
                              f"base gap {points(inf['base_gap'])}", points(inf["inflation"]) + interval(inf["inflation_ci"]))
        rc = fig["rank_correlation"]
        rho = (f"[yellow]undefined: {escape(rc['undefined'])}[/]" if "undefined" in rc
               else f"rho {rc['rho']:+.2f}{interval(rc['rho_ci'], as_points=False)}")
        table.add_row(f"rank correlation, {fig['score']} decision value with correctness", "", "", rho)
        notes = [Text(f"note: {n}", style="yellow") for n in fig.get("notes", ())]
        parts += [table, *notes, Text(plain_words(fig), style="dim")]
    return Group(*parts)


def plain_words(fig: dict) -> str:
    """The figures of one benchmark read out in a few sentences."""
    g = fig["seen_like"]
    if "undefined" in g:
        return f"The accuracy gap is undefined: {g['undefined']}."
    ci = f" ({fig['confidence']:.0%} CI{interval(g['gap_ci'])})" if g["gap_ci"] else ""
    text = (f"The {g['n_group']} questions {fig['score']} calls most seen-like are answered right {g['accuracy_group']:.1%} "
            f"of the time, the other {g['n_rest']} {g['accuracy_rest']:.1%}: a gap of {points(g['gap'])} points{ci}. "
            "A leak shows as a positive gap, because memorised questions are answered better; but easy questions "
            "look familiar to a model too, so the gap alone mixes the leak with difficulty.")
    inf = fig.get("inflation")
    if inf is not None and "undefined" not in inf:
        ci = f" ({fig['confidence']:.0%} CI{interval(inf['inflation_ci'])})" if inf["inflation_ci"] else ""
        text += (f" The base model, which never saw the leak, shows a gap of {points(inf['base_gap'])} points on the "
                 f"same questions split the same way; the excess, {points(inf['inflation'])} points{ci}, is the "
                 f"estimated inflation: about {points(inf['overall_points'])} points of the whole benchmark's accuracy "
                 f"({fig['accuracy']:.1%}) if the rest of the questions are clean.")
    elif inf is None:
        text += " With the base model's run of the same tasks (--reference ... --base BASE_OUT), the report subtracts "
        text += "the gap difficulty alone gives."
    return text


def plot_accuracy(fig: dict, directory) -> Path:
    """Write ``<tbd_task>_accuracy.png``: accuracy per decile of the score's decision value (least
    to most seen-like) with bootstrap CIs, the base model's beside it when given. Returns its path."""
    figure, ax = _figure()
    series = [("student" if fig.get("base_by_bin") else fig["task"], fig["by_bin"], "tab:red", -0.12 if fig.get("base_by_bin") else 0.0)]
    if fig.get("base_by_bin"):
        series.append(("base model", fig["base_by_bin"], "tab:grey", 0.12))
    for name, bins, colour, shift in series:
        x = [b["bin"] + shift for b in bins]
        y = [b["accuracy"] for b in bins]
        lo = [b["accuracy"] - b["ci"][0] if b["ci"] else 0.0 for b in bins]
        hi = [b["ci"][1] - b["accuracy"] if b["ci"] else 0.0 for b in bins]
        ax.errorbar(x, y, yerr=[lo, hi], fmt="o-", color=colour, capsize=3, label=name)
    ax.axhline(fig["accuracy"], color="tab:red", linestyle=":", linewidth=1, label=f"overall {fig['accuracy']:.1%}")
    n_bins = len(fig["by_bin"])
    ax.set_xticks(range(1, n_bins + 1))
    ax.set_xlabel(f"{'decile' if n_bins == 10 else f'bin (of {n_bins})'} of {fig['score']}: 1 = least, "
                  f"{n_bins} = most seen-like")
    ax.set_ylabel(f"{fig['task']} {fig['metric']} (mean, {fig['confidence']:.0%} CI)")
    ax.set_ylim(-0.05, 1.05)
    ax.set_title(f"{fig['tbd_task']}: accuracy by seen-likeness ({fig['n']} questions)")
    ax.legend()
    return _save(figure, Path(directory) / _file_name(fig["tbd_task"], "accuracy"))
