"""pytest --contam and the ordinary task's accuracy (issue 26): the accuracy figures in the gate's
JSON when the results hold the ordinary task, and the criterion max_accuracy_gap, on small
lm-eval output folders (the real lm_eval run is tests/integration/test_accuracy_e2e.py)."""

import json
import re
import textwrap

import pytest

import lm_eval_tbd.app.accuracy_report  # noqa: F401 - numpy & co. load here first (see test_plugin.py)
import lm_eval_tbd.app.report  # noqa: F401
import lm_eval_tbd.core.accuracy  # noqa: F401
from pytest_contam.config import ConfigError, Threshold, parse_config
from tests.helpers.ordinary import questions, write_ordinary, write_tbd

TBD = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]
CORRECT = [1, 1, 0, 1, 0, 0, 1, 0]  # seen-like quarter (q0, q1) 100%, the rest 2 of 6: gap +66.7 points


@pytest.fixture
def results(pytester):
    folder = pytester.path / "results" / "model"
    write_tbd(folder, "tbd_aime24", questions(8), TBD)
    write_ordinary(folder, "aime24", questions(8), CORRECT)
    return folder


def config(pytester, body: str) -> None:
    pytester.makefile(".toml", pyproject='[tool.pytest_contam]\nresults = "results"\n' + textwrap.dedent(body))


def gate_json(pytester) -> dict:
    return json.loads((pytester.path / "r.json").read_text())["benchmarks"]["tbd_aime24"]


def test_max_accuracy_gap_fails_a_release_whose_seen_like_quarter_is_answered_far_better(pytester, results):
    config(pytester, """
        [tool.pytest_contam.benchmarks.tbd_aime24]
        max_accuracy_gap = 0.25
        """)
    result = pytester.runpytest("--contam", "--contam-json=r.json")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*tbd_aime24: accuracy gap of the most seen-like quarter by tbd (100.0% of 2) over the rest (33.3% of 6), "
        "aime24 exact_match,none, 95% CI [[]+*%, +100.0%[]], is +66.7%, limit +25.0%",
        "*accuracy of aime24 (exact_match,none) on 8 of 8 tbd_aime24 questions: 50.0%",
        "*most seen-like quarter by tbd 100.0% (2) against the rest 33.3% (6): +66.7 points*",
    ])
    g = gate_json(pytester)
    assert g["verdict"] == "FAIL"
    check = next(c for c in g["checks"] if c["key"] == "accuracy_gap")
    assert check["measured"] == pytest.approx(2 / 3) and check["limit"] == 0.25 and not check["passed"]
    assert g["accuracy"]["seen_like"]["gap"] == pytest.approx(2 / 3)
    assert "accuracy gap ≤ +25%" in result.stdout.str()  # the summary table's threshold column


def test_a_gap_within_the_limit_passes(pytester, results):
    config(pytester, """
        [tool.pytest_contam.benchmarks.tbd_aime24]
        max_accuracy_gap = 0.7
        """)
    result = pytester.runpytest("--contam", "--contam-json=r.json")
    result.assert_outcomes(passed=1)
    assert gate_json(pytester)["verdict"] == "PASS"


def test_the_accuracy_figures_come_with_any_gate_when_the_results_hold_the_ordinary_task(pytester, results):
    config(pytester, """
        [tool.pytest_contam.benchmarks.tbd_aime24]
        score_cutoff = 0.25
        max_flagged_fraction = 0.5
        """)
    result = pytester.runpytest("--contam", "--contam-json=r.json")
    result.assert_outcomes(passed=1)
    a = gate_json(pytester)["accuracy"]
    assert (a["task"], a["n"], a["accuracy"]) == ("aime24", 8, 0.5)
    # flagged by the cutoff: q0, q1 (TBD 0.1, 0.2), both right; the others 2 of 6
    assert a["flagged"]["flagged_by"] == "TBD below score_cutoff 0.25"
    assert (a["flagged"]["accuracy_group"], a["flagged"]["n_group"]) == (1.0, 2)
    assert [c["key"] for c in gate_json(pytester)["checks"]] == ["flagged"]


