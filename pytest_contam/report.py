"""The end-of-session summary: a rich table for the terminal and the same content as JSON."""

from __future__ import annotations

import io

from rich.console import Console
from rich.table import Table

from lm_eval_tbd.core.gate import GateResult

__all__ = ["summary_table_text", "summary_json"]


def _num(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _threshold_text(r: GateResult) -> str:
    parts = []
    if r.score_cutoff is not None:
        parts.append(f"TBD < {r.score_cutoff:g}, ≤ {r.max_flagged_fraction:.0%}")
    if r.audit:
        limits = {"auc": "AUC≤", "p": "p≥", "contaminated": "share≤"}
        parts.append(" ".join(f"{limits[c['key']]}{c['limit']:g}" for c in r.checks if c["key"] in limits)
                     + f" vs {r.audit['reference']}")
    parts += [f"accuracy gap ≤ {c['limit']:+.0%}" for c in r.checks if c["key"] == "accuracy_gap"]
    return "; ".join(parts) or "-"


def summary_table_text(results: list[GateResult], *, width: int = 100, markup: bool = False) -> str:
    table = Table(title="Contamination gates (TBD: lower = more likely seen)", title_justify="left")
    for col, justify in (("benchmark", "left"), ("n", "right"), ("mean", "right"), ("median", "right"),
                         ("flagged", "right"), ("threshold", "left"), ("verdict", "left")):
        # Figures keep their width; the threshold text wraps when the terminal is narrow.
        table.add_column(col, justify=justify, no_wrap=col != "threshold", min_width=len(col) if col != "threshold" else 12)
    for r in sorted(results, key=lambda r: r.benchmark):
        flagged = "-" if r.flagged_fraction is None else f"{r.n_flagged} ({r.flagged_fraction:.1%})"
        if r.verdict == "confounded":
            verdict = "[yellow]CONFOUNDED (allowed)[/]" if r.passed else "[red]CONFOUNDED[/]"
        else:
            verdict = "[green]PASS[/]" if r.passed else ("[red]MISSING[/]" if r.error else "[red]FAIL[/]")
        table.add_row(r.benchmark, str(r.n), _num(r.mean, ".4f"), _num(r.median, ".4f"), flagged,
                      _threshold_text(r), verdict)
    buf = io.StringIO()
    Console(file=buf, width=width, force_terminal=markup, color_system="standard" if markup else None).print(table)
    return buf.getvalue()


def summary_json(results: list[GateResult], selected: list[str], checks: dict[str, dict] | None = None) -> dict:
    """``passed`` is true only when at least one gate or check was selected, every selected gate
    ran and passed, and every selected hand-written ``contam`` check passed (a skipped one did
    not show the benchmark clean). ``checks``: node id -> {"benchmark", "outcome"}, the outcome
    one of passed / failed / error / skipped, or None when the check did not run. ``not_run``
    lists selected gates (by benchmark) and checks (by node id) without a verdict, e.g. after an
    interrupted run."""
    checks = checks or {}
    ordered = sorted(results, key=lambda r: r.benchmark)
    ran = {r.benchmark for r in ordered}
    not_run = sorted(set(selected) - ran) + sorted(n for n, c in checks.items() if c["outcome"] is None)
    return {
        "passed": bool(selected or checks) and not not_run and all(r.passed for r in ordered)
        and all(c["outcome"] == "passed" for c in checks.values()),
        "not_run": not_run,
        "benchmarks": {r.benchmark: r.to_json() for r in ordered},
        "checks": {n: checks[n] for n in sorted(checks)},
    }
