"""lm-eval-tbd: detect benchmark questions leaked into reasoning-distillation data with Token
Probability Deviation (TBD, arXiv 2510.04850) inside lm-evaluation-harness.

LOWER TBD = more likely seen. Heavy modules (torch, lm-eval) load only when their names are used,
so importing this package (as the autoload hook and the pytest plugin do) is cheap.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "TBDParams": "lm_eval_tbd.scores",
    "tbd_score": "lm_eval_tbd.scores",
    "mean_logprob": "lm_eval_tbd.scores",
    "min_k": "lm_eval_tbd.scores",
    "max_k": "lm_eval_tbd.scores",
    "min_k_plus_plus": "lm_eval_tbd.scores",
    "zlib_ratio": "lm_eval_tbd.scores",
    "SCORES": "lm_eval_tbd.scores",
    "decision_value": "lm_eval_tbd.scores",
    "score_record": "lm_eval_tbd.scoring",
    "UndefinedMetricError": "lm_eval_tbd.stats",
    "roc_auc": "lm_eval_tbd.stats",
    "tpr_at_fpr": "lm_eval_tbd.stats",
    "tpr_at_fpr_paper": "lm_eval_tbd.stats",
    "roc_report": "lm_eval_tbd.stats",
    "audit": "lm_eval_tbd.stats",
    "empirical_p_values": "lm_eval_tbd.stats",
    "contaminated_fraction": "lm_eval_tbd.stats",
    "options_from_metadata": "lm_eval_tbd.task_options",
    "write_jsonl_task": "lm_eval_tbd.custom_tasks",
    "GenerationRecord": "lm_eval_tbd.record",
    "REQUEST_TYPE": "lm_eval_tbd.record",
    "BENCHMARKS": "lm_eval_tbd.data",
    "read_questions_jsonl": "lm_eval_tbd.data",
    "load_benchmark": "lm_eval_tbd.data",
    "tasks_dir": "lm_eval_tbd.paths",
    "load_run": "lm_eval_tbd.results",
    "TaskRun": "lm_eval_tbd.results",
}

__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'lm_eval_tbd' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