def test_without_the_ordinary_task_max_accuracy_gap_fails_saying_what_to_run(pytester):
    write_tbd(pytester.path / "results" / "model", "tbd_aime24", questions(8), TBD)
    config(pytester, """
        [tool.pytest_contam.benchmarks.tbd_aime24]
        max_accuracy_gap = 0.25
        """)
    result = pytester.runpytest("--contam")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*tbd_aime24: no usable results: max_accuracy_gap needs the ordinary task holding "
                                 "tbd_aime24's questions, run with it: aime24 is not in *; run it, or name it with "
                                 "accuracy_task"])


def test_a_join_that_fails_is_recorded_but_fails_only_a_gate_that_needs_it(pytester, results):
    write_ordinary(results, "other", questions(8, prefix="How many"), CORRECT)
    config(pytester, """
        [tool.pytest_contam.benchmarks.tbd_aime24]
        score_cutoff = 0.05
        accuracy_task = "other"
        """)
    result = pytester.runpytest("--contam", "--contam-json=r.json")
    result.assert_outcomes(passed=1)
    assert "mismatched pairing: tbd_aime24 and other" in gate_json(pytester)["accuracy"]["error"]
    config(pytester, """
        [tool.pytest_contam.benchmarks.tbd_aime24]
        max_accuracy_gap = 0.5
        accuracy_task = "other"
        """)
    result = pytester.runpytest("--contam")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*no usable results: mismatched pairing: tbd_aime24 and other do not hold the same*"])


def test_accuracy_task_names_the_task_and_metric(pytester, results):
    write_ordinary(results, "mine", questions(8), [[0] * 8, CORRECT], filters=("strict", "flexible"))
    config(pytester, """
        [tool.pytest_contam.benchmarks.tbd_aime24]
        max_accuracy_gap = 0.5
        accuracy_task = "mine:exact_match,flexible"
        """)
    result = pytester.runpytest("--contam", "--contam-json=r.json")
    result.assert_outcomes(failed=1)
    assert gate_json(pytester)["accuracy"]["metric"] == "exact_match,flexible"


@pytest.mark.parametrize("spec, message", [
    ({"max_accuracy_gap": 1.0}, "max_accuracy_gap must be in [0.0, 1.0), got 1.0"),
    ({"max_accuracy_gap": -0.1}, "max_accuracy_gap must be in [0.0, 1.0), got -0.1"),
    ({"max_accuracy_gap": "big"}, "max_accuracy_gap must be a number"),
    ({"score_cutoff": 0.3, "accuracy_task": "aime24:"}, "accuracy_task: 'aime24:': expected TASK or TASK:METRIC"),
    ({"score_cutoff": 0.3, "accuracy_task": 3}, "accuracy_task must be str"),
])
def test_config_errors(tmp_path, spec, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_config({"results": "r", "benchmarks": {"tbd_aime24": spec}}, "pyproject.toml", tmp_path)


def test_max_accuracy_gap_is_a_criterion_of_its_own():
    assert Threshold("tbd_aime24", max_accuracy_gap=0.1).max_accuracy_gap == 0.1
    with pytest.raises(ConfigError, match="or max_accuracy_gap"):
        Threshold("tbd_aime24")


def test_model_mode_runs_the_ordinary_task_the_gate_needs(tmp_path):
    from pytest_contam.source import tasks_to_run

    cfg = parse_config({"model": "hf", "benchmarks": {
        "tbd_aime24": {"max_accuracy_gap": 0.2},
        "tbd_math500": {"score_cutoff": 0.3},  # no accuracy asked for: its ordinary task is not run
        "tbd_mine": {"score_cutoff": 0.3, "accuracy_task": "my_eval:exact_match"},
    }}, "pyproject.toml", tmp_path)
    assert tasks_to_run(cfg) == ["aime24", "my_eval", "tbd_aime24", "tbd_math500", "tbd_mine"]
