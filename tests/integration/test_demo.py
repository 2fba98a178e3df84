"""The embedded demo (the README's main job): `python -m lm_eval_tbd demo` distils a student,
detects its members with TBD and gates it; then `report` on its output."""

import json
import subprocess
import sys

from tests.helpers import offline_env


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

    # What the leak did to the score (python -m benchmarks.inflation on this demo's folder): members
    # are answered better than unseen questions, and the scores alone find it with no labels.
    from tests.helpers import ROOT

    proc = subprocess.run([sys.executable, "-m", "benchmarks.inflation", "--work", str(tmp_path),
                           "--out", str(tmp_path / "results"), "--shift", str(tmp_path / "demo.json")],
                          env=offline_env(), capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    demo = json.loads((tmp_path / "results" / "inflation.json").read_text())["students"]["demo student"]
    assert demo["true"]["student_gap_leaked_minus_clean"]["gap"] > 0.3
    assert demo["estimated_from_scores"]["inflation"] > 0.3
