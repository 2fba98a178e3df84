"""lm_eval_tbd.core.compat: the settings a run was made with (from lm-eval's results file beside
its samples) and the check that two runs share them. Files written here in lm-eval's layout."""

import json

import pytest

from lm_eval_tbd.core.compat import IncompatibleRunsError, check_compatible, run_settings
from lm_eval_tbd.core.runs import TaskRun
from lm_eval_tbd.core.scores import TBDParams
from tests.helpers.runs import make_run, write_results, write_samples

LATER = "2026-01-02T00-00-00.000000"


def _run(folder, task, *, stamp="2026-01-01T00-00-00.000000", metadata=None, **results):
    """A TaskRun whose samples file and results file are written under ``folder``."""
    write_results(folder, task, stamp=stamp, metadata=metadata, **results)
    path = write_samples(folder, task, make_run(n=4), stamp=stamp)
    return TaskRun(task, path, make_run(n=4).questions)


def test_settings_come_from_the_results_file_with_defaults_filled_in(tmp_path):
    run = _run(tmp_path, "tbd_aime24", metadata={"tbd_tau": "0.5", "tbd_max_tokens": 16.0, "pretrained": "org/model"})
    s = run_settings(run)
    assert s["model"] == "hf"
    assert s["model_args"] == {"pretrained": "org/model", "dtype": "float32"}  # the command line's string, parsed
    assert s["chat_template"] == "sha-of-{{ messages }}" and s["fewshot_as_multiturn"] is True
    # given values in one form (0.5, 16), defaults for the rest; lm-eval's own keys are not settings
    assert (s["tbd_tau"], s["tbd_alpha"], s["tbd_max_tokens"]) == (0.5, 0.6, 16)
    assert (s["tbd_decoding"], s["tbd_samples"], s["tbd_seed"], s["tbd_input_scores"]) == ("greedy", 1, 0, False)
    assert s["tbd_ref_model"] is None and "pretrained" not in s and "version" not in s
    assert s["timestamp"] == "2026-01-01T00-00-00.000000"


def test_a_default_written_out_equals_one_left_out(tmp_path):
    written = _run(tmp_path / "a", "t", metadata={"tbd_decoding": "greedy", "tbd_samples": 1, "tbd_seed": 0,
                                                  "tbd_input_scores": "false", "tbd_alpha": 0.6})
    left_out = _run(tmp_path / "b", "t", model_args={"pretrained": "org/model", "dtype": "float32"})
    check_compatible(written, left_out, role_a="benchmark", role_b="reference")  # no error


def test_a_chat_template_recorded_as_text_only_is_hashed(tmp_path):
    run = _run(tmp_path, "t", chat_template="T", chat_template_sha=None)
    assert run_settings(run)["chat_template"] == "e632b7095b0bf32c260fa4c539e9fd7b852d0de454e9be26f24d0d6f91d069d3"


def test_a_rescored_run_reports_the_parameters_its_scores_have(tmp_path):
    run = _run(tmp_path, "t", metadata={"tbd_max_tokens": 16})
    s = run_settings(run.rescore(TBDParams(tau=0.9, alpha=1.0, max_tokens=300)))
    # the records hold at most 16 tokens: 300 scores exactly what 16 does
    assert (s["tbd_tau"], s["tbd_alpha"], s["tbd_max_tokens"]) == (0.9, 1.0, 16)
    assert run_settings(run.rescore(TBDParams(max_tokens=5)))["tbd_max_tokens"] == 5


def test_runs_with_other_options_are_refused_naming_both_runs_and_values(tmp_path):
    bench = _run(tmp_path, "tbd_aime24", metadata={"tbd_tau": 0.5})
    ref = _run(tmp_path, "tbd_aime25", stamp=LATER)
    with pytest.raises(IncompatibleRunsError) as err:
        check_compatible(bench, ref, role_a="benchmark", role_b="reference")
    message = str(err.value)
    assert f"benchmark tbd_aime24 ({bench.samples_file}, run 2026-01-01T00-00-00.000000)" in message
    assert f"reference tbd_aime25 ({ref.samples_file}, run {LATER})" in message
    assert "tbd_tau: 0.5 (benchmark) vs 1.0 (reference)" in message
    assert "timestamp" not in message.split("settings")[-1]  # when each was made is not a setting
    # re-scored alike, they compare
    check_compatible(bench.rescore(TBDParams()), ref.rescore(TBDParams()), role_a="benchmark", role_b="reference")


@pytest.mark.parametrize("change, setting", [
    ({"model_args": "pretrained=org/other,dtype=float32"}, "model_args"),
    ({"model": "vllm"}, "model"),
    ({"chat_template": None}, "chat_template"),
    ({"metadata": {"tbd_decoding": "sample", "tbd_seed": 3}}, "tbd_decoding"),
    ({"metadata": {"tbd_ref_model": "/base"}}, "tbd_ref_model"),
])
def test_model_decoding_and_template_must_match(tmp_path, change, setting):
    a = _run(tmp_path / "a", "t")
    b = _run(tmp_path / "b", "t", **change)
    with pytest.raises(IncompatibleRunsError, match=f"  {setting}: "):
        check_compatible(a, b, role_a="benchmark", role_b="reference")


def test_the_question_file_is_not_a_setting(tmp_path):
    a = _run(tmp_path / "a", "t", metadata={"tbd_data_file": "/q/members.jsonl"})
    b = _run(tmp_path / "b", "t", metadata={"tbd_data_file": "/q/heldout.jsonl"})
    check_compatible(a, b, role_a="members", role_b="held-out")


def test_another_model_may_differ_in_its_arguments_and_template_text_only(tmp_path):
    student = _run(tmp_path / "s", "t", model_args="pretrained=./student", chat_template="A")
    base = _run(tmp_path / "b", "t", model_args="pretrained=./base", chat_template="B")
    with pytest.raises(IncompatibleRunsError, match="model_args"):
        check_compatible(student, base, role_a="student", role_b="base")
    check_compatible(student, base, role_a="student", role_b="base", same_model=False)
    untemplated = _run(tmp_path / "u", "t", model_args="pretrained=./base", chat_template=None)
    with pytest.raises(IncompatibleRunsError, match="chat template applied: True \\(student\\) vs False \\(base\\)"):
        check_compatible(student, untemplated, role_a="student", role_b="base", same_model=False)
    tau = _run(tmp_path / "x", "t", model_args="pretrained=./base", chat_template="B", metadata={"tbd_tau": 0.9})
    with pytest.raises(IncompatibleRunsError, match="tbd_tau: 1.0 \\(student\\) vs 0.9 \\(base\\)"):
        check_compatible(student, tau, role_a="student", role_b="base", same_model=False)
    check_compatible(student, tau, role_a="student", role_b="base", same_model=False, ignore=("tbd_tau",))


def test_unknown_settings_are_an_error_naming_the_file(tmp_path):
    run = _run(tmp_path, "t")
    run.samples_file.with_name("results_2026-01-01T00-00-00.000000.json").unlink()
    other = _run(tmp_path / "o", "t")
    with pytest.raises(IncompatibleRunsError, match="results_2026-01-01T00-00-00.000000.json .*: not found"):
        check_compatible(run, other, role_a="benchmark", role_b="reference")
    (tmp_path / "results_2026-01-01T00-00-00.000000.json").write_text(json.dumps({"configs": {"other": {}}}))
    with pytest.raises(ValueError, match="no configuration of task 't'"):
        run_settings(run)
    with pytest.raises(ValueError, match="no samples file"):
        run_settings(TaskRun("t", None, run.questions))
