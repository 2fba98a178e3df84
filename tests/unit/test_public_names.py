"""The names the README and docs give, and the import paths the shipped task YAMLs use, resolve."""

from __future__ import annotations

import importlib


def test_documented_names():
    import lm_eval_tbd
    from lm_eval_tbd.core.data import load_jsonl
    from lm_eval_tbd.core.record import GenerationRecord
    from lm_eval_tbd.core.runs import QuestionResult, TaskRun
    from lm_eval_tbd.core.samples import find_tasks, load_run, samples_path
    from lm_eval_tbd.core.scores import SCORES, score_record, tbd_score
    from lm_eval_tbd.core.stats import roc_auc
    from lm_eval_tbd.harness.task import TBDTask

    assert lm_eval_tbd.load_run is load_run and lm_eval_tbd.TaskRun is TaskRun
    assert lm_eval_tbd.score_record is score_record and lm_eval_tbd.GenerationRecord is GenerationRecord
    assert all(callable(f) for f in (load_jsonl, TBDTask, QuestionResult, find_tasks, samples_path, tbd_score, roc_auc))
    assert "tbd" in SCORES
    for name in lm_eval_tbd.__all__:
        assert getattr(lm_eval_tbd, name) is not None


def test_a_yaml_function_path_loads_through_lm_eval(tmp_path):
    """lm-eval resolves ``!function`` from a file beside the YAML, else an importable module."""
    from lm_eval.tasks._yaml_loader import load_yaml

    questions = tmp_path / "q.jsonl"
    questions.write_text('{"id": "a", "question": "1 + 1?"}\n')
    path = tmp_path / "user.yaml"
    path.write_text("task: user\ncustom_dataset: !function lm_eval_tbd.core.data.load_jsonl\n")
    config = load_yaml(path)
    assert config["custom_dataset"] is importlib.import_module("lm_eval_tbd.core.data").load_jsonl
