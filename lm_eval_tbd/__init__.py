"""lm-eval-tbd: detect benchmark questions leaked into reasoning-distillation data with Token
Probability Deviation (TBD, arXiv 2510.04850) inside lm-evaluation-harness.

LOWER TBD = more likely seen. Heavy modules (torch, lm-eval) load only when their names are used,
so importing this package (as the autoload hook and the pytest plugin do) is cheap.

Layers, each importing only those above it (``lint-imports`` checks it: ``[tool.importlinter]`` in
pyproject.toml):

- ``core/``: the generation record, scores, statistics, question data, the tbd_* options, the run
  model and its readers, the gate's evaluation; no torch, no lm-eval. It imports nothing else of
  the package.
- ``backends/``: ``generate_logprobs`` for lm-eval's hf, vLLM and OpenAI-compatible models.
- ``patches``: every change made to lm-eval, in one table (it attaches the backends).
- ``harness/``: the TBD task (which installs the patches), its metrics, custom tasks, running
  ``lm_eval``.
- ``demo/``: the offline demo's questions, distillation and tiny model.
- ``app/`` (the ``lm-eval-tbd`` command line and reports) and the ``pytest_contam`` plugin: two
  consumers, neither importing the other.
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
    "options_from_metadata": "lm_eval_tbd.core.options",
    "write_jsonl_task": "lm_eval_tbd.harness.custom_tasks",
    "GenerationRecord": "lm_eval_tbd.core.record",
    "REQUEST_TYPE": "lm_eval_tbd.core.record",
    "BENCHMARKS": "lm_eval_tbd.core.data",
    "read_questions_jsonl": "lm_eval_tbd.core.data",
    "load_benchmark": "lm_eval_tbd.core.data",
    "tasks_dir": "lm_eval_tbd.core.paths",
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
