"""pytest --contam (the pytest_contam plugin) on small synthetic result folders: no model run and
no benchmark data files, so these run in seconds (the end-to-end tests on a real lm_eval run are in
tests/integration/test_pytest_contam_gate.py). Also the gate with the combined detector's score."""

import json
import textwrap

import pytest

import lm_eval_tbd.app.report  # noqa: F401 - see below
from lm_eval_tbd.core.combine import fit_combined
from lm_eval_tbd.core.record import GenerationRecord
from lm_eval_tbd.core.runs import TaskRun
from tests.helpers.runs import make_run
from tests.helpers.runs import write_results as write_run_results

# In-process pytester runs drop the modules first imported inside them, and numpy cannot be
# imported twice in one process: the gates' modules (numpy, scipy, rich) are loaded here first.

RECORD = GenerationRecord(token_ids=[1], logprobs=[-0.5], finish_reason="length").to_json()


def write_results(root, task: str, scores) -> None:
    """An lm_eval --log_samples output folder holding ``task`` with these per-question TBD scores,
    and the run's results file (the settings an audit checks). Question texts follow one template
    for every task, so the text-only diagnostic sees no shift between tasks."""
    folder = root / "results" / "model"
    folder.mkdir(parents=True, exist_ok=True)
    write_run_results(folder, task)
    lines = [json.dumps({"doc_id": i, "doc": {"question": f"question {i}", "id": f"{task}-{i}"},
                         "resps": [[RECORD]], "tbd": score}) for i, score in enumerate(scores)]
    (folder / f"samples_{task}_2026-01-01T00-00-00.000000.jsonl").write_text("\n".join(lines) + "\n")


def write_config(pytester, body: str) -> None:
    """pyproject.toml with a [tool.pytest_contam] table reading the folder of write_results."""
    pytester.makefile(".toml", pyproject='[tool.pytest_contam]\nresults = "results"\n' + textwrap.dedent(body))


@pytest.fixture
def two_tasks(pytester):
    """Results of tbd_a (TBD 0.5-0.8) and tbd_b (0.2-0.5) and a config that passes tbd_a and
    fails tbd_b."""
    write_results(pytester.path, "tbd_a", [0.5, 0.6, 0.7, 0.8])
    write_results(pytester.path, "tbd_b", [0.2, 0.3, 0.4, 0.5])
    write_config(pytester, """
        [tool.pytest_contam.benchmarks.tbd_a]
        score_cutoff = 0.45
        [tool.pytest_contam.benchmarks.tbd_b]
        score_cutoff = 0.45
        """)


def read_json(pytester, name="r.json") -> dict:
    return json.loads((pytester.path / name).read_text())


# ---- pytest-xdist: the controller writes the JSON from its workers' reports ----------------


def test_xdist_json_reflects_the_workers_gates(pytester, two_tasks):
    result = pytester.runpytest_subprocess("--contam", "-n", "2", "-k", "tbd_a", "--contam-json=r.json")
    result.assert_outcomes(passed=1)  # (the xdist controller does not count deselected items)
    report = read_json(pytester)
    assert report["passed"] is True and report["not_run"] == [] and list(report["benchmarks"]) == ["tbd_a"]


# ---- hand-written contam checks count in the JSON --------------------------------------


HAND_WRITTEN = """
    import pytest

    @pytest.mark.contam("tbd_a")
    def test_passes(contam):
        assert len(contam.questions) == 4

    @pytest.mark.contam("tbd_a")
    def test_fails(contam):
        assert min(contam.tbd_values()) > 0.55

    @pytest.mark.contam("tbd_missing")
    def test_errors(contam):
        pass

    @pytest.mark.contam("tbd_a")
    def test_skips(contam):
        pytest.skip("not applicable")

    def test_ordinary():
        assert False  # not a contamination check: the JSON ignores it
"""


