"""A combined detector: logistic regression over the per-question scores of one generation pass.

A user fits it once on a labelled calibration run (their own distillation questions against
held-out ones, scored by the same model with the TBD task), saves it as a small JSON file, and
applies it to benchmark runs. It is reported only with out-of-fold figures: every calibration
question is scored by a model fitted without it (stratified k-fold), never in-sample.

The features are decision values (higher = more likely seen, :func:`lm_eval_tbd.core.scores.decision_value`),
standardised with the calibration run's means and standard deviations. The model's output is a
decision value too: HIGHER = more likely seen.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

from lm_eval_tbd.core.atomic import write_text_atomic
from lm_eval_tbd.core.compat import QUESTION_KEYS, IncompatibleRunsError, check_compatible, check_settings, run_settings
from lm_eval_tbd.core.record import loads_json
from lm_eval_tbd.core.runs import TaskRun
from lm_eval_tbd.core.scores import SCORES, decision_value
from lm_eval_tbd.core.stats import roc_report

__all__ = ["CombinedModel", "fit_combined", "load_combined", "cross_fit_decisions", "with_combined", "COMBINED"]

#: The name a combined model's output goes by in reports and gates.
COMBINED = "combined"
# 2: the model records the settings of the runs it was fitted on (tbd_options); version 1 files
# do not, so applying one to runs scored otherwise would go unnoticed: they are refused.
_VERSION = 2


@dataclass(frozen=True)
class CombinedModel:
    """A fitted combination: ``decision = intercept + sum_j coef_j * (x_j - mean_j) / scale_j``,
    with ``x_j`` the decision value of score ``features[j]``. Higher = more likely seen."""

    features: tuple[str, ...]
    means: tuple[float, ...]
    scales: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float
    C: float
    out_of_fold: dict  # AUC, TPR and their CIs of the out-of-fold decisions on the calibration run
    n_members: int
    n_nonmembers: int
    folds: int
    # Short hashes of the calibration questions' texts: applying the model to them would give
    # in-sample figures, so with_combined leaves those questions without the score.
    calibration_questions: tuple[str, ...] = ()
    # The settings of the runs it was fitted on (lm_eval_tbd.core.compat.run_settings, less the
    # question file and the date): the tbd_* options, decoding and chat template every run it is
    # applied to must share. None when fitted on runs read from no lm-eval output (Python API).
    tbd_options: dict | None = None
    # Where the model was read from (load_combined), for messages; not saved.
    source: str | None = field(default=None, compare=False)

    def decision(self, scores: dict[str, float]) -> float:
        """The combined decision value of one question's ``scores`` (its own SCORES values).
        Raises KeyError naming a missing feature."""
        missing = [f for f in self.features if f not in scores]
        if missing:
            raise KeyError(f"combined model needs score(s) {missing}, which this question's record does not give")
        x = np.array([decision_value(f, scores[f]) for f in self.features])
        z = (x - np.array(self.means)) / np.array(self.scales)
        return float(self.intercept + z @ np.array(self.coef))

    def decisions(self, run) -> np.ndarray:
        """Decision values of every question of a :class:`lm_eval_tbd.core.runs.TaskRun`."""
        return np.array([self.decision(q.scores) for q in run.questions])

    def to_json(self) -> str:
        fields = asdict(self)
        fields.pop("source")
        return json.dumps({"version": _VERSION, **fields}, indent=1)

    def check_run(self, run) -> None:
        """Raise :class:`~lm_eval_tbd.core.compat.IncompatibleRunsError` when ``run`` (a TaskRun) was
        scored with other TBD options, decoding or chat-template use than the runs the model was
        fitted on (its features would mean something else). The model itself may differ. Nothing
        to check when the model recorded no settings."""
        if self.tbd_options is None:
            return
        name = f"the combined model {self.source}" if self.source else "the combined model"
        try:
            settings = run_settings(run)
        except ValueError as err:
            raise IncompatibleRunsError(f"cannot check that {run.task} was scored as {name} was fitted: {err}") from None
        check_settings(self.tbd_options, settings, described_a=f"{name} (fitted on {_fitted_on(self.tbd_options)})",
                       described_b=f"{run.task} ({run.samples_file})", role_a="combined model", role_b=run.task,
                       same_model=False, ignore=("fitted_on",))

    def save(self, path: str | Path) -> Path:
        return write_text_atomic(Path(path), self.to_json() + "\n")


def _fitted_on(options: dict) -> str:
    runs = options.get("fitted_on") or []
    return ", ".join(runs) if runs else "runs of unrecorded name"


def _finite(value, key: str, where: str, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or (
            positive and value <= 0):
        raise ValueError(f"{where}: '{key}' must be a finite number{' > 0' if positive else ''}, got {value!r}")
    return float(value)


def _numbers(data: dict, key: str, where: str, *, positive: bool = False) -> tuple[float, ...]:
    values = data.get(key)
    if not isinstance(values, list):
        raise ValueError(f"{where}: '{key}' must be a list of numbers, got {values!r}")
    return tuple(_finite(v, f"{key}[{i}]", where, positive=positive) for i, v in enumerate(values))


def _count(data: dict, key: str, where: str) -> int:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{where}: '{key}' must be an integer >= 0, got {value!r}")
    return value


def load_combined(path: str | Path) -> CombinedModel:
    """Read a model written by :meth:`CombinedModel.save`; a bad file is a ValueError naming it and
    the key at fault (a feature list that is empty or names no score, a coefficient, mean, scale
    or intercept that is not a finite number, arrays of different lengths)."""
    path = Path(path)
    try:
        data = loads_json(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a combined-model JSON file (not valid UTF-8)") from None
    except (OSError, ValueError) as err:
        raise ValueError(f"{path}: not a combined-model JSON file ({err})") from None
    if not isinstance(data, dict) or data.get("version") != _VERSION:
        found = data.get("version") if isinstance(data, dict) else None
        if found == 1:
            raise ValueError(f"{path}: a combined model of version 1, which does not record the TBD options it was "
                             "fitted with; fit it again with 'lm-eval-tbd combine fit'")
        raise ValueError(f"{path}: not a combined-model file of version {_VERSION}")
    known = {f for f in CombinedModel.__dataclass_fields__ if f != "source"}
    unknown = sorted(set(data) - known - {"version"})
    if unknown:
        raise ValueError(f"{path}: unknown key(s) {unknown}")
    where = str(path)
    features = data.get("features")
    if not isinstance(features, list) or not features or not all(isinstance(f, str) for f in features):
        raise ValueError(f"{where}: 'features' must be a non-empty list of score names, got {features!r}")
    bad = [f for f in features if f not in SCORES or f == COMBINED]
    if bad or len(set(features)) != len(features):
        raise ValueError(f"{where}: 'features' {features}: {f'unknown score(s) {bad}' if bad else 'a score twice'}")
    means, scales, coef = (_numbers(data, "means", where), _numbers(data, "scales", where, positive=True),
                           _numbers(data, "coef", where))
    lengths = {"features": len(features), "means": len(means), "scales": len(scales), "coef": len(coef)}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"{where}: arrays of different lengths {lengths}")
    options = data.get("tbd_options")
    if options is not None and not isinstance(options, dict):
        raise ValueError(f"{where}: 'tbd_options' must be an object or null, got {options!r}")
    questions = data.get("calibration_questions", [])
    if not isinstance(questions, list) or not all(isinstance(q, str) for q in questions):
        raise ValueError(f"{where}: 'calibration_questions' must be a list of strings")
    out_of_fold = data.get("out_of_fold")
    if not isinstance(out_of_fold, dict):
        raise ValueError(f"{where}: 'out_of_fold' must be an object, got {out_of_fold!r}")
    return CombinedModel(
        features=tuple(features), means=means, scales=scales, coef=coef,
        intercept=_finite(data.get("intercept"), "intercept", where), C=_finite(data.get("C"), "C", where, positive=True),
        out_of_fold=out_of_fold, n_members=_count(data, "n_members", where),
        n_nonmembers=_count(data, "n_nonmembers", where), folds=_count(data, "folds", where),
        calibration_questions=tuple(questions), tbd_options=options, source=str(path),
    )


def question_key(text: str) -> str:
    """A short, stable hash of a question's text (to recognise calibration questions)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _matrix(runs, features):
    rows, labels = [], []
    for run in runs:
        for q in run.questions:
            if q.label is None:
                raise ValueError(f"{run.task}: question {q.question_id} has no label; fitting needs a labelled run")
            rows.append([decision_value(f, q.scores[f]) for f in features])
            labels.append(int(q.label))
    return np.array(rows, dtype=float), np.array(labels)


