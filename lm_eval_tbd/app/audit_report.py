"""Audit mode of ``lm-eval-tbd report --reference TASK``: every other task against a clean
reference task (questions the model cannot have seen, e.g. published after its training
cut-off), with no labels needed.

The statistics and the verdict are the pytest gate's (``lm_eval_tbd.core.gate.evaluate`` over
``lm_eval_tbd.core.stats.audit``): the Mann-Whitney AUC of the benchmark's decision values against
the reference's (HIGHER AUC = the benchmark looks MORE SEEN than the reference; 0.5 = alike), its
one-sided p-value, Benjamini-Hochberg flags at an FDR, and the estimated contaminated fraction.
A report is not a gate: the verdict is printed and written, the exit status stays 0.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from rich.console import Group
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from lm_eval_tbd.core.calibrated import DEFAULT_MIN_TOKENS, BaseRunMismatch
from lm_eval_tbd.core.compat import IncompatibleRunsError
from lm_eval_tbd.core.gate import CONFOUNDED, GateCriteria, GateResult, evaluate
from lm_eval_tbd.core.runs import TaskRun
from lm_eval_tbd.core.samples import load_run
from lm_eval_tbd.core.text_shift import DEFAULT_MAX_TEXT_AUC

__all__ = ["AuditCriteria", "AuditOutcome", "audit_run", "render_audit"]

#: Verdicts: every threshold given holds; one does not; no threshold was given (figures only);
#: the statistics are undefined for this pair of tasks (too few questions, score not logged).
PASS, FAIL, NO_THRESHOLD, UNDEFINED = "PASS", "FAIL", "no threshold", "undefined"
#: ... and CONFOUNDED: the question sets differ in kind and no base-model run controls for it (the
#: gate's verdict, lm_eval_tbd.core.gate)


@dataclass(frozen=True)
class AuditCriteria:
    """The gate's calibrated thresholds, with its defaults: a threshold left None is not applied,
    and questions are flagged by Benjamini-Hochberg at ``fdr`` 0.05. ``significance`` is the
    gate's ``alpha`` (renamed: ``--alpha`` is TBD's exponent in the report)."""

    reference: str
    score: str = "tbd"
    max_auc: float | None = None
    significance: float | None = None
    max_contaminated_fraction: float | None = None
    fdr: float = 0.05
    # the base model's lm_eval output folder (--base): the base-difference calibration
    base: Path | None = None
    min_generated_tokens: int = DEFAULT_MIN_TOKENS
    max_text_auc: float = DEFAULT_MAX_TEXT_AUC

    @property
    def has_thresholds(self) -> bool:
        return any(v is not None for v in (self.max_auc, self.significance, self.max_contaminated_fraction))

    def criteria(self, task: str) -> GateCriteria:
        """The gate's criteria of ``task`` against the reference; with no threshold given, the
        evaluation gives the figures only (verdict "no threshold")."""
        return GateCriteria(task, reference=self.reference, score=self.score, max_auc=self.max_auc,
                            alpha=self.significance, max_contaminated_fraction=self.max_contaminated_fraction,
                            fdr=self.fdr, min_generated_tokens=self.min_generated_tokens,
                            max_text_auc=self.max_text_auc)

    def to_json(self) -> dict:
        out = asdict(self)
        out["base"] = None if self.base is None else str(self.base)
        return out


@dataclass(frozen=True)
class AuditOutcome:
    """One task's audit: its ``verdict`` (PASS, FAIL, "no threshold" or "undefined"), the gate's
    result (None when undefined) and, when undefined, the ``reason``."""

    task: str
    verdict: str
    result: GateResult | None = None
    reason: str | None = None

    def to_json(self) -> dict:
        """The verdict and the gate's figures in the gate's JSON format (``--contam-json``),
        less the fixed-cutoff fields the report does not use."""
        out = {"verdict": self.verdict, "reason": self.reason}
        if self.result is not None:
            figures = self.result.to_json()
            for key in ("score_cutoff", "max_flagged_fraction", "error", "verdict"):  # the outcome's verdict wins
                figures.pop(key, None)
            out.update(figures)
        return out


def audit_run(run: TaskRun, reference: TaskRun, criteria: AuditCriteria, *, top: int = 5,
              base_reference: TaskRun | None = None) -> AuditOutcome:
    """``run`` against ``reference`` under ``criteria``, with the gate's own evaluation. ``top``:
    the most significant flagged questions kept. ``base_reference``: the reference's base run,
    when the caller audits several tasks against one reference and has read it already (else it
    is read from ``criteria.base``). Undefined statistics (fewer than 2 questions on a side, a
    score not logged) give an "undefined" outcome with the reason, not an error, so the other
    tasks are still reported."""
    try:
        base = None
        if criteria.base is not None:
            base = base_run(criteria.base, run)
            base_reference = base_reference or base_run(criteria.base, reference)
        result = evaluate(criteria.criteria(run.task), run, top=top, reference=reference, base=base,
                          base_reference=base_reference)
    except (IncompatibleRunsError, BaseRunMismatch):
        raise  # runs that cannot be compared are the user's error, not an undefined statistic
    except ValueError as err:  # includes lm_eval_tbd.core.stats.UndefinedMetricError
        return AuditOutcome(run.task, UNDEFINED, None, str(err))
    if result.verdict == CONFOUNDED:
        return AuditOutcome(run.task, CONFOUNDED, result)
    if not criteria.has_thresholds:
        return AuditOutcome(run.task, NO_THRESHOLD, result)
    return AuditOutcome(run.task, PASS if result.passed else FAIL, result)


def base_run(base_dir: Path, run: TaskRun) -> TaskRun:
    """The base model's run of ``run``'s task under ``base_dir`` (``--base``), re-scored as
    ``run`` was. A missing task is a ValueError naming the folder and the task."""
    try:
        base = load_run(base_dir, run.task)
    except FileNotFoundError as err:
        raise ValueError(f"--base {base_dir}: {err}") from None
    params = getattr(run, "params", None)
    return base.rescore(params) if params is not None else base


def _limits(criteria: AuditCriteria) -> str:
    parts = [f"{name} {value:g}" for name, value in (("AUC ≤", criteria.max_auc), ("p ≥", criteria.significance),
                                                      ("contaminated share ≤", criteria.max_contaminated_fraction))
             if value is not None]
    return ", ".join(parts) if parts else "none given (--max-auc, --significance, --max-contaminated-fraction)"


def render_audit(outcomes: list[AuditOutcome], criteria: AuditCriteria):
    """A rich renderable: one row per audited task, then the failures' details (each failed
    threshold with its measured value, and the most significant flagged questions)."""
    table = Table(title=f"Audit against reference {escape(criteria.reference)} (score {criteria.score}; AUC > 0.5 = more "
                        f"seen-like than the reference)\nthresholds: {_limits(criteria)}; flags: Benjamini-Hochberg "
                        f"at FDR {criteria.fdr:g}", title_justify="left")
    method = "student minus base" if criteria.base is not None else "student only"
    table.caption = (f"method: {method}; left out: questions whose generation ended before "
                     f"{criteria.min_generated_tokens} tokens; text AUC: a classifier reading only the questions "
                     f"(0.5 = alike; confounded from {criteria.max_text_auc:g})")
    for col in ("task", "n", "left out", "AUC", "p (one-sided)", "contaminated share [CI]", "flagged", "text AUC",
                "verdict"):
        table.add_column(col, justify="left" if col in ("task", "verdict") else "right", no_wrap=col != "task")
    colours = {PASS: "green", FAIL: "red", NO_THRESHOLD: "dim", UNDEFINED: "yellow", CONFOUNDED: "yellow"}
    details = []
    for o in outcomes:
        verdict = f"[{colours[o.verdict]}]{o.verdict}[/]"
        if o.result is None:
            table.add_row(escape(o.task), "-", "-", "-", "-", "-", "-", "-", verdict)
            details.append(Text(f"{o.task}: audit undefined: {o.reason}", style="yellow"))
            continue
        a, r = o.result.audit, o.result
        lo, hi = a["contaminated_fraction_ci"]
        text = a["text_shift"].get("auc")
        left_out = len(a["excluded"]["benchmark"])
        table.add_row(escape(o.task), str(r.n), str(left_out), f"{a['auc']:.3f}", f"{a['p_value']:.2g}",
                      f"{a['contaminated_fraction']:.1%} [{lo:.0%}, {hi:.0%}]", str(a["n_bh_flagged"]),
                      "-" if text is None else f"{text:.2f}", verdict)
        if o.verdict in (FAIL, CONFOUNDED):
            details.append(Text(r.message(), style="red" if o.verdict == FAIL else "yellow"))
    return Group(table, *details,
                 Text("A report, not a gate: the exit status is 0 whatever the verdict (pytest --contam fails builds).",
                      style="dim"))
