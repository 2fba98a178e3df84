"""pytest --contam, tested with pytester on results of real `lm_eval --log_samples` runs."""

import json
import subprocess
import sys
import textwrap

import pytest

from lm_eval_tbd.core.samples import load_run
from tests.helpers import offline_env


@pytest.fixture(scope="module")
def results(main_run):
    """(output dir, {task: sorted TBD scores}) of the shared tiny-model lm_eval run."""
    out, _ = main_run
    return out, {t: sorted(load_run(out, t).tbd_values().tolist()) for t in ("tbd_aime24", "tbd_aime25")}


def failures_section(result) -> str:
    """The FAILURES part of the output (with CI=true pytest repeats whole messages in the summary)."""
    return result.stdout.str().split("short test summary info")[0]


def write_config(pytester, body: str, results_dir=None) -> None:
    head = f'[tool.pytest_contam]\nresults = "{results_dir}"\n' if results_dir else "[tool.pytest_contam]\n"
    pytester.makefile(".toml", pyproject=head + textwrap.dedent(body))


def test_passing_gate_exits_0_with_one_summary(pytester, results):
    out, scores = results
    write_config(pytester, f"""
        [tool.pytest_contam.benchmarks.tbd_aime24]
        score_cutoff = {scores['tbd_aime24'][0] - 0.01}
        max_flagged_fraction = 0.0
        """, out)
    result = pytester.runpytest("--contam", "-v")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["*contamination gates: 1 configured (tbd_aime24)*", "*contam::tbd_aime24 PASSED*"])
    assert result.stdout.str().count("Contamination gates (TBD") == 1
    result.stdout.fnmatch_lines(["*tbd_aime24*4*TBD < *PASS*"])


def test_failing_gate_exits_1_with_threshold_value_and_questions(pytester, results):
    out, scores = results
    cutoff = round(scores["tbd_aime24"][-1] + 0.001, 4)
    write_config(pytester, f"""
        top = 2
        [tool.pytest_contam.benchmarks.tbd_aime24]
        score_cutoff = {cutoff}
        max_flagged_fraction = 0.5
        """, out)
    result = pytester.runpytest("--contam")
    assert result.ret == 1
    text = result.stdout.str()
    assert f"tbd_aime24: share of questions with TBD below score_cutoff {cutoff:g} is 100.0%, limit 50.0%" in text
    assert "most suspicious flagged questions:" in text
    lowest = f"score {scores['tbd_aime24'][0]:.4f}"
    assert lowest in text and failures_section(result).count("  score 0.") == 2  # top = 2 questions listed
    assert "FAIL" in text


@pytest.mark.parametrize(
    "body, message",
    [
        ("color = 1\n[tool.pytest_contam.benchmarks.tbd_aime24]\nscore_cutoff = 0.5\n", "unknown key(s) tool.pytest_contam.color"),
        ("[tool.pytest_contam.benchmarks.tbd_aime24]\nscore_cutof = 0.5\n", "unknown key tool.pytest_contam.benchmarks.tbd_aime24.score_cutof"),
        ("[tool.pytest_contam.benchmarks.tbd_aime24]\nscore_cutoff = \"low\"\n", "tool.pytest_contam.benchmarks.tbd_aime24.score_cutoff must be a number"),
        ("[tool.pytest_contam.benchmarks.tbd_aime24]\nscore_cutoff = 0.5\nmax_flagged_fraction = 1.5\n", "max_flagged_fraction must be in [0.0, 1.0), got 1.5"),
        ("[tool.pytest_contam.benchmarks.tbd_aime24]\nscore_cutoff = 0.0\n", "score_cutoff must be in (0.0, 1.0]"),
        ("[tool.pytest_contam.benchmarks.tbd_aime24]\nmax_flagged_fraction = 0.1\n", "max_flagged_fraction needs tool.pytest_contam.benchmarks.tbd_aime24.score_cutoff"),
        ("[tool.pytest_contam.benchmarks.tbd_aime24]\nscore_cutoff = 0.5\nmax_auc = 0.6\n", "max_auc needs tool.pytest_contam.benchmarks.tbd_aime24.reference"),
        ("[tool.pytest_contam.benchmarks.tbd_aime24]\nscore_cutoff = 0.5\nmax_flagged_fraction = 1.0\n", "max_flagged_fraction must be in [0.0, 1.0)"),
        ("[tool.pytest_contam.benchmarks.tbd_aime24]\nreference = \"tbd_aime25\"\n", "reference needs at least one of max_auc"),
        ("[tool.pytest_contam.benchmarks.tbd_aime24]\nreference = \"tbd_aime25\"\nmax_auc = 0.7\nscore = \"ppl\"\n", "score must be one of"),
        ("device = \"cpu\"\n[tool.pytest_contam.benchmarks.tbd_aime24]\nscore_cutoff = 0.5\n", "tool.pytest_contam.device has no effect with tool.pytest_contam.results"),
        ("top = \"five\"\n[tool.pytest_contam.benchmarks.tbd_aime24]\nscore_cutoff = 0.5\n", "tool.pytest_contam.top must be an integer"),
        ("[tool.pytest_contam.benchmarks]\n", "no benchmarks configured"),
    ],
)
def test_bad_config_is_a_usage_error_naming_the_key(pytester, results, body, message):
    write_config(pytester, body, results[0])
    result = pytester.runpytest("--contam")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert message in result.stderr.str()


