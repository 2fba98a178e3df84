"""Accuracy against seen-likeness (issue 26) on the shared real run: `lm_eval --tasks
tbd_aime,plain_aime24` on the tiny model through the real CLI (tests/conftest.py main_run), where
plain_aime24 is an ordinary generate_until task over the same synthetic AIME questions. Then the
real `lm-eval-tbd report` and `pytest --contam` read it back."""

import json
import shutil
import subprocess
import sys
import textwrap

import pytest

from tests.helpers import offline_env


def report(*args, cwd):
    return subprocess.run([sys.executable, "-m", "lm_eval_tbd", "report", *map(str, args)], cwd=cwd,
                          env=offline_env(), capture_output=True, text=True, timeout=300)


def model_folder(out):
    (folder,) = {p.parent for p in out.rglob("samples_plain_aime24_*.jsonl")}
    return folder


def test_report_joins_the_ordinary_task_of_the_same_run(main_run, tmp_path):
    out, _ = main_run
    proc = report(out, "--accuracy", "tbd_aime24=plain_aime24", "--json", tmp_path / "r.json", "--plot", tmp_path / "plots",
                  cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    text = " ".join(proc.stdout.split())
    assert "Accuracy against seen-likeness: tbd_aime24 joined with plain_aime24 (exact_match,none)" in text
    fig = json.loads((tmp_path / "r.json").read_text())["accuracy"]["tbd_aime24"]
    # --limit 4 on both tasks: the same four questions, matched by their text
    assert fig["match"] == {"matched": 4, "n_tbd": 4, "n_task": 4, "unmatched_tbd": [], "unmatched_task": []}
    assert fig["metric"] == "exact_match,none" and 0.0 <= fig["accuracy"] <= 1.0
    assert fig["seen_like"]["n_group"] == 1 and fig["seen_like"]["n_rest"] == 3
    assert len(fig["by_bin"]) == 4
    assert (tmp_path / "plots" / "tbd_aime24_accuracy.png").read_bytes()[:4] == b"\x89PNG"
    # the logged metric is lm-eval's own: the mean of the per-document values is its exact_match
    results = json.loads(next(model_folder(out).glob("results_*.json")).read_text())["results"]
    assert fig["accuracy"] == pytest.approx(results["plain_aime24"]["exact_match,none"])


def test_a_mismatched_pairing_exits_non_zero_naming_both_tasks(main_run, tmp_path):
    out, _ = main_run
    proc = report(out, "--accuracy", "tbd_aime25=plain_aime24", cwd=tmp_path)
    assert proc.returncode == 2
    assert "mismatched pairing: tbd_aime25 and plain_aime24 do not hold the same questions" in proc.stderr
    assert proc.stdout == ""


def test_pairing_by_name_and_an_ambiguous_one(main_run, tmp_path):
    """The run's files under the names lm-eval's own tasks would give them: aime24 pairs with
    tbd_aime24 by name; minerva_math500 and hendrycks_math500 both beside tbd_math500 is ambiguous."""
    out, _ = main_run
    copy = tmp_path / "out" / "model"
    shutil.copytree(model_folder(out), copy)
    plain = next(copy.glob("samples_plain_aime24_*.jsonl"))
    stamp = plain.name.rsplit("_", 1)[-1]
    plain.rename(copy / f"samples_aime24_{stamp}")
    proc = report(tmp_path / "out", "--task", "tbd_aime24", "--json", tmp_path / "r.json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "r.json").read_text())["accuracy"]["tbd_aime24"]["task"] == "aime24"

    tbd = next(copy.glob("samples_tbd_aime24_*.jsonl"))
    shutil.copy(tbd, copy / f"samples_tbd_math500_{stamp}")
    for name in ("minerva_math500", "hendrycks_math500"):
        shutil.copy(copy / f"samples_aime24_{stamp}", copy / f"samples_{name}_{stamp}")
    proc = report(tmp_path / "out", "--task", "tbd_math500", cwd=tmp_path)
    assert proc.returncode == 2
    assert ("ambiguous pairing: tbd_math500 could be joined with minerva_math500 or hendrycks_math500" in proc.stderr)
    proc = report(tmp_path / "out", "--task", "tbd_math500", "--accuracy", "tbd_math500=hendrycks_math500", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr


def test_gate_json_carries_the_accuracy_and_max_accuracy_gap_applies(main_run, pytester):
    out, _ = main_run
    pytester.makefile(".toml", pyproject=textwrap.dedent(f"""
        [tool.pytest_contam]
        results = "{out}"
        [tool.pytest_contam.benchmarks.tbd_aime24]
        accuracy_task = "plain_aime24"
        max_accuracy_gap = 0.99
        """))
    result = pytester.runpytest_subprocess("--contam", "--contam-json=r.json", "-p", "no:cacheprovider")
    gate = json.loads((pytester.path / "r.json").read_text())["benchmarks"]["tbd_aime24"]
    accuracy = gate["accuracy"]
    assert accuracy["task"] == "plain_aime24" and accuracy["match"]["matched"] == 4
    check = next(c for c in gate["checks"] if c["key"] == "accuracy_gap")
    assert check["measured"] == pytest.approx(accuracy["seen_like"]["gap"]) and check["limit"] == 0.99
    # a gap above 0.99 needs the one seen-like question right and the three others wrong
    assert result.ret == (0 if check["passed"] else 1)
