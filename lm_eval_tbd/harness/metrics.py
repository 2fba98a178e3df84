"""Corpus-level aggregations registered in lm-eval's registry.

Per question, ``process_results`` emits ``(decision, label)`` pairs for every score, with the
decision value HIGHER = more likely seen (-TBD for TBD); these aggregations turn the whole list
into one number. An undefined value
(labels of one class only) is reported as ``None`` (``null`` in the results JSON) with a warning
saying why, never as a made-up 0.5.
"""

from __future__ import annotations

import logging

import lm_eval.api.metrics  # noqa: F401  (fills the registry with the built-ins before we add ours)
from lm_eval.api.registry import aggregation_registry, metric_registry, register_aggregation, register_metric

from lm_eval_tbd.core.scores import SCORES

# lm_eval_tbd.core.stats (scikit-learn, scipy) is imported when an aggregation runs, after generation:
# importing it with the task would add their start-up time and memory to every TBD run.

log = logging.getLogger(__name__)

__all__ = ["AGGREGATIONS", "METRICS"]


def _pairs(items):
    decisions = [float(d) for d, _ in items]
    labels = [int(y) for _, y in items]
    return labels, decisions


def _undefined_as_none(name, fn):
    def aggregate(items):
        from lm_eval_tbd.core.stats import UndefinedMetricError

        labels, decisions = _pairs(items)
        try:
            return fn(labels, decisions)
        except UndefinedMetricError as err:
            log.warning("%s is undefined: %s", name, err)
            return None

    aggregate.__name__ = name
    aggregate.__doc__ = f"{name} over (decision value, label) pairs; None when undefined."
    return aggregate


def _roc_auc(labels, decisions):
    from lm_eval_tbd.core.stats import roc_auc

    return roc_auc(labels, decisions)


def _strict_tpr_at_1fpr(labels, decisions):
    from lm_eval_tbd.core.stats import tpr_at_fpr

    n_neg = len(labels) - sum(labels)
    if 0 < n_neg < 100:
        log.warning("tbd_tpr_at_1fpr: with %d non-members a 1%% FPR budget allows no false positive, so this "
                    "is the TPR at 0%% FPR (strict convention)", n_neg)
    return tpr_at_fpr(labels, decisions, 0.01)


AGGREGATIONS = {
    "tbd_roc_auc": _undefined_as_none("tbd_roc_auc", _roc_auc),
    "tbd_tpr_at_1fpr": _undefined_as_none("tbd_tpr_at_1fpr", _strict_tpr_at_1fpr),
}

for _name, _fn in AGGREGATIONS.items():
    # Registering twice (a re-import) must not collide with our own earlier registration.
    if _name not in aggregation_registry:
        register_aggregation(_name)(_fn)


def _passthrough(items):
    """Per-question value as computed by TBDTask.process_results (lm-eval calls metrics only for
    tasks without their own process_results; registering them names their aggregations)."""
    return items


def _metrics() -> dict[str, tuple[str, bool]]:
    """metric name -> (aggregation, higher_is_better). For a score's own mean the arrow points
    toward "cleaner" (less seen-like); for AUC / TPR toward a better detector."""
    out = {}
    for name, spec in SCORES.items():
        if name == "combined":  # a fitted model's output, added after the run (lm_eval_tbd.core.combine)
            continue
        out[name] = ("mean", not spec.higher_is_seen)
        out[f"{name}_roc_auc"] = ("tbd_roc_auc", True)
        out[f"{name}_tpr_at_1fpr"] = ("tbd_tpr_at_1fpr", True)
    out["tbd_n_tokens"] = ("mean", True)
    out["tbd_empty_rate"] = ("mean", False)
    out["tbd_sample_std"] = ("mean", False)  # spread of TBD across a question's samples (0 when greedy)
    return out


METRICS = _metrics()

for _name, (_agg, _hib) in METRICS.items():
    if _name not in metric_registry:
        register_metric(metric=_name, higher_is_better=_hib, aggregation=_agg)(_passthrough)
