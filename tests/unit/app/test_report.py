"""The rich report and the embedded demo (the README's main job)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from lm_eval_tbd.core.record import GenerationRecord
from lm_eval_tbd.app.report import render_run, summarise
from lm_eval_tbd.core.runs import QuestionResult, TaskRun
from tests.helpers import offline_env


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


@pytest.mark.slow
def test_demo_distils_memorises_and_detects(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "lm_eval_tbd", "demo", "--out", str(tmp_path)],
                          env=offline_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    figures = json.loads((tmp_path / "demo.json").read_text())
    # positive control: the student really memorised its members, and TBD separates them
    assert figures["memorised_share"] >= 0.5
    assert figures["student"]["auc"] >= 0.8
    # null control: before distillation the same questions are not separable
    assert 0.3 <= figures["null_control"]["auc"] <= 0.7
    assert "Most suspicious questions" in proc.stdout and "Null control" in proc.stdout
    # the gate: members fail against the fresh reference questions, unseen questions pass
    assert figures["gate"] == {"exit_status": 1, "demo_members": False, "demo_unseen": True}
    assert "contam::demo_members FAILED" in proc.stdout and "contam::demo_unseen PASSED" in proc.stdout

    report = subprocess.run([sys.executable, "-m", "lm_eval_tbd", "report", str(tmp_path / "student_run"),
                             "--task", "demo_members", "--tau", "0.9", "--max-tokens", "100"],
                            env=offline_env(), capture_output=True, text=True)
    assert report.returncode == 0, report.stderr
    assert "re-scored from logged log-probabilities" in report.stdout

    missing = subprocess.run([sys.executable, "-m", "lm_eval_tbd", "report", str(tmp_path / "nothing")],
                             env=offline_env(), capture_output=True, text=True)
    assert missing.returncode == 2 and "no TBD samples" in missing.stdout