def test_no_score_source_is_a_usage_error(pytester):
    write_config(pytester, "[tool.pytest_contam.benchmarks.tbd_aime24]\nscore_cutoff = 0.5\n")
    result = pytester.runpytest("--contam")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "give either 'results'" in result.stderr.str()


def test_missing_results_fail_never_pass(pytester, results):
    out, _ = results
    write_config(pytester, """
        [tool.pytest_contam.benchmarks.tbd_aime24]
        score_cutoff = 0.01
        [tool.pytest_contam.benchmarks.tbd_math500]
        score_cutoff = 0.01
        """, out)
    result = pytester.runpytest("--contam")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*tbd_math500: no usable results: no samples for task 'tbd_math500'*", "*MISSING*"])


def test_k_selection_junit_xml_and_json_report(pytester, results):
    out, scores = results
    write_config(pytester, f"""
        [tool.pytest_contam.benchmarks.tbd_aime24]
        score_cutoff = 0.01
        [tool.pytest_contam.benchmarks.tbd_aime25]
        score_cutoff = {scores['tbd_aime25'][-1] + 0.001}
        """, out)
    report = pytester.path / "reports" / "contam.json"
    result = pytester.runpytest("--contam", "-k", "aime24", "--junitxml=junit.xml", f"--contam-json={report}")
    result.assert_outcomes(passed=1, deselected=1)
    junit = (pytester.path / "junit.xml").read_text()
    assert 'name="tbd_aime24"' in junit and "tbd_aime25" not in junit
    data = json.loads(report.read_text())
    assert data["passed"] is True and list(data["benchmarks"]) == ["tbd_aime24"] and data["not_run"] == []
    gate = data["benchmarks"]["tbd_aime24"]
    assert gate["n"] == 4 and gate["n_flagged"] == 0 and gate["mean"] == pytest.approx(sum(scores["tbd_aime24"]) / 4)
    assert [p.name for p in report.parent.iterdir()] == ["contam.json"]  # no temporary file left behind

    result = pytester.runpytest("--contam", "-k", "aime25", f"--contam-json={report}")
    result.assert_outcomes(failed=1, deselected=1)
    failed = json.loads(report.read_text())
    assert failed["passed"] is False and failed["benchmarks"]["tbd_aime25"]["n_flagged"] == 4


def test_cli_results_option_overrides_and_standalone_config(pytester, results):
    out, _ = results
    cfg = pytester.makefile(".toml", gates='results = "/nonexistent"\n[benchmarks.tbd_aime25]\nscore_cutoff = 0.01\n')
    result = pytester.runpytest("--contam", f"--contam-config={cfg}", f"--contam-results={out}")
    result.assert_outcomes(passed=1)


def test_marker_and_fixture_for_hand_written_tests(pytester, results):
    out, scores = results
    write_config(pytester, "[tool.pytest_contam.benchmarks.tbd_aime24]\nscore_cutoff = 0.01\n", out)
    pytester.makepyfile(f"""
        import pytest

        @pytest.mark.contam("tbd_aime25")
        def test_median(contam):
            assert len(contam.questions) == 4
            assert sorted(contam.tbd_values()) == pytest.approx({scores['tbd_aime25']})

        def test_any_task(contam):
            assert contam.run("tbd_aime24").task == "tbd_aime24"
    """)
    result = pytester.runpytest("--contam")
    result.assert_outcomes(passed=3)
    # without --contam: no gates, and contamination tests are skipped, not failed
    result = pytester.runpytest()
    result.assert_outcomes(skipped=2)


