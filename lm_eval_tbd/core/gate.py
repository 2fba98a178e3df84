"""A benchmark's figures against its limits (lower TBD = more seen-like): the evaluation behind
``pytest --contam`` (:mod:`pytest_contam`) and ``lm-eval-tbd report --reference``
(:mod:`lm_eval_tbd.app.audit_report`), its result and the words of its messages.

:class:`GateCriteria` holds what to measure and the limits; a limit left None is not applied, and
criteria with no limit at all give the figures only (no check, nothing failed). The pytest gate's
``Threshold`` (:mod:`pytest_contam.config`) is the same criteria, validated so that a configured
gate always has a limit that can fail.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = ["GateCriteria", "GateResult", "evaluate", "missing", "text_diagnostic", "one_line", "accuracy_lines",
           "accuracy_groups", "accuracy_group_names", "points", "interval", "LIMIT_KEYS", "CONFOUNDED"]

#: The limits a criteria can set; with none set the evaluation gives the figures only.
LIMIT_KEYS = ("score_cutoff", "max_auc", "alpha", "max_contaminated_fraction", "max_accuracy_gap")


@dataclass(frozen=True)
class GateCriteria:
    """What to measure of one benchmark and the limits to hold it to.

    Fixed cutoff: a question is flagged when its TBD < ``score_cutoff`` (lower = more seen-like);
    the benchmark fails when the flagged fraction exceeds ``max_flagged_fraction``.
    Calibrated (``reference`` = a clean reference task scored in the same run): the benchmark's
    ``score`` is compared with the reference's (audit mode); it fails when the Mann-Whitney AUC
    exceeds ``max_auc``, its one-sided p-value is below ``alpha``, or the estimated contaminated
    fraction exceeds ``max_contaminated_fraction``. Questions are flagged by Benjamini-Hochberg at
    ``fdr``.
    """

    benchmark: str
    score_cutoff: float | None = None
    max_flagged_fraction: float = 0.0
    reference: str | None = None
    score: str = "tbd"
    # score = "combined": the model file written by `lm-eval-tbd combine fit` (lm_eval_tbd.core.combine)
    combined_model: Path | None = None
    max_auc: float | None = None
    alpha: float | None = None
    max_contaminated_fraction: float | None = None
    fdr: float = 0.05
    # The defaults of lm_eval_tbd.core.calibrated.DEFAULT_MIN_TOKENS and
    # lm_eval_tbd.core.text_shift.DEFAULT_MAX_TEXT_AUC, not imported: they load scikit-learn, and
    # the pytest plugin imports this module at every pytest start.
    min_generated_tokens: int = 20
    max_text_auc: float = 0.8
    allow_confounded: bool = False
    # the ordinary task holding the benchmark's questions ("TASK[:METRIC]"; default: paired by name,
    # lm_eval_tbd.core.outcomes) and the largest accuracy gap, most seen-like quarter minus the rest
    accuracy_task: str | None = None
    max_accuracy_gap: float | None = None

    @property
    def has_limits(self) -> bool:
        """Whether any limit is set (else the evaluation gives the figures only)."""
        return any(getattr(self, k) is not None for k in LIMIT_KEYS)


def one_line(text: str, width: int) -> str:
    """``text`` on one line (whitespace collapsed), cut to ``width`` characters with an ellipsis."""
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


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
    # PASS, FAIL, or (audit mode, no base-model run, question sets that differ in kind)
    # "confounded"; "" for a gate built before verdicts were named (read back from old JSON)
    verdict: str = ""
    warnings: tuple = ()
    # the ordinary task's accuracy against seen-likeness (lm_eval_tbd.core.accuracy), when the
    # results hold the ordinary task; {"error": ...} when it could not be joined
    accuracy: dict | None = None

    def message(self) -> str:
        """The failure text: each failed threshold with its measured value, and the most
        suspicious questions."""
        if self.error:
            return f"{self.benchmark}: {self.error}"
        failed = [c for c in self.checks if not c["passed"]] or list(self.checks)
        lines = []
        if self.verdict == CONFOUNDED:
            lines.append(_confounded_line(self.benchmark, self.audit))
        lines += [f"{self.benchmark}: {c['check']} is {_fmt(c['key'], c['measured'])}, limit {_fmt(c['key'], c['limit'])}"
                  for c in failed]
        lines.append(f"({self.n} questions, mean TBD {self.mean:.4f}, median {self.median:.4f}; lower TBD = more likely seen)")
        if self.audit:
            lines += _audit_lines(self.audit, self.n)
        if self.accuracy:
            lines += accuracy_lines(self.accuracy)
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
        d["warnings"] = tuple(d.get("warnings", ()))
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
    lines += _shift_lines(a)
    return lines


def _shift_lines(a: dict) -> list[str]:
    """The shift controls: the method, the questions left out, the text-only diagnostic and what
    the audit could not control for (absent in JSON written before they existed)."""
    if "method" not in a:
        return []
    lo, hi = a["auc_ci"]
    lines = [f"  method {a['method']} (AUC {a['auc']:.3f} [{lo:.3f}, {hi:.3f}])"]
    ex = a["excluded"]
    if ex["benchmark"] or ex["reference"]:
        ids = ", ".join(e["id"] for e in ex["benchmark"][:5]) + (", ..." if len(ex["benchmark"]) > 5 else "")
        lines.append(f"  left out, generation ended before {ex['min_tokens']} tokens: {len(ex['benchmark'])} benchmark "
                     f"question(s){f' ({ids})' if ids else ''} and {len(ex['reference'])} reference question(s)")
    t = a["text_shift"]
    if t.get("auc") is not None:
        lo, hi = t["auc_ci"]
        lines.append(f"  text-only diagnostic: a classifier reading only the questions tells benchmark from reference "
                     f"with AUC {t['auc']:.2f} [{lo:.2f}, {hi:.2f}] (0.5 = alike; limit {a['max_text_auc']:g} without a "
                     "base-model run)")
    else:
        lines.append(f"  text-only diagnostic: undefined ({t.get('reason')})")
    lines += [f"  not controlled for: {u}" for u in a["uncontrolled"]]
    return lines


CONFOUNDED = "confounded"


def _confounded_line(benchmark: str, a: dict) -> str:
    t = a["text_shift"]
    return (f"{benchmark}: confounded: the questions alone tell benchmark from reference {a['reference']} (text-only "
            f"AUC {t['auc']:.2f} >= {a['max_text_auc']:g}), so the audit cannot tell that difference from "
            "contamination (a distilled student answers whole kinds of questions differently, which a base-model "
            "run does not control for: benchmarks/results/shift.md). Give a reference of the same source and "
            "format, e.g. the same benchmark's questions published after the training cut-off; allow_confounded = "
            "true passes with a warning")


def _bh_floor_note(n_reference: int, n_benchmark: int, fdr: float) -> str | None:
    """Why Benjamini-Hochberg cannot flag a lone question with this few reference questions;
    None when a single question could be flagged (then 0 flagged is a finding of the data)."""
    from lm_eval_tbd.core.stats import bh_min_flaggable  # deferred: scipy and scikit-learn (see evaluate)

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
    return math.ceil(round(x, 9))


_FORMATS = {"flagged": ".1%", "contaminated": ".1%", "auc": ".3f", "p": ".2g", "accuracy_gap": "+.1%"}


def _fmt(key: str, value: float) -> str:
    return format(value, _FORMATS[key])


def _check(key: str, name: str, measured: float, limit: float, ok: bool) -> dict:
    return {"key": key, "check": name, "measured": float(measured), "limit": float(limit), "passed": bool(ok)}


def evaluate(threshold: GateCriteria, run, top: int = 5, reference=None, base=None, base_reference=None, *,
             accuracy: bool = False) -> GateResult:
    """Gate one benchmark's run (an ``lm_eval_tbd.core.runs.TaskRun``); ``reference`` is the clean
    reference task's run when ``threshold.reference`` is set; ``base`` and ``base_reference`` the
    base model's runs of the same two tasks, when the configuration gives a base model.
    ``accuracy``: also join the ordinary task beside ``run``'s samples (``accuracy_task``, or
    paired by name) and give its accuracy against seen-likeness; checked against
    ``max_accuracy_gap`` when set. Criteria with no limit give the figures with no check, passed
    (nothing failed); criteria with limits of which none could be checked fail."""
    # Deferred: pytest_contam.plugin imports this module at every pytest start, and these load
    # numpy, scipy and scikit-learn.
    import numpy as np

    from lm_eval_tbd.core.calibrated import calibrated_audit
    from lm_eval_tbd.core.compat import check_compatible
    from lm_eval_tbd.core.stats import bh_min_flaggable

    if threshold.combined_model is not None:
        # The fitted model's decision becomes the score "combined" of every run.
        from lm_eval_tbd.core.combine import load_combined, with_combined

        model = load_combined(threshold.combined_model)
        run, reference, base, base_reference = (with_combined(r, model) if r is not None else None
                                                for r in (run, reference, base, base_reference))
    scores = run.tbd_values()
    checks, flagged, top_flagged, audit_figures, verdict, warnings = [], [], (), None, "", []
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
        if name == "tbd":
            # All-zero TBDs tie: AUC 0.5 and a PASS that says nothing.
            note = run.zero_tbd_note() or reference.zero_tbd_note()
            if note:
                raise ValueError(note)
        # Benchmark and reference must be scored alike (model, decoding, tbd_* options, template),
        # and the base model's runs like the student's but for the model itself.
        check_compatible(run, reference, role_a="benchmark", role_b="reference")
        if base is not None:
            for student, twin in ((run, base), (reference, base_reference)):
                check_compatible(student, twin, role_a="student", role_b="base model", same_model=False)
        a = calibrated_audit(run, reference, score=name, base_benchmark=base, base_reference=base_reference,
                             min_tokens=threshold.min_generated_tokens, fdr=threshold.fdr)
        text = text_diagnostic(run, reference)
        audit_figures = {k: a[k] for k in ("auc", "auc_ci", "p_value", "contaminated_fraction", "contaminated_fraction_ci",
                                           "confidence", "n_reference", "fdr", "method", "uncontrolled")}
        audit_figures.update(reference=threshold.reference, score=name, n_bh_flagged=int(sum(a["flagged"])),
                             n_benchmark=a["n_benchmark"], min_p_value=1 / (a["n_reference"] + 1),
                             bh_min_flaggable=bh_min_flaggable(a["n_reference"], a["n_benchmark"], threshold.fdr),
                             excluded=a["excluded"], text_shift=text, max_text_auc=threshold.max_text_auc,
                             flagged_ids=a["flagged_ids"])
        if threshold.max_auc is not None:
            checks.append(_check("auc", f"AUC against {threshold.reference}", a["auc"], threshold.max_auc, a["auc"] <= threshold.max_auc))
        if threshold.alpha is not None:
            checks.append(_check("p", "one-sided Mann-Whitney p-value (must not be below)", a["p_value"], threshold.alpha,
                                 a["p_value"] >= threshold.alpha))
        if threshold.max_contaminated_fraction is not None:
            checks.append(_check("contaminated", "estimated contaminated fraction", a["contaminated_fraction"],
                                 threshold.max_contaminated_fraction,
                                 a["contaminated_fraction"] <= threshold.max_contaminated_fraction))
        if text.get("auc") is not None and text["auc"] >= threshold.max_text_auc:
            verdict = CONFOUNDED
            if threshold.allow_confounded:
                warnings.append(_confounded_line(threshold.benchmark, audit_figures) + " (allowed: passed)")
        if threshold.score_cutoff is None:
            # Flag by Benjamini-Hochberg instead, most significant first.
            kept = [run.questions[i] for i in a["kept_index"]]
            values = run.score_values(name)[a["kept_index"]]
            order = sorted((i for i, f in enumerate(a["flagged"]) if f), key=lambda i: (a["bh_adjusted"][i], i))
            flagged = [kept[i] for i in order]
            top_flagged = tuple((kept[i].question_id, float(values[i]), one_line(kept[i].question, 70))
                                for i in order[:top])
    accuracy_figures = None
    if accuracy:
        if audit_figures is not None:
            marked = (audit_figures["flagged_ids"], f"Benjamini-Hochberg at FDR {threshold.fdr:g} against {threshold.reference}",
                      [e["id"] for e in audit_figures["excluded"]["benchmark"]])
        elif threshold.score_cutoff is not None:
            marked = ([q.question_id for q in flagged], f"TBD below score_cutoff {threshold.score_cutoff:g}", ())
        else:
            marked = (None, "", ())
        accuracy_figures = _accuracy(threshold, run, base, *marked)
        if threshold.max_accuracy_gap is not None:
            checks.append(_accuracy_check(threshold, accuracy_figures))
    # Limits of which none was checked: nothing shows it clean. No limit at all: figures only.
    passed = all(c["passed"] for c in checks) and (bool(checks) or not threshold.has_limits)
    if verdict == CONFOUNDED:
        passed = threshold.allow_confounded
    else:
        verdict = "PASS" if passed else "FAIL"
    return GateResult(
        benchmark=threshold.benchmark,
        passed=passed,
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
        verdict=verdict,
        warnings=tuple(warnings),
        accuracy=accuracy_figures,
    )


def _accuracy(threshold: GateCriteria, run, base, flagged_ids, flagged_by: str, excluded_ids) -> dict | None:
    """The accuracy figures of ``run``'s ordinary task (lm_eval_tbd.core.accuracy): None when the
    results hold none and no max_accuracy_gap asks for it; ``{"error": ...}`` when it cannot be
    joined, unless max_accuracy_gap needs it (then the ValueError fails the gate)."""
    from lm_eval_tbd.core.accuracy import paired_accuracy
    from lm_eval_tbd.core.outcomes import ordinary_candidates, pair_run

    try:
        paired = pair_run(run, threshold.accuracy_task,
                          base_path=None if base is None else Path(base.samples_file).parent)
        if paired is None:
            if threshold.max_accuracy_gap is None:
                return None
            names = " or ".join(ordinary_candidates(run.task)) or "(no name pairs with it)"
            raise ValueError(f"max_accuracy_gap needs the ordinary task holding {run.task}'s questions, run with it: "
                             f"{names} is not in {Path(run.samples_file).parent}; run it, or name it with accuracy_task")
        return paired_accuracy(run, paired, score=threshold.score, flagged_ids=flagged_ids, flagged_by=flagged_by,
                               excluded_ids=excluded_ids)
    except (OSError, ValueError) as err:
        if threshold.max_accuracy_gap is not None:
            raise
        return {"error": str(err)}


def _accuracy_check(threshold: GateCriteria, figures: dict) -> dict:
    """max_accuracy_gap against the measured gap (most seen-like quarter minus the rest), its CI
    in the check's name; ValueError when the gap is undefined (too few questions)."""
    g = figures["seen_like"]
    if "undefined" in g:
        raise ValueError(f"max_accuracy_gap: the accuracy gap is undefined: {g['undefined']}")
    ci = (f"{figures['confidence']:.0%} CI [{g['gap_ci'][0]:+.1%}, {g['gap_ci'][1]:+.1%}]" if g["gap_ci"]
          else f"no CI: {g['ci_undefined']}")
    name = (f"accuracy gap of the most seen-like quarter by {figures['score']} ({g['accuracy_group']:.1%} of "
            f"{g['n_group']}) over the rest ({g['accuracy_rest']:.1%} of {g['n_rest']}), {figures['task']} "
            f"{figures['metric']}, {ci},")
    return _check("accuracy_gap", name, g["gap"], threshold.max_accuracy_gap, g["gap"] <= threshold.max_accuracy_gap)