def test_json_counts_hand_written_checks(pytester, two_tasks):
    pytester.makepyfile(test_checks=HAND_WRITTEN)
    result = pytester.runpytest("--contam", "-k", "not tbd_b", "--contam-json=r.json")
    result.assert_outcomes(passed=2, failed=2, errors=1, skipped=1, deselected=1)
    report = read_json(pytester)
    assert report["passed"] is False and report["not_run"] == []
    assert {n.split("::")[1]: c["outcome"] for n, c in report["checks"].items()} == {
        "test_passes": "passed", "test_fails": "failed", "test_errors": "error", "test_skips": "skipped"}
    assert report["checks"]["test_checks.py::test_errors"]["benchmark"] == "tbd_missing"

    result = pytester.runpytest("--contam", "-k", "tbd_a or test_passes", "--contam-json=r.json")
    result.assert_outcomes(passed=2, deselected=5)
    assert read_json(pytester)["passed"] is True

    # Only a hand-written check selected: it decides alone.
    result = pytester.runpytest("--contam", "-k", "test_fails", "--contam-json=r.json")
    result.assert_outcomes(failed=1, deselected=6)
    assert read_json(pytester)["passed"] is False


def test_xdist_json_fails_on_a_failing_gate_or_check(pytester, two_tasks):
    pytester.makepyfile(test_checks="""
        import pytest

        @pytest.mark.contam("tbd_a")
        def test_low_scores(contam):
            assert min(contam.tbd_values()) > 0.55
    """)
    result = pytester.runpytest_subprocess("--contam", "-n", "2", "-k", "tbd_a or low", "--contam-json=r.json")
    result.assert_outcomes(passed=1, failed=1)
    report = read_json(pytester)
    assert report["passed"] is False and report["benchmarks"]["tbd_a"]["passed"] is True
    assert report["checks"] == {"test_checks.py::test_low_scores": {"benchmark": "tbd_a", "outcome": "failed"}}


def test_json_lists_checks_an_interrupted_run_never_ran(pytester, two_tasks):
    pytester.makepyfile(test_checks="""
        import pytest

        def test_first():
            assert False

        @pytest.mark.contam("tbd_a")
        def test_never_reached(contam):
            pass
    """)
    result = pytester.runpytest("--contam", "-x", "-k", "not tbd_b", "--contam-json=r.json")
    result.assert_outcomes(failed=1, deselected=1)
    report = read_json(pytester)
    assert report["passed"] is False
    assert report["not_run"] == ["tbd_a", "test_checks.py::test_never_reached"]


# ---- --contam-json: no stale file, and a directory is a usage error -----------------------