def test_xdist_prints_one_summary(pytester, results):
    out, _ = results
    write_config(pytester, """
        [tool.pytest_contam.benchmarks.tbd_aime24]
        score_cutoff = 0.01
        [tool.pytest_contam.benchmarks.tbd_aime25]
        score_cutoff = 0.01
        """, out)
    result = pytester.runpytest_subprocess("--contam", "-n", "2", "--contam-json=r.json")
    result.assert_outcomes(passed=2)
    assert result.stdout.str().count("Contamination gates (TBD") == 1
    assert sorted(json.loads((pytester.path / "r.json").read_text())["benchmarks"]) == ["tbd_aime24", "tbd_aime25"]


def test_model_spec_runs_lm_eval_once_and_caches(pytester, tiny_model_dir, benchmark_data, monkeypatch):
    for key, value in offline_env().items():
        monkeypatch.setenv(key, value)
    write_config(pytester, f"""
        model = "hf"
        model_args = "pretrained={tiny_model_dir},dtype=float32"
        device = "cpu"
        data_dir = "{benchmark_data}"
        limit = 2
        metadata = {{tbd_max_tokens = 8}}
        output = "contam_cache"
        [tool.pytest_contam.benchmarks.tbd_aime24]
        score_cutoff = 0.01
        [tool.pytest_contam.benchmarks.tbd_aime25]
        score_cutoff = 0.01
        """)
    result = pytester.runpytest("--contam", "--contam-json=r.json")
    result.assert_outcomes(passed=2)
    (run_dir,) = (pytester.path / "contam_cache").iterdir()
    stamp = (run_dir / "DONE").stat().st_mtime_ns
    assert json.loads((pytester.path / "r.json").read_text())["benchmarks"]["tbd_aime24"]["n"] == 2
    result = pytester.runpytest("--contam")
    result.assert_outcomes(passed=2)
    assert (run_dir / "DONE").stat().st_mtime_ns == stamp  # cached: lm_eval did not run again


def test_plugin_import_is_cheap():
    code = "import sys, pytest_contam.plugin; assert not {'torch', 'lm_eval', 'transformers'} & set(sys.modules), sorted(sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_calibrated_gate_against_a_reference_task(pytester, results):
    out, _ = results
    write_config(pytester, """
        [tool.pytest_contam.benchmarks.tbd_aime24]
        reference = "tbd_aime25"
        max_auc = 0.01
        max_contaminated_fraction = 0.99
        min_generated_tokens = 0  # the tiny model often stops within its 20 tokens
        """, out)
    result = pytester.runpytest("--contam", "--contam-json=r.json")
    assert result.ret == 1
    text = result.stdout.str()
    assert "tbd_aime24: AUC against tbd_aime25 is" in text and "limit 0.010" in text
    assert "against reference tbd_aime25 (4 questions, score tbd): AUC" in text
    gate = json.loads((pytester.path / "r.json").read_text())["benchmarks"]["tbd_aime24"]
    assert [c["key"] for c in gate["checks"]] == ["auc", "contaminated"]
    assert gate["checks"][0]["passed"] is False and gate["checks"][0]["measured"] == gate["audit"]["auc"]
    fraction = gate["checks"][1]
    assert fraction["passed"] == (fraction["measured"] <= 0.99)
    assert 0.0 <= gate["audit"]["auc"] <= 1.0 and gate["audit"]["n_reference"] == 4


def test_failed_model_run_fails_every_gate_once(pytester, tmp_path, monkeypatch):
    for key, value in offline_env().items():
        monkeypatch.setenv(key, value)
    write_config(pytester, f"""
        model = "hf"
        model_args = "pretrained={tmp_path / 'no-such-model'}"
        device = "cpu"
        [tool.pytest_contam.benchmarks.tbd_aime24]
        score_cutoff = 0.01
        [tool.pytest_contam.benchmarks.tbd_aime25]
        score_cutoff = 0.01
        """)
    result = pytester.runpytest("--contam", "--contam-json=r.json")
    result.assert_outcomes(failed=2)
    assert failures_section(result).count("lm_eval failed with exit status") == 2
    report = json.loads((pytester.path / "r.json").read_text())
    assert report["passed"] is False and report["not_run"] == []
    assert all(b["error"] for b in report["benchmarks"].values())


