"""Rich terminal report of a TBD run: summary, most suspicious questions, score distributions."""

from __future__ import annotations

import numpy as np
from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from lm_eval_tbd.core.compat import run_stamp
from lm_eval_tbd.core.gate import one_line
from lm_eval_tbd.core.runs import TaskRun
from lm_eval_tbd.core.scores import SCORES, decision_value
from lm_eval_tbd.core.stats import UndefinedMetricError, roc_auc, roc_report, tpr_at_fpr, tpr_at_fpr_paper

__all__ = ["summarise", "compare_scores", "render_run", "print_run"]


def compare_scores(run: TaskRun, **kwargs) -> dict[str, dict]:
    """``roc_report`` (AUC, strict TPR at 0.1/1/5% FPR with bootstrap CIs, paper convention) for
    every score the run has, on its decision value (higher = more likely seen). Labelled runs only."""
    labels = [q.label for q in run.questions]
    out = {}
    for name in run.score_names():
        decisions = [decision_value(name, v) for v in run.score_values(name)]
        out[name] = roc_report(labels, decisions, **kwargs)
    return out


def summarise(run: TaskRun) -> dict:
    """Figures of one run. ROC figures (member = positive, decision = -TBD) only when labelled;
    an undefined one is given as None with the reason under ``roc_undefined``."""
    scores = run.tbd_values()
    out = {
        "task": run.task,
        "n": len(scores),
        "mean_tbd": float(scores.mean()),
        "median_tbd": float(np.median(scores)),
        "mean_tokens": float(np.mean([q.record.n_tokens for q in run.questions])),
        "eos_share": float(np.mean([q.record.finish_reason == "eos" for q in run.questions])),
        "n_empty": int(sum(q.record.n_tokens == 0 for q in run.questions)),
    }
    if run.labelled:
        labels = np.array([q.label for q in run.questions])
        out["n_members"] = int(labels.sum())
        try:
            out["auc"] = roc_auc(labels, -scores)
            out["tpr_at_1fpr"] = tpr_at_fpr(labels, -scores, 0.01)
            out["tpr_at_1fpr_paper"] = tpr_at_fpr_paper(labels, -scores, 0.01)
        except UndefinedMetricError as err:
            out.update(auc=None, tpr_at_1fpr=None, tpr_at_1fpr_paper=None, roc_undefined=str(err))
    return out


def _fmt(value, spec=".3f") -> str:
    return "undefined" if value is None else format(value, spec)


def _histogram(run: TaskRun, bins: int = 10, width: int = 40) -> Text:
    """Horizontal bars per score bin; members and non-members side by side when labelled."""
    scores = run.tbd_values()
    # Bins span the observed scores (TBD lies in [0, tau**alpha]); a constant score gets one bin.
    hi = float(scores.max()) if scores.max() > scores.min() else float(scores.min()) + 1e-3
    edges = np.histogram_bin_edges(scores, bins=bins, range=(float(scores.min()), hi))
    groups = [("members", "red", 1), ("non-members", "green", 0)] if run.labelled else [("questions", "cyan", None)]
    counts = {
        name: np.histogram(scores if lab is None else scores[[q.label == lab for q in run.questions]], bins=edges)[0]
        for name, _, lab in groups
    }
    peak = max(1, max(int(c.max()) for c in counts.values()))
    text = Text("  TBD bin         ", style="bold")
    for name, colour, _ in groups:
        text.append(f"█ {name}  ", style=colour)
    text.append("  (lower TBD = more likely seen)\n", style="dim")
    for i in range(len(edges) - 1):
        for j, (name, colour, _) in enumerate(groups):
            label = f"  {edges[i]:.3f}-{edges[i + 1]:.3f}  " if j == 0 else " " * 17
            n = int(counts[name][i])
            text.append(label)
            text.append("█" * round(width * n / peak), style=colour)
            text.append(f" {n}\n" if n else "\n", style="dim")
    return text


