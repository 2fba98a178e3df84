"""The end-of-session summary: a rich table for the terminal and the same content as JSON."""

from __future__ import annotations

import io

from pytest_contam.gate import GateResult

__all__ = ["summary_table_text", "summary_json"]


def _num(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def summary_table_text(results: list[GateResult], *, width: int = 100, markup: bool = False) -> str:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Contamination gates (TBD: lower = more likely seen)", title_justify="left")
    for col, justify in (("benchmark", "left"), ("n", "right"), ("mean", "right"), ("median", "right"),
                         ("flagged", "right"), ("threshold", "left"), ("verdict", "left")):
        table.add_column(col, justify=justify, no_wrap=True)
    for r in sorted(results, key=lambda r: r.benchmark):
        flagged = "-" if r.flagged_fraction is None else f"{r.n_flagged} ({r.flagged_fraction:.1%})"
        verdict = "[green]PASS[/]" if r.passed else ("[red]MISSING[/]" if r.error else "[red]FAIL[/]")
        table.add_row(r.benchmark, str(r.n), _num(r.mean, ".4f"), _num(r.median, ".4f"), flagged,
                      f"TBD < {r.score_cutoff:g}, ≤ {r.max_flagged_fraction:.0%}", verdict)
    buf = io.StringIO()
    Console(file=buf, width=width, force_terminal=markup, color_system="standard" if markup else None).print(table)
    return buf.getvalue()


def summary_json(results: list[GateResult]) -> dict:
    ordered = sorted(results, key=lambda r: r.benchmark)
    return {
        "passed": all(r.passed for r in ordered),
        "benchmarks": {r.benchmark: r.to_json() for r in ordered},
    }