def text_diagnostic(run, reference) -> dict:
    """The text-only AUC of ``run``'s questions against ``reference``'s, with its CI; ``{"auc":
    None, "reason": ...}`` when the sets are too small for it."""
    from lm_eval_tbd.core.stats import UndefinedMetricError  # deferred: scipy and scikit-learn (see evaluate)
    from lm_eval_tbd.core.text_shift import text_only_auc

    try:
        return text_only_auc([q.question for q in run.questions], [q.question for q in reference.questions])
    except UndefinedMetricError as err:
        return {"auc": None, "reason": str(err)}


def missing(threshold: GateCriteria, error: str) -> GateResult:
    """A configured benchmark without results: a failure, never a silent pass."""
    return GateResult(threshold.benchmark, False, 0, None, None, 0, None, threshold.score_cutoff,
                      threshold.max_flagged_fraction, (), None, error, verdict="FAIL")


def accuracy_group_names(fig: dict, key: str) -> tuple[str, str]:
    """The names of group ``key`` ("seen_like", "flagged" or "members") of accuracy figures and of
    the rest it is set against."""
    if key == "seen_like":
        return f"most seen-like quarter by {fig['score']}", "the rest"
    if key == "flagged":
        return f"flagged ({fig['flagged'].get('flagged_by') or 'audit'})", "unflagged"
    return f"members ({fig['members']['source']})", "non-members"


