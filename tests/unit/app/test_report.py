"""lm_eval_tbd.app.report: the rich report of a run. The embedded demo is tested in
tests/integration/test_demo.py."""

from pathlib import Path

import pytest
from rich.console import Console

from lm_eval_tbd.app.report import render_run, summarise
from lm_eval_tbd.core.record import GenerationRecord
from lm_eval_tbd.core.runs import QuestionResult, TaskRun


def run_of(scores_labels):
    qs = tuple(
        QuestionResult(i, f"q{i}", f"question {i}", label, tbd, GenerationRecord([7], [-0.1], "eos"))
        for i, (tbd, label) in enumerate(scores_labels)
    )
    return TaskRun("tbd_x", Path("samples_tbd_x_2026.jsonl"), qs)


def text_of(renderable) -> str:
    console = Console(width=100, record=True, file=open("/dev/null", "w"))
    console.print(renderable)
    return console.export_text()


def test_summary_and_report_for_a_labelled_run():
    run = run_of([(0.1, 1), (0.2, 1), (0.5, 0), (0.6, 0)])
    s = summarise(run)
    assert s["auc"] == 1.0 and s["tpr_at_1fpr"] == 1.0 and s["n_members"] == 2
    text = text_of(render_run(run, top=2))
    assert "ROC AUC" in text and "1.000" in text
    # the most suspicious (lowest TBD) questions come first
    assert text.index("question 0") < text.index("question 1")
    assert "question 2" not in text


def test_single_class_report_says_undefined():
    run = run_of([(0.1, 1), (0.2, 1)])
    s = summarise(run)
    assert s["auc"] is None and "all 2 labelled questions are members" in s["roc_undefined"]
    assert "undefined" in text_of(render_run(run))


def test_unlabelled_run_has_no_roc_figures():
    s = summarise(run_of([(0.1, None), (0.3, None)]))
    assert "auc" not in s and s["mean_tbd"] == pytest.approx(0.2)
