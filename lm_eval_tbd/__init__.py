"""lm-eval-tbd: detect benchmark questions leaked into reasoning-distillation data with Token
Probability Deviation (TBD, arXiv 2510.04850) inside lm-evaluation-harness.

LOWER TBD = more likely seen. Heavy modules (torch, lm-eval) load only when their names are used,
so importing this package (as the autoload hook and the pytest plugin do) is cheap.

Layers (each imports only those above it):

- ``core/``: the generation record, scores, statistics, question data, the run model and its
  readers; no torch, no lm-eval.
- ``backends/``: ``generate_logprobs`` for lm-eval's hf, vLLM and OpenAI-compatible models.
- ``harness/``: the TBD task, its metrics and options, custom tasks, running ``lm_eval``.
- ``patches``: every change made to lm-eval, in one table.
- ``app/``: the ``lm-eval-tbd`` command line and reports; ``demo/``: the offline demo.

``lm_eval_tbd.scores``, ``.stats``, ``.record``, ``.data`` and ``.results`` are compatibility
paths for the modules now in ``core/``.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "TBDParams": "lm_eval_tbd.core.scores",
    "tbd_score": "lm_eval_tbd.core.scores",
    "mean_logprob": "lm_eval_tbd.core.scores",
    "min_k": "lm_eval_tbd.core.scores",
    "max_k": "lm_eval_tbd.core.scores",
    "min_k_plus_plus": "lm_eval_tbd.core.scores",
    "zlib_ratio": "lm_eval_tbd.core.scores",
    "SCORES": "lm_eval_tbd.core.scores",
    "decision_value": "lm_eval_tbd.core.scores",
    "score_record": "lm_eval_tbd.core.scores",
    "UndefinedMetricError": "lm_eval_tbd.core.stats",
    "roc_auc": "lm_eval_tbd.core.stats",
    "tpr_at_fpr": "lm_eval_tbd.core.stats",
    "tpr_at_fpr_paper": "lm_eval_tbd.core.stats",
    "roc_report": "lm_eval_tbd.core.stats",
    "audit": "lm_eval_tbd.core.stats",
    "empirical_p_values": "lm_eval_tbd.core.stats",
    "contaminated_fraction": "lm_eval_tbd.core.stats",
    "options_from_metadata": "lm_eval_tbd.harness.options",
    "write_jsonl_task": "lm_eval_tbd.harness.custom_tasks",
    "GenerationRecord": "lm_eval_tbd.core.record",
    "REQUEST_TYPE": "lm_eval_tbd.core.record",
    "BENCHMARKS": "lm_eval_tbd.core.data",
    "read_questions_jsonl": "lm_eval_tbd.core.data",
    "load_benchmark": "lm_eval_tbd.core.data",
    "tasks_dir": "lm_eval_tbd.harness.paths",
    "load_run": "lm_eval_tbd.core.samples",
    "TaskRun": "lm_eval_tbd.core.runs",
}

__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'lm_eval_tbd' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