def points(value) -> str:
    """A share difference in signed percentage points: ``+12.5``."""
    return f"{value * 100:+.1f}"


def interval(ci, as_points: bool = True) -> str:
    """`` [lo, hi]`` of a CI in points (else as signed numbers); "" for none."""
    if not ci:
        return ""
    lo, hi = ci
    return f" [{points(lo)}, {points(hi)}]" if as_points else f" [{lo:+.2f}, {hi:+.2f}]"


def accuracy_groups(fig: dict):
    """``(name, name of the rest, figures)`` of each group that accuracy figures hold: the most
    seen-like quarter, the flagged questions (audit mode) and the members (labels)."""
    for key in ("seen_like", "flagged", "members"):
        if fig.get(key) is not None:
            yield (*accuracy_group_names(fig, key), fig[key])


def accuracy_lines(fig: dict) -> list[str]:
    """Plain-text lines of one benchmark's accuracy figures (lm_eval_tbd.core.accuracy), as the
    gate's failure message gives them."""
    if "error" in fig:
        return [f"accuracy: the ordinary task could not be joined: {fig['error']}"]
    lines = [f"accuracy of {fig['task']} ({fig['metric']}) on {fig['match']['matched']} of {fig['match']['n_tbd']} "
             f"{fig['tbd_task']} questions: {fig['accuracy']:.1%}"]
    for name, rest, g in accuracy_groups(fig):
        if "undefined" in g:
            lines.append(f"  {name}: undefined ({g['undefined']})")
        else:
            lines.append(f"  {name} {g['accuracy_group']:.1%} ({g['n_group']}) against {rest} {g['accuracy_rest']:.1%} "
                         f"({g['n_rest']}): {points(g['gap'])} points{interval(g['gap_ci'])}")
    inf = fig.get("inflation")
    if inf is not None and "undefined" not in inf:
        lines.append(f"  inflation (student gap {points(inf['student_gap'])} - base gap {points(inf['base_gap'])}): "
                     f"{points(inf['inflation'])} points{interval(inf['inflation_ci'])}")
    rc = fig["rank_correlation"]
    lines.append(f"  rank correlation: {'undefined (' + rc['undefined'] + ')' if 'undefined' in rc else format(rc['rho'], '+.2f') + interval(rc['rho_ci'], as_points=False)}")
    lines += [f"  note: {n}" for n in fig.get("notes", ())]
    return lines
