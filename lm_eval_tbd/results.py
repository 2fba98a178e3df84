"""Compatibility path: the run model (:mod:`lm_eval_tbd.core.runs`) and its reader
(:mod:`lm_eval_tbd.core.samples`), which this module held before they were split.

Kept because users' code imports ``lm_eval_tbd.results``; new code imports the two modules.
"""

from lm_eval_tbd.core.runs import QuestionResult, TaskRun
from lm_eval_tbd.core.samples import find_tasks, load_run, samples_path

__all__ = ["QuestionResult", "TaskRun", "load_run", "find_tasks", "samples_path"]