def fitted_settings(runs) -> dict | None:
    """The settings shared by ``runs`` (TaskRuns), to record in the model: those of
    :func:`lm_eval_tbd.core.compat.run_settings` less the question file and the date, plus
    ``fitted_on`` (each run's task, samples file and date). Raises
    :class:`~lm_eval_tbd.core.compat.IncompatibleRunsError` naming two runs made with other
    settings. None when a run was read from no lm-eval output (no samples file)."""
    if not runs or any(r.samples_file is None for r in runs):
        return None
    first = runs[0]
    for i, run in enumerate(runs[1:], start=2):
        check_compatible(first, run, role_a="calibration run 1", role_b=f"calibration run {i}")
    settings = {k: v for k, v in run_settings(first).items() if k not in QUESTION_KEYS}
    settings["fitted_on"] = [f"{r.task} ({r.samples_file}, run {run_settings(r)['timestamp']})" for r in runs]
    return settings


def _question_groups(runs, warn) -> np.ndarray:
    """Each question's group for cross-validation: questions with the same text are one group, so
    a question given twice (two copies of a run) is never scored by a model fitted on its twin.
    ``warn(message)`` is told about such repeats; contradicting labels are an error."""
    first: dict[str, tuple[str, object]] = {}
    groups, repeats = [], []
    for run in runs:
        for q in run.questions:
            key = question_key(q.question)
            where = f"{run.task} question {q.question_id!r}"
            if key in first:
                other, label = first[key]
                if label != q.label:
                    raise ValueError(f"fit_combined: {where} has label {q.label}, but the same question is {other} with "
                                     f"label {label}")
                repeats.append(f"{where} (also {other})")
            else:
                first[key] = (where, q.label)
            groups.append(key)
    if repeats and warn is not None:
        warn(f"fit_combined: {len(repeats)} question(s) appear more than once, e.g. {repeats[0]}; each question's "
             "copies are kept in one fold, so none is scored by a model fitted on its twin (they weigh double "
             "in the fit and in the out-of-fold figures)")
    return np.array(groups)