def _comparison_table(run: TaskRun, comparison: dict[str, dict] | None = None) -> Table:
    table = Table(title="Every score from the same pass: AUC and strict TPR [95% bootstrap CI]\n"
                        "(member = positive; ↓ = lower means seen, ↑ = higher means seen)", title_justify="left")
    for col in ("score", "AUC", "TPR@1%FPR", "@5%", "paper"):
        table.add_column(col, justify="left" if col == "score" else "right", no_wrap=True)
    for name, r in (comparison if comparison is not None else compare_scores(run)).items():
        def cell(key: str, r: dict = r) -> str:
            ci = r[key + "_ci"]
            return f"{r[key]:.3f} " + ("(no CI)" if ci is None else f"[{ci[0]:.2f},{ci[1]:.2f}]")

        arrow = "↑" if SCORES[name].higher_is_seen else "↓"
        table.add_row(f"{name} {arrow}", cell("auc"), cell("tpr@1%fpr"), f"{r['tpr@5%fpr']:.3f}", f"{r['tpr@1%fpr_paper']:.3f}")
    return table


def render_run(run: TaskRun, top: int = 10, *, summary: dict | None = None,
               comparison: dict[str, dict] | None = None):
    """A rich renderable: summary table, the ``top`` lowest-TBD questions (none for 0), and the
    histogram.

    ``summary`` and ``comparison`` are :func:`summarise` and :func:`compare_scores` of ``run``
    when the caller already has them (they are computed here otherwise)."""
    s = summary if summary is not None else summarise(run)
    stamp = run_stamp(run.samples_file)
    # Which run: an output folder keeps every run, and each task's newest one is reported.
    title = f"TBD contamination: {run.task}" + (f" (run {stamp})" if stamp else "")
    summary_table = Table(title=title, title_justify="left", show_header=False)
    summary_table.add_column("figure", style="bold", no_wrap=True)
    summary_table.add_column("value", justify="right", no_wrap=True)
    summary_table.add_row("questions", str(s["n"]))
    summary_table.add_row("mean TBD (lower = more likely seen)", f"{s['mean_tbd']:.4f}")
    summary_table.add_row("median TBD", f"{s['median_tbd']:.4f}")
    summary_table.add_row("mean generated tokens", f"{s['mean_tokens']:.1f}")
    summary_table.add_row("stopped at EOS", f"{s['eos_share']:.0%}")
    if run.labelled:
        summary_table.add_row("members (label 1)", str(s["n_members"]))
        summary_table.add_row("ROC AUC (member = positive, -TBD)", _fmt(s["auc"]))
        summary_table.add_row("TPR @ 1% FPR (strict)", _fmt(s["tpr_at_1fpr"]))
        summary_table.add_row("TPR @ 1% FPR (paper's convention)", _fmt(s["tpr_at_1fpr_paper"]))

    suspects = Table(title=f"Most suspicious questions (lowest TBD first, top {top})", title_justify="left")
    suspects.add_column("#", justify="right", no_wrap=True)
    suspects.add_column("id", no_wrap=True)
    if run.labelled:
        suspects.add_column("seen?", no_wrap=True)
    suspects.add_column("TBD", justify="right", no_wrap=True)
    suspects.add_column("tokens", justify="right", no_wrap=True)
    suspects.add_column("question")
    ranked = sorted(run.questions, key=lambda q: (q.tbd, q.doc_id))[:top]
    for rank, q in enumerate(ranked, start=1):
        cells = [str(rank), q.question_id]
        if run.labelled:
            cells.append("[red]member[/]" if q.label else "[green]unseen[/]")
        cells += [f"{q.tbd:.4f}", str(q.record.n_tokens), one_line(q.question, 60)]
        suspects.add_row(*cells)

    parts = [summary_table]
    if s.get("roc_undefined"):
        parts.append(Text(f"ROC metrics undefined: {s['roc_undefined']}", style="yellow"))
    elif run.labelled and len(run.score_names()) > 1:
        comparison = comparison if comparison is not None else compare_scores(run)
        parts.append(_comparison_table(run, comparison))
        reason = next((r["ci_undefined"] for r in comparison.values() if r.get("ci_undefined")), None)
        if reason:
            parts.append(Text(f"No confidence intervals: {reason}", style="yellow"))
    if s["n_empty"]:
        parts.append(Text(f"{s['n_empty']} question(s) produced zero tokens (TBD 0 by definition)", style="yellow"))
    if top > 0:
        parts.append(suspects)
    parts.append(Panel(_histogram(run), title="TBD distribution", expand=False))
    return Group(*parts)


def print_run(run: TaskRun, console: Console | None = None, top: int = 10, **precomputed) -> None:
    """Print :func:`render_run` (``precomputed``: its ``summary`` / ``comparison``)."""
    (console or Console()).print(render_run(run, top=top, **precomputed))