def test_usage_error_removes_the_previous_json(pytester, two_tasks):
    stale = pytester.path / "r.json"
    stale.write_text('{"passed": true}\n')
    write_config(pytester, "color = 1\n[tool.pytest_contam.benchmarks.tbd_a]\nscore_cutoff = 0.45\n")
    result = pytester.runpytest("--contam", "--contam-json=r.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert not stale.exists()


def test_conftest_import_error_removes_the_previous_json(pytester, two_tasks):
    stale = pytester.path / "r.json"
    stale.write_text('{"passed": true}\n')
    pytester.makeconftest("raise ImportError('broken conftest')")
    result = pytester.runpytest("--contam", "--contam-json=r.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert not stale.exists()


def test_json_path_that_is_a_directory_is_a_usage_error(pytester, two_tasks):
    (pytester.path / "reports").mkdir()
    result = pytester.runpytest("--contam", "--contam-json=reports")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--contam-json reports: is a directory" in result.stderr.str()
    assert "contam::" not in result.stdout.str()  # refused before any gate ran
    assert "Traceback" not in result.stdout.str() + result.stderr.str()

    (pytester.path / "afile").write_text("")
    result = pytester.runpytest("--contam", "--contam-json=afile/r.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--contam-json afile/r.json:" in result.stderr.str() and "is a file, not a directory" in result.stderr.str()


# ---- expected errors fail the gate with the reason; bugs surface with their traceback --------


def test_programming_error_in_a_gate_is_a_test_error_with_traceback(pytester, two_tasks, monkeypatch):
    def buggy_evaluate(*args, **kwargs):
        raise TypeError("unsupported operand in the gate")

    monkeypatch.setattr("pytest_contam.plugin.evaluate", buggy_evaluate)
    result = pytester.runpytest("--contam", "-k", "tbd_a", "--contam-json=r.json")
    result.assert_outcomes(failed=1, deselected=1)
    text = result.stdout.str()
    assert "no usable results" not in text
    result.stdout.fnmatch_lines(["*def runtest(self)*", "*def buggy_evaluate*",
                                 "E*TypeError: unsupported operand in the gate"])
    failures = text.split("FAILURES")[1]
    assert "_pytest/runner.py" not in failures and "pluggy" not in failures  # starts at the gate's code
    report = read_json(pytester)
    assert report["passed"] is False and report["not_run"] == ["tbd_a"]


def test_undefined_statistic_is_a_failed_gate_with_the_reason(pytester):
    write_results(pytester.path, "tbd_a", [0.5, 0.6, 0.7, 0.8])
    write_results(pytester.path, "tbd_ref", [0.5])  # audit mode needs 2 reference questions
    write_config(pytester, """
        [tool.pytest_contam.benchmarks.tbd_a]
        reference = "tbd_ref"
        max_auc = 0.9
        """)
    result = pytester.runpytest("--contam")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*tbd_a: no usable results: audit mode needs at least 2 benchmark and 2 reference*"])


@pytest.mark.parametrize("body, message", [
    ("[tool.pytest_contam.benchmarks.tbd_a]\n",
     "tool.pytest_contam.benchmarks.tbd_a needs score_cutoff"),
    ("[tool.pytest_contam.benchmarks.tbd_a]\nscore = \"tbd\"\n",
     "tool.pytest_contam.benchmarks.tbd_a needs score_cutoff"),
    ("[tool.pytest_contam.benchmarks.tbd_a]\nreference = \"\"\nmax_auc = 0.6\n",
     "tool.pytest_contam.benchmarks.tbd_a.reference must name a task"),
])
def test_threshold_without_a_criterion_is_a_usage_error(pytester, body, message):
    write_config(pytester, body)
    result = pytester.runpytest("--contam")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert message in result.stderr.str()


def test_threshold_without_a_criterion_cannot_be_built():
    from pytest_contam.config import ConfigError, Threshold

    with pytest.raises(ConfigError, match="benchmark 'tbd_a' needs score_cutoff or reference"):
        Threshold("tbd_a")
    with pytest.raises(ConfigError, match="benchmark 'tbd_a' needs"):
        Threshold("tbd_a", reference="tbd_ref")  # no calibrated criterion: could never fail


# ---- what the sample sizes allow, said in the failure text ------------------------------


def test_failure_text_explains_zero_flags_and_a_collapsed_interval(pytester):
    # 48 clean reference questions; 30 benchmark questions just below them (more seen-like), but
    # none below all of them: every p-value <= 0.5 (estimated share 100% in every resample), and
    # none small enough for Benjamini-Hochberg.
    write_results(pytester.path, "tbd_ref", [0.50 + 0.01 * i for i in range(48)])
    write_results(pytester.path, "tbd_a", [0.505 + 0.05 * i / 29 for i in range(30)])
    write_config(pytester, """
        [tool.pytest_contam.benchmarks.tbd_a]
        reference = "tbd_ref"
        max_contaminated_fraction = 0.5
        """)
    result = pytester.runpytest("--contam", "--contam-json=r.json")
    result.assert_outcomes(failed=1)
    text = " ".join(result.stdout.str().split())  # the terminal may wrap long lines
    assert "contaminated fraction 100.0%, 0 flagged at FDR 0.05" in text
    assert ("bootstrap interval of the contaminated fraction: [100.0%, 100.0%], a single point: at least 95% of "
            "resamples gave the same estimate") in text
    assert ("0 flagged: with 48 reference questions the smallest possible empirical p-value is 1/49 = 0.0204 "
            "(a question above every reference question), so Benjamini-Hochberg at FDR 0.05 over 30 questions flags "
            "none or at least 13 together (the k-th smallest p-value must be <= k * 0.05 / 30)") in text
    assert "a single standout question needs at least 599 reference questions" in text
    audit = read_json(pytester)["benchmarks"]["tbd_a"]["audit"]
    assert audit["bh_min_flaggable"] == 13 and audit["min_p_value"] == pytest.approx(1 / 49)


def test_failure_text_when_no_question_can_be_flagged(pytester):
    write_results(pytester.path, "tbd_ref", [0.6, 0.7, 0.8, 0.9])
    write_results(pytester.path, "tbd_a", [0.1, 0.2, 0.3, 0.4])
    write_config(pytester, """
        [tool.pytest_contam.benchmarks.tbd_a]
        reference = "tbd_ref"
        max_auc = 0.6
        """)
    result = pytester.runpytest("--contam")
    result.assert_outcomes(failed=1)
    text = " ".join(result.stdout.str().split())
    assert ("0 flagged: with 4 reference questions the smallest possible empirical p-value is 1/5 = 0.2 (a question "
            "above every reference question), above the FDR 0.05, so Benjamini-Hochberg cannot flag any question; "
            "that needs at least 19 reference questions") in text


# ---- the combined detector's score in a gate ----


def _write_task(folder, task, run, prefix):
    import json

    folder.mkdir(parents=True, exist_ok=True)
    write_run_results(folder, task)
    lines = [json.dumps({"doc_id": q.doc_id, "doc": {"id": q.question_id, "question": prefix + q.question},
                         "resps": [[q.record.to_json()]], **q.scores}) for q in run.questions]
    (folder / f"samples_{task}_2026-01-01T00-00-00.000000.jsonl").write_text("\n".join(lines) + "\n")


def test_gate_with_the_combined_score(pytester, tmp_path):
    """pytest --contam with score = "combined": members fail against unseen questions as reference."""
    from dataclasses import replace as dc_replace

    model = fit_combined([make_run()], n_resamples=100)
    model.save(pytester.path / "model.json")
    run = make_run(seed=9)
    members = TaskRun("m", None, tuple(q for q in run.questions if q.label == 1))
    unseen = TaskRun("u", None, tuple(dc_replace(q, label=None) for q in run.questions if q.label == 0))
    _write_task(pytester.path / "res" / "model", "bench", members, "bench ")
    _write_task(pytester.path / "res" / "model", "clean", unseen, "clean ")
    pytester.makefile(".toml", pyproject="""
        [tool.pytest_contam]
        results = "res"
        [tool.pytest_contam.benchmarks.bench]
        reference = "clean"
        score = "combined"
        combined_model = "model.json"
        max_auc = 0.75
        """)
    result = pytester.runpytest("--contam", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*contam::bench*"])
    assert "AUC against clean" in result.stdout.str()


@pytest.mark.parametrize(("body", "message"), [
    ('score = "combined"\nmax_auc = 0.7\nreference = "clean"\n', 'needs tool.pytest_contam.benchmarks.bench.combined_model'),
    ('combined_model = "m.json"\nmax_auc = 0.7\nreference = "clean"\n', 'combined_model needs'),
    ('score = "combined"\ncombined_model = "m.json"\nscore_cutoff = 0.2\n', "is compared against a reference task"),
])
def test_gate_combined_config_errors(tmp_path, body, message):
    import tomllib

    from pytest_contam.config import ConfigError, parse_config

    table = tomllib.loads('results = "r"\n[benchmarks.bench]\n' + body)
    with pytest.raises(ConfigError, match=message):
        parse_config(table, "t.toml", tmp_path, where="tool.pytest_contam.")


@pytest.mark.parametrize("argv", [["--contam-top", "abc"], ["--contam-top=1.5"], ["--contam-model-args"]])
def test_an_option_pytest_refuses_removes_the_previous_json(pytester, two_tasks, argv):
    # pytest --contam --contam-top abc --contam-json contam.json exited 4 and left {"passed": true}
    stale = pytester.path / "contam.json"
    stale.write_text('{"passed": true}\n')
    result = pytester.runpytest("--contam", "--contam-json", "contam.json", *argv)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert not stale.exists()


def test_a_config_that_is_not_utf8_is_a_usage_error_naming_it(pytester, two_tasks):
    # a UTF-16 --contam-config gave INTERNALERROR> UnicodeDecodeError and exit status 3
    path = pytester.path / "contam.toml"
    path.write_bytes('results = "results"\n[benchmarks.tbd_a]\nscore_cutoff = 0.45\n'.encode("utf-16"))
    result = pytester.runpytest("--contam", "--contam-config", str(path))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert f"pytest-contam: {path}:1: not valid UTF-8 (byte 0xff at column 1" in result.stderr.str()
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()


def test_a_config_that_is_a_directory_is_a_usage_error_naming_it(pytester, two_tasks):
    # it said "contamination config not found"
    (pytester.path / "cdir").mkdir()
    result = pytester.runpytest("--contam", "--contam-config", "cdir")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "pytest-contam: --contam-config cdir: is a directory; give the TOML file" in result.stderr.str()
