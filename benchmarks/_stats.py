"""Summary statistics of repeated benchmark measurements, and their tables (Markdown and rich).

Measurements are dicts with a ``round`` and a ``config`` key plus one number per metric (``None``
where a run could not measure it). Rounds interleave the configurations, so two configurations'
values of the same round were taken close together in time: their ratio (a *paired ratio*) is
less affected by drift on the machine than the ratio of the two medians.
"""

from __future__ import annotations

import statistics

__all__ = ["describe", "ratio", "paired_ratios", "compare", "fmt", "spread", "markdown_table", "print_table"]


def describe(values) -> dict:
    """``{n, min, median, q1, q3, iqr, max}`` of the non-None ``values`` (quartiles inclusive of the
    extremes, so two rounds give q1 = min and q3 = max); every statistic None when there are none."""
    xs = sorted(v for v in values if v is not None)
    if not xs:
        return dict.fromkeys(("n", "min", "median", "q1", "q3", "iqr", "max"), None) | {"n": 0}
    q1, _, q3 = statistics.quantiles(xs, n=4, method="inclusive") if len(xs) > 1 else (xs[0],) * 3
    return {"n": len(xs), "min": xs[0], "median": statistics.median(xs), "q1": q1, "q3": q3, "iqr": q3 - q1,
            "max": xs[-1]}


def ratio(a, b):
    """``a / b``, or None when either is missing or ``b`` is zero."""
    return a / b if a is not None and b else None


def paired_ratios(measurements: list[dict], numerator: str, denominator: str, metric: str) -> list[float]:
    """Per round holding both configurations: ``numerator``'s ``metric`` over ``denominator``'s."""
    by_round: dict = {}
    for m in measurements:
        by_round.setdefault(m["round"], {})[m["config"]] = m.get(metric)
    pairs = (ratio(r.get(numerator), r.get(denominator)) for _, r in sorted(by_round.items()))
    return [p for p in pairs if p is not None]


def compare(measurements: list[dict], numerator: str, denominator: str, metrics) -> dict:
    """Per metric: both configurations' :func:`describe`, the ratio of their medians, and
    :func:`describe` of the per-round paired ratios (their median and IQR: the ratio's spread)."""
    out = {}
    for metric in metrics:
        a = describe(m.get(metric) for m in measurements if m["config"] == numerator)
        b = describe(m.get(metric) for m in measurements if m["config"] == denominator)
        out[metric] = {"numerator": a, "denominator": b, "ratio_of_medians": ratio(a["median"], b["median"]),
                       "paired_ratio": describe(paired_ratios(measurements, numerator, denominator, metric))}
    return out


def fmt(x, spec: str = "{:.2f}") -> str:
    """``spec.format(x)``, or ``n/a`` for None."""
    return "n/a" if x is None else spec.format(x)


def spread(d: dict, spec: str = "{:.2f}") -> str:
    """``median [q1–q3]`` of a :func:`describe` dict."""
    return f"{fmt(d['median'], spec)} [{fmt(d['q1'], spec)}–{fmt(d['q3'], spec)}]"


def markdown_table(headers: list[str], rows: list[list[str]]) -> str:
    """A GitHub Markdown table."""
    return "\n".join(["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers),
                      *("| " + " | ".join(r) + " |" for r in rows)])


def print_table(title: str, headers: list[str], rows: list[list[str]], caption: str | None = None) -> None:
    """The same table on the terminal with rich (first column left-aligned, the others right)."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if console.width < 120:  # a narrow or absent terminal would wrap the numbers
        console = Console(width=120)
    table = Table(title=title, caption=caption)
    for i, h in enumerate(headers):
        table.add_column(h, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*row)
    console.print(table)
