"""Apply a benchmark's thresholds to its per-question scores (lower TBD = more seen-like)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from pytest_contam.config import Threshold

__all__ = ["GateResult", "evaluate", "missing"]


@dataclass(frozen=True)
class GateResult:
    benchmark: str
    passed: bool
    n: int
    mean: float | None
    median: float | None
    n_flagged: int
    flagged_fraction: float | None
    score_cutoff: float | None
    max_flagged_fraction: float
    top_flagged: tuple  # ((question id, score, question text), ...) most seen-like first
    samples_file: str | None = None
    error: str | None = None
    # [{"key", "check", "measured", "limit", "passed"}, ...]: every criterion that was applied
    checks: tuple = ()
    # audit-mode figures against the reference task, when one is configured
    audit: dict | None = None

    def message(self) -> str:
        """The failure text: each failed threshold with its measured value, and the most
        suspicious questions."""
        if self.error:
            return f"{self.benchmark}: {self.error}"
        failed = [c for c in self.checks if not c["passed"]] or list(self.checks)
        lines = [f"{self.benchmark}: {c['check']} is {_fmt(c['key'], c['measured'])}, limit {_fmt(c['key'], c['limit'])}"
                 for c in failed]
        lines.append(f"({self.n} questions, mean TBD {self.mean:.4f}, median {self.median:.4f}; lower TBD = more likely seen)")
        if self.audit:
            lines += _audit_lines(self.audit, self.n)
        if self.top_flagged:
            lines.append("most suspicious flagged questions:")
            lines += [f"  {qid:>12}  score {score:.4f}  {text}" for qid, score, text in self.top_flagged]
        if self.samples_file:
            lines.append(f"scores from {self.samples_file}")
        return "\n".join(lines)

    def to_json(self) -> dict:
        d = asdict(self)
        d["top_flagged"] = [{"id": q, "score": s, "question": t} for q, s, t in self.top_flagged]
        d["checks"] = list(self.checks)
        return d

    @classmethod
    def from_json(cls, d: dict) -> GateResult:
        d = dict(d)
        d["top_flagged"] = tuple((q["id"], q["score"], q["question"]) for q in d["top_flagged"])
        d["checks"] = tuple(d["checks"])
        return cls(**d)


def _audit_lines(a: dict, n_benchmark: int) -> list[str]:
    """The audit-mode figures, with what a collapsed bootstrap interval or an empty flag list
    owes to the sample sizes rather than to the data."""
    lo, hi = a["contaminated_fraction_ci"]
    collapsed = lo == hi
    interval = "" if collapsed else f" [{lo:.1%}, {hi:.1%}]"
    lines = [f"against reference {a['reference']} ({a['n_reference']} questions, score {a['score']}): AUC {a['auc']:.3f}, "
             f"one-sided p = {a['p_value']:.2g}, contaminated fraction {a['contaminated_fraction']:.1%}{interval}, "
             f"{a['n_bh_flagged']} flagged at FDR {a['fdr']:g}"]
    if collapsed:
        # A percentile interval is one point when (nearly) every resample gives the same value,
        # e.g. Storey's estimate clipped at 0% or 100%: no spread is not the same as certainty.
        confidence = a.get("confidence", 0.95)
        lines.append(f"  bootstrap interval of the contaminated fraction: [{lo:.1%}, {hi:.1%}], a single point: at least "
                     f"{confidence:.0%} of resamples gave the same estimate, so it shows no spread, not certainty")
    if a["n_bh_flagged"] == 0:
        note = _bh_floor_note(a["n_reference"], n_benchmark, a["fdr"])
        if note:
            lines.append(f"  0 flagged: {note}")
    return lines


def _bh_floor_note(n_reference: int, n_benchmark: int, fdr: float) -> str | None:
    """Why Benjamini-Hochberg cannot flag a lone question with this few reference questions;
    None when a single question could be flagged (then 0 flagged is a finding of the data)."""
    from lm_eval_tbd.core.stats import bh_min_flaggable

    k = bh_min_flaggable(n_reference, n_benchmark, fdr)
    if k == 1:
        return None
    floor = (f"with {n_reference} reference questions the smallest possible empirical p-value is "
             f"1/{n_reference + 1} = {1 / (n_reference + 1):.3g} (a question above every reference question)")
    if k is None:
        return (f"{floor}, above the FDR {fdr:g}, so Benjamini-Hochberg cannot flag any question; that needs at least "
                f"{_at_least(1 / fdr) - 1} reference questions")
    return (f"{floor}, so Benjamini-Hochberg at FDR {fdr:g} over {n_benchmark} questions flags none or at least {k} "
            f"together (the k-th smallest p-value must be <= k * {fdr:g} / {n_benchmark}); a single standout question "
            f"needs at least {_at_least(n_benchmark / fdr) - 1} reference questions")


def _at_least(x: float) -> int:
    """ceil(x), ignoring float noise such as 20.000000000000004 for 1 / 0.05."""
    import math

    return math.ceil(round(x, 9))


_FORMATS = {"flagged": ".1%", "contaminated": ".1%", "auc": ".3f", "p": ".2g"}


def _fmt(key: str, value: float) -> str:
    return format(value, _FORMATS[key])


def _check(key: str, name: str, measured: float, limit: float, ok: bool) -> dict:
    return {"key": key, "check": name, "measured": float(measured), "limit": float(limit), "passed": bool(ok)}


def evaluate(threshold: Threshold, run, top: int = 5, reference=None) -> GateResult:
    """Gate one benchmark's run (an ``lm_eval_tbd.core.runs.TaskRun``); ``reference`` is the clean
    reference task's run when ``threshold.reference`` is set."""
    import numpy as np

    from lm_eval_tbd.app.report import one_line
    from lm_eval_tbd.core.scores import decision_value
    from lm_eval_tbd.core.stats import audit, bh_min_flaggable

    if threshold.combined_model is not None:
        # The fitted model's decision becomes the score "combined" of both runs.
        from lm_eval_tbd.core.combine import load_combined, with_combined

        model = load_combined(threshold.combined_model)
        run = with_combined(run, model)
        reference = with_combined(reference, model) if reference is not None else None
    scores = run.scores()
    checks, flagged, top_flagged, audit_figures = [], [], (), None
    if threshold.score_cutoff is not None:
        flagged = sorted((q for q in run.questions if q.tbd < threshold.score_cutoff), key=lambda q: (q.tbd, q.doc_id))
        fraction = len(flagged) / len(scores)
        checks.append(_check("flagged", f"share of questions with TBD below score_cutoff {threshold.score_cutoff:g}",
                             fraction, threshold.max_flagged_fraction, fraction <= threshold.max_flagged_fraction))
        top_flagged = tuple((q.question_id, q.tbd, one_line(q.question, 70)) for q in flagged[:top])
    if threshold.reference is not None:
        name = threshold.score
        missing_scores = [r.task for r in (run, reference) if name not in r.score_names()]
        if missing_scores:
            raise ValueError(f"score {name!r} was not logged for {', '.join(missing_scores)}")
        bench = [decision_value(name, v) for v in run.score_values(name)]
        ref = [decision_value(name, v) for v in reference.score_values(name)]
        a = audit(bench, ref, fdr=threshold.fdr)
        audit_figures = {k: a[k] for k in ("auc", "p_value", "contaminated_fraction", "contaminated_fraction_ci",
                                           "confidence", "n_reference", "fdr")}
        audit_figures.update(reference=threshold.reference, score=name, n_bh_flagged=int(sum(a["flagged"])),
                             min_p_value=1 / (a["n_reference"] + 1),
                             bh_min_flaggable=bh_min_flaggable(a["n_reference"], a["n_benchmark"], threshold.fdr))
        if threshold.max_auc is not None:
            checks.append(_check("auc", f"AUC against {threshold.reference}", a["auc"], threshold.max_auc, a["auc"] <= threshold.max_auc))
        if threshold.alpha is not None:
            checks.append(_check("p", "one-sided Mann-Whitney p-value (must not be below)", a["p_value"], threshold.alpha,
                                 a["p_value"] >= threshold.alpha))
        if threshold.max_contaminated_fraction is not None:
            checks.append(_check("contaminated", "estimated contaminated fraction", a["contaminated_fraction"],
                                 threshold.max_contaminated_fraction,
                                 a["contaminated_fraction"] <= threshold.max_contaminated_fraction))
        if threshold.score_cutoff is None:
            # Flag by Benjamini-Hochberg instead, most significant first.
            order = sorted((i for i, f in enumerate(a["flagged"]) if f), key=lambda i: (a["bh_adjusted"][i], i))
            flagged = [run.questions[i] for i in order]
            top_flagged = tuple((run.questions[i].question_id, float(run.score_values(name)[i]),
                                 one_line(run.questions[i].question, 70)) for i in order[:top])
    return GateResult(
        benchmark=threshold.benchmark,
        passed=bool(checks) and all(c["passed"] for c in checks),  # no criterion: nothing shows it clean
        n=len(scores),
        mean=float(scores.mean()),
        median=float(np.median(scores)),
        n_flagged=len(flagged),
        flagged_fraction=len(flagged) / len(scores),
        score_cutoff=threshold.score_cutoff,
        max_flagged_fraction=threshold.max_flagged_fraction,
        top_flagged=top_flagged,
        samples_file=str(run.samples_file),
        checks=tuple(checks),
        audit=audit_figures,
    )


def missing(threshold: Threshold, error: str) -> GateResult:
    """A configured benchmark without results: a failure, never a silent pass."""
    return GateResult(threshold.benchmark, False, 0, None, None, 0, None, threshold.score_cutoff,
                      threshold.max_flagged_fraction, (), None, error)