def fit_combined(runs, *, features: list[str] | None = None, folds: int = 5, C: float = 1.0, seed: int = 0,
                 n_resamples: int = 1000, warn=None) -> CombinedModel:
    """Fit on the labelled questions of ``runs`` (TaskRuns) and return the model.

    ``features`` default to every score all questions have, except ``gen_zlib`` and ``q_zlib``
    (their scale depends on text length, not on the model). Out-of-fold decisions come from
    stratified ``folds``-fold cross-validation (seeded); ``out_of_fold`` holds their ROC report.
    A question given more than once (same text) keeps its copies in one fold, and ``warn``
    is told. Non-finite feature values (a -inf log-prob) are an error, not silently dropped.
    The runs must share their settings (:func:`fitted_settings`), which the model records.

    Example: ``fit_combined([load_run(out, "my_calibration")]).save("model.json")``.
    """
    runs = list(runs)
    if not runs:
        raise ValueError("fit_combined: no runs given")
    settings = fitted_settings(runs)
    available = [n for n in SCORES if n != COMBINED and all(n in q.scores for r in runs for q in r.questions)]
    if features is None:
        features = [n for n in available if n not in ("gen_zlib", "q_zlib")]
    if len(set(features)) != len(features):
        raise ValueError(f"fit_combined: features {list(features)} name a score more than once")
    missing = [f for f in features if f not in available]
    if missing or not features:
        raise ValueError(f"fit_combined: score(s) {missing or features} are not given for every question; "
                         f"available: {available}")
    x, y = _matrix(runs, features)
    if not np.isfinite(x).all():
        raise ValueError("fit_combined: a feature value is not finite (a probability-0 token?); drop that feature")
    groups = _question_groups(runs, warn)
    n_pos, n_neg = (len({g for g, label in zip(groups, y) if label == c}) for c in (1, 0))
    if min(n_pos, n_neg) < folds:
        raise ValueError(f"fit_combined: {n_pos} members and {n_neg} non-members (distinct questions); each class "
                         f"needs at least {folds} questions for {folds}-fold cross-validation")
    n_pos, n_neg = int(y.sum()), int((1 - y).sum())
    means, scales = x.mean(0), x.std(0)
    scales[scales == 0] = 1.0  # a constant feature carries no information; keep it harmless
    z = (x - means) / scales

    oof = np.empty(len(y))
    # Without repeats, plain stratified folds (the same folds as before grouping existed).
    splitter = (StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed).split(z, y)
                if len(set(groups)) == len(groups) else
                StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed).split(z, y, groups))
    for train, test in splitter:
        # Standardised with the full run's statistics: they use no labels, so nothing leaks.
        clf = LogisticRegression(C=C, max_iter=1000).fit(z[train], y[train])
        oof[test] = clf.decision_function(z[test])
    clf = LogisticRegression(C=C, max_iter=1000).fit(z, y)
    report = roc_report(y, oof, n_resamples=n_resamples, seed=seed)
    return CombinedModel(
        features=tuple(features), means=tuple(map(float, means)), scales=tuple(map(float, scales)),
        coef=tuple(map(float, clf.coef_[0])), intercept=float(clf.intercept_[0]), C=C,
        out_of_fold={"decisions_note": "out-of-fold (stratified k-fold), never in-sample", **report},
        n_members=n_pos, n_nonmembers=n_neg, folds=folds,
        calibration_questions=tuple(sorted({question_key(q.question) for r in runs for q in r.questions})),
        tbd_options=settings,
    )