def test_model_spec_runs_again_when_a_question_file_is_rewritten(pytester, tiny_model_dir, monkeypatch):
    # with tbd_data_file = "q.jsonl", rewriting q.jsonl passed on the cached run of the old questions
    for key, value in offline_env().items():
        monkeypatch.setenv(key, value)
    questions = pytester.path / "q.jsonl"
    questions.write_text("".join(json.dumps({"id": f"old{i}", "question": f"Old question {i}?"}) + "\n" for i in range(2)))
    write_config(pytester, f"""
        model = "hf"
        model_args = "pretrained={tiny_model_dir},dtype=float32"
        device = "cpu"
        metadata = {{tbd_max_tokens = 4, tbd_data_file = "q.jsonl"}}
        output = "contam_cache"
        [tool.pytest_contam.benchmarks.tbd_jsonl]
        score_cutoff = 0.01
        """)
    result = pytester.runpytest("--contam")
    result.assert_outcomes(passed=1)
    questions.write_text("".join(json.dumps({"id": f"new{i}", "question": f"New question {i}?"}) + "\n" for i in range(2)))
    result = pytester.runpytest("--contam")
    result.assert_outcomes(passed=1)
    runs = sorted((pytester.path / "contam_cache").iterdir())
    assert len(runs) == 2
    ids = {tuple(q.question_id for q in load_run(run, "tbd_jsonl").questions) for run in runs}
    assert ids == {("old0", "old1"), ("new0", "new1")}


def test_gate_runs_the_base_model_and_calibrates_against_it(pytester, tiny_model_dir, eos_model_dir, benchmark_data,
                                                          monkeypatch):
    # Model mode with base_model: the gate runs lm_eval on the student and on the base model (the
    # same tasks and options) and audits student minus base per question.
    import numpy as np

    from lm_eval_tbd.core.scores import decision_value
    from lm_eval_tbd.core.stats import audit

    for key, value in offline_env().items():
        monkeypatch.setenv(key, value)
    write_config(pytester, f"""
        model = "hf"
        model_args = "pretrained={tiny_model_dir},dtype=float32"
        base_model = "hf"
        base_model_args = "pretrained={eos_model_dir},dtype=float32"
        device = "cpu"
        batch_size = 6
        limit = 6
        data_dir = "{benchmark_data}"
        metadata = {{tbd_max_tokens = 12}}
        [tool.pytest_contam.benchmarks.tbd_aime24]
        reference = "tbd_aime25"
        max_auc = 0.99
        min_generated_tokens = 0
        """)
    result = pytester.runpytest("--contam", "--contam-json=r.json")
    gate = json.loads((pytester.path / "r.json").read_text())["benchmarks"]["tbd_aime24"]
    assert gate["error"] is None, gate["error"]
    assert gate["audit"]["method"] == "base-difference" and gate["audit"]["n_benchmark"] == 6
    runs = sorted((pytester.path / ".pytest_contam").glob("run-*"))
    assert len(runs) == 2  # the student's and the base model's, each cached under its own key
    loaded = [{t: load_run(d, t) for t in ("tbd_aime24", "tbd_aime25")} for d in runs]
    student, base = sorted(loaded, key=lambda r: "eos_model" in str(r["tbd_aime24"].samples_file))
    assert "eos_model" in str(base["tbd_aime24"].samples_file)

    def diff(task):
        by_id = {q.question_id: q.tbd for q in base[task].questions}
        return np.array([decision_value("tbd", q.tbd) - decision_value("tbd", by_id[q.question_id])
                         for q in student[task].questions])

    want = audit(diff("tbd_aime24"), diff("tbd_aime25"))
    assert gate["audit"]["auc"] == pytest.approx(want["auc"]) and gate["audit"]["p_value"] == pytest.approx(want["p_value"])
    assert result.ret == (0 if want["auc"] <= 0.99 else 1)
