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

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from lm_eval_tbd.core.scores import SCORES, decision_value

__all__ = ["CombinedModel", "fit_combined", "load_combined", "cross_fit_decisions", "with_combined", "COMBINED"]

#: The name a combined model's output goes by in reports and gates.
COMBINED = "combined"
_VERSION = 1


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
        return np.array([self.decision(q.scores or {}) for q in run.questions])

    def to_json(self) -> str:
        return json.dumps({"version": _VERSION, **asdict(self)}, indent=1)

    def save(self, path: str | Path) -> Path:
        from lm_eval_tbd.core.atomic import write_text_atomic

        return write_text_atomic(Path(path), self.to_json() + "\n")


def load_combined(path: str | Path) -> CombinedModel:
    """Read a model written by :meth:`CombinedModel.save`; a bad file is a ValueError naming it."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ValueError(f"{path}: not a combined-model JSON file ({err})") from None
    if not isinstance(data, dict) or data.pop("version", None) != _VERSION:
        raise ValueError(f"{path}: not a combined-model file of version {_VERSION}")
    try:
        model = CombinedModel(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})
    except TypeError as err:
        raise ValueError(f"{path}: {err}") from None
    unknown = [f for f in model.features if f not in SCORES or f == COMBINED]
    lengths = {len(model.features), len(model.means), len(model.scales), len(model.coef)}
    if unknown or len(lengths) != 1 or not all(math.isfinite(v) and v > 0 for v in model.scales):
        raise ValueError(f"{path}: inconsistent combined model (unknown features {unknown} or mismatched arrays)")
    return model


def question_key(text: str) -> str:
    """A short, stable hash of a question's text (to recognise calibration questions)."""
    import hashlib

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


def fit_combined(runs, *, features: list[str] | None = None, folds: int = 5, C: float = 1.0, seed: int = 0,
                 n_resamples: int = 1000) -> CombinedModel:
    """Fit on the labelled questions of ``runs`` (TaskRuns) and return the model.

    ``features`` default to every score all questions have, except ``gen_zlib`` and ``q_zlib``
    (their scale depends on text length, not on the model). Out-of-fold decisions come from
    stratified ``folds``-fold cross-validation (seeded); ``out_of_fold`` holds their ROC report.
    Non-finite feature values (a -inf log-prob) are an error, not silently dropped.

    Example: ``fit_combined([load_run(out, "my_calibration")]).save("model.json")``.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    from lm_eval_tbd.core.stats import roc_report

    runs = list(runs)
    if not runs:
        raise ValueError("fit_combined: no runs given")
    available = [n for n in SCORES if n != COMBINED and all(q.scores and n in q.scores for r in runs for q in r.questions)]
    if features is None:
        features = [n for n in available if n not in ("gen_zlib", "q_zlib")]
    missing = [f for f in features if f not in available]
    if missing or not features:
        raise ValueError(f"fit_combined: score(s) {missing or features} are not given for every question; "
                         f"available: {available}")
    x, y = _matrix(runs, features)
    if not np.isfinite(x).all():
        raise ValueError("fit_combined: a feature value is not finite (a probability-0 token?); drop that feature")
    n_pos, n_neg = int(y.sum()), int((1 - y).sum())
    if min(n_pos, n_neg) < folds:
        raise ValueError(f"fit_combined: {n_pos} members and {n_neg} non-members; each class needs at least "
                         f"{folds} questions for {folds}-fold cross-validation")
    means, scales = x.mean(0), x.std(0)
    scales[scales == 0] = 1.0  # a constant feature carries no information; keep it harmless
    z = (x - means) / scales

    oof = np.empty(len(y))
    for train, test in StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed).split(z, y):
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
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

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
    Raises ValueError naming the task when a question lacks one of the model's features."""
    from dataclasses import replace

    from lm_eval_tbd.core.runs import TaskRun

    seen = set(model.calibration_questions)
    qs, fitted_on = [], 0
    for q in run.questions:
        if question_key(q.question) in seen:
            fitted_on += 1
            qs.append(q)
            continue
        try:
            qs.append(replace(q, scores={**(q.scores or {}), COMBINED: model.decision(q.scores or {})}))
        except KeyError as err:
            raise ValueError(f"{run.task}: {err.args[0]} (was it scored with the same options as the calibration "
                             "run?)") from None
    if fitted_on and warn is not None:
        warn(f"{run.task}: {fitted_on} of {len(qs)} questions were used to fit the combined model; they get no "
             "combined score (it would be in-sample). Its out-of-fold figures are those 'combine fit' printed.")
    return TaskRun(run.task, run.samples_file, tuple(qs))