def cross_fit_decisions(calibration, targets: dict, *, features: list[str] | None = None, folds: int = 5,
                        C: float = 1.0, seed: int = 0) -> dict[str, np.ndarray]:
    """Out-of-fold combined decisions for runs over the SAME questions as ``calibration`` (e.g.
    the questions reworded, or the model trained further): the questions are split into
    stratified folds; each fold's questions in every target run are scored by a model fitted on
    the calibration run's OTHER questions. So no question is scored by a model that saw its label.

    Returns ``{name: decisions in the order of targets[name].questions}``. Raises ValueError when a
    target holds questions the calibration run does not.
    """
    if features is None:
        features = list(fit_combined([calibration], folds=folds, C=C, seed=seed, n_resamples=10).features)
    ids = [q.question_id for q in calibration.questions]
    x, y = _matrix([calibration], features)
    out = {name: np.full(len(run.questions), np.nan) for name, run in targets.items()}
    index = {name: {q.question_id: i for i, q in enumerate(run.questions)} for name, run in targets.items()}
    for name in targets:
        extra = set(index[name]) - set(ids)
        if extra:
            raise ValueError(f"cross_fit_decisions: {name} has questions the calibration run lacks: {sorted(extra)[:3]}")
    for train, test in StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed).split(x, y):
        means, scales = x[train].mean(0), x[train].std(0)
        scales[scales == 0] = 1.0
        clf = LogisticRegression(C=C, max_iter=1000).fit((x[train] - means) / scales, y[train])
        held_out = {ids[i] for i in test}
        for name, run in targets.items():
            for q in run.questions:
                if q.question_id in held_out:
                    z = (np.array([decision_value(f, q.scores[f]) for f in features]) - means) / scales
                    out[name][index[name][q.question_id]] = float(clf.decision_function(z[None])[0])
    return out


def with_combined(run, model: CombinedModel, *, warn=None):
    """``run`` with the score "combined" (the model's decision, higher = more likely seen) added
    to every question's scores, so reports, plots and gates treat it like any other score.

    Questions the model was fitted on get no combined score (their figures would be in-sample),
    so a report that includes them shows no combined figures; ``warn(message)`` says so.
    Raises ValueError naming the task when a question lacks one of the model's features, and
    :class:`~lm_eval_tbd.core.compat.IncompatibleRunsError` when the run was scored with other
    settings than the model was fitted on (:meth:`CombinedModel.check_run`)."""
    model.check_run(run)
    seen = set(model.calibration_questions)
    qs, fitted_on = [], 0
    for q in run.questions:
        if question_key(q.question) in seen:
            fitted_on += 1
            qs.append(q)
            continue
        try:
            qs.append(replace(q, scores={**q.scores, COMBINED: model.decision(q.scores)}))
        except KeyError as err:
            raise ValueError(f"{run.task}: {err.args[0]} (was it scored with the same options as the calibration "
                             "run?)") from None
    if fitted_on and warn is not None:
        warn(f"{run.task}: {fitted_on} of {len(qs)} questions were used to fit the combined model; they get no "
             "combined score (it would be in-sample). Its out-of-fold figures are those 'combine fit' printed.")
    return TaskRun(run.task, run.samples_file, tuple(qs), run.params)
