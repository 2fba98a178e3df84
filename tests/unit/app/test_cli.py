"""lm_eval_tbd.app.cli: `lm-eval-tbd score` on generations logged outside lm-eval (figures, JSON,
error messages naming file and line), the options it shares with `report`, and `combine fit`
followed by `report --combined`. The report command itself is tested in test_reporting.py."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from lm_eval_tbd.app.cli import main
from lm_eval_tbd.core.logs import load_logged_generations
from lm_eval_tbd.core.openai_format import MissingLogprobsError, record_from_chat_choice
from lm_eval_tbd.core.record import GenerationRecord
from tests.helpers.openai_responses import LN, WORKED
from tests.helpers.openai_responses import chat_choice as _chat
from tests.helpers.openai_responses import write_jsonl as _write
from tests.helpers.runs import make_run, write_results, write_samples


def test_score_cli_writes_figures(tmp_path, capsys):
    lines = [{"id": f"m{i}", "label": 1, "logprobs": [LN(0.99)] * 5} for i in range(4)]
    lines += [{"id": f"n{i}", "label": 0, "logprobs": [LN(0.6)] * 5} for i in range(4)]
    path = _write(tmp_path / "gen.jsonl", lines)
    assert main(["score", str(path), "--json", str(tmp_path / "out.json"), "--max-tokens", "3"]) == 0
    assert "lower = more likely seen" in capsys.readouterr().out
    out = json.loads((tmp_path / "out.json").read_text())
    assert out["params"] == {"tau": 1.0, "alpha": 0.6, "max_tokens": 3}
    assert out["summary"]["auc"] == 1.0 and out["summary"]["n"] == 8
    assert out["questions"][0]["tbd"] == pytest.approx(0.01 ** 0.6)
    assert out["scores"]["tbd"]["auc"] == 1.0


def test_score_cli_reports_errors(tmp_path, capsys):
    assert main(["score", str(tmp_path / "missing.jsonl")]) == 2
    assert "not found" in capsys.readouterr().err


# ---- regressions: values that are not log-probabilities, files that are not UTF-8 ----


def test_json_booleans_are_not_log_probabilities(tmp_path, capsys):
    # printf '{"id":"a","logprobs":[false,false,false]}\n' > b.jsonl; lm-eval-tbd score b.jsonl
    path = tmp_path / "b.jsonl"
    path.write_text('{"id":"a","logprobs":[false,false,false]}\n')
    assert main(["score", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:1:" in err and "position(s) [0, 1, 2]" in err and "False" in err
    with pytest.raises(ValueError, match="non-numeric"):
        GenerationRecord(token_ids=[1], logprobs=[True], finish_reason="eos")
    with pytest.raises(ValueError, match="ref_logprobs"):
        GenerationRecord(token_ids=[1], logprobs=[-0.1], ref_logprobs=[False], finish_reason="eos")
    with pytest.raises(MissingLogprobsError, match="token 1"):
        record_from_chat_choice(_chat([-0.1, False], tops=[-0.1, False]))


def test_positive_log_probability_names_file_and_line(tmp_path, capsys):
    path = _write(tmp_path / "p.jsonl", [{"id": "a", "logprobs": WORKED}, {"id": "b", "logprobs": [-0.1, 0.5]}])
    assert main(["score", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:2:" in err and "log-probability > 0 at token position(s) [1]" in err


def test_non_utf8_file_names_the_line_and_byte(tmp_path, capsys):
    path = tmp_path / "u.jsonl"
    good = b'{"id":"a","logprobs":[-0.5]}\n'
    path.write_bytes(good + good.replace(b'"a"', b'"b"') + b'{"id":"c\xff","logprobs":[-0.5]}\n')
    assert main(["score", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:3: not valid UTF-8 (byte 0xff at column 9, byte offset {2 * len(good) + 8} of the file)" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("argv", [["--alpha", "inf"], ["--alpha", "nan"], ["--tau", "inf"], ["--alpha=-inf"]])
@pytest.mark.parametrize("command", ["score", "report"])
def test_non_finite_parameters_are_refused_naming_the_option(tmp_path, capsys, command, argv):
    # lm-eval-tbd score g.jsonl --alpha inf gave TBD 0 for every question and exit status 0
    path = _write(tmp_path / "g.jsonl", [{"id": "a", "logprobs": WORKED}])
    target = str(path) if command == "score" else str(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        main([command, target, *argv])
    assert exit_.value.code == 2
    assert f"argument {argv[0].split('=')[0]}: must be a finite number" in capsys.readouterr().err


def test_out_of_range_parameter_names_the_option(tmp_path, capsys):
    path = _write(tmp_path / "g.jsonl", [{"id": "a", "logprobs": WORKED}])
    assert main(["score", str(path), "--tau", "1.5"]) == 2
    assert "lm-eval-tbd: error: --tau 1.5: tbd_tau must be" in capsys.readouterr().err


def test_duplicate_ids_in_the_question_file_are_refused(tmp_path, capsys):
    # the --questions join used to keep the last of two rows with one id
    questions = _write(tmp_path / "q.jsonl", [{"id": "a", "question": "A?", "label": 1},
                                             {"id": "a", "question": "A?", "label": 0}])
    path = _write(tmp_path / "gen.jsonl", [{"id": "a", "logprobs": WORKED}])
    assert main(["score", str(path), "--questions", str(questions)]) == 2
    assert f"{questions}:2: id 'a' is also the id of line 1" in capsys.readouterr().err


def test_labels_contradicting_the_question_file_are_an_error(tmp_path, capsys):
    questions = _write(tmp_path / "q.jsonl", [{"id": "a", "question": "A?", "label": 1},
                                             {"id": "b", "question": "B?", "label": 0}])
    path = _write(tmp_path / "gen.jsonl", [{"id": "a", "label": 1, "logprobs": WORKED},
                                           {"id": "b", "label": 1, "logprobs": [LN(0.5)]}])
    assert main(["score", str(path), "--questions", str(questions)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:2: id 'b' has label 1, but {questions}:2 gives it label 0" in err
    # agreeing labels, or a label on one side only, join as before
    unlabelled = _write(tmp_path / "q0.jsonl", [{"id": "a", "question": "A?"}, {"id": "b", "question": "B?"}])
    run = load_logged_generations(path, questions=unlabelled)
    assert [q.label for q in run.questions] == [1, 1] and run.questions[0].question == "A?"
    agreeing = _write(tmp_path / "gen2.jsonl", [{"id": "a", "label": 1, "logprobs": WORKED},
                                                {"id": "b", "logprobs": [LN(0.5)]}])
    assert [q.label for q in load_logged_generations(agreeing, questions=questions).questions] == [1, 0]


def test_score_with_a_single_member_reports_what_is_defined(tmp_path, capsys):
    lines = [{"id": "m", "label": 1, "logprobs": [LN(0.99)] * 3}]
    lines += [{"id": f"n{i}", "label": 0, "logprobs": [LN(0.6 - 0.1 * i)] * 3} for i in range(3)]
    path = _write(tmp_path / "one.jsonl", lines)
    assert main(["score", str(path), "--json", str(tmp_path / "out.json")]) == 0
    out = capsys.readouterr().out
    assert "No confidence intervals" in out and "got 1 and 3" in out
    figures = json.loads((tmp_path / "out.json").read_text())
    assert figures["summary"]["auc"] == 1.0 and figures["scores"]["tbd"]["auc_ci"] is None
    assert "at least 2 members" in figures["scores"]["tbd"]["ci_undefined"]


def test_score_json_with_minus_infinity_is_strict_json(tmp_path):
    # "Out of range float values are not JSON compliant" at the very end of the run
    path = tmp_path / "i.jsonl"
    path.write_text('{"id":"a","label":1,"logprobs":[-Infinity,-0.1]}\n{"id":"b","label":0,"logprobs":[-0.5]}\n'
                    '{"id":"c","label":0,"logprobs":[-0.9]}\n{"id":"d","label":1,"logprobs":[-0.01]}\n')
    out = tmp_path / "out.json"
    assert main(["score", str(path), "--json", str(out)]) == 0
    text = out.read_text()
    figures = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))
    a = figures["questions"][0]
    assert a["gen_mean_logprob"] == "-Infinity" and float(a["gen_mean_logprob"]) == -math.inf
    assert a["tbd"] == pytest.approx((1 + (1 - math.exp(-0.1)) ** 0.6) / 2)
    assert figures["scores"]["gen_mean_logprob"]["auc"] == 0.5  # -inf ranks lowest


@pytest.mark.parametrize("command", ["score", "report"])
def test_negative_top_is_refused(tmp_path, capsys, command):
    path = _write(tmp_path / "g.jsonl", [{"id": "a", "logprobs": WORKED}])
    with pytest.raises(SystemExit) as exit_:
        main([command, str(path) if command == "score" else str(tmp_path), "--top", "-1"])
    assert exit_.value.code == 2
    assert "argument --top: must be an integer >= 0" in capsys.readouterr().err


def test_top_zero_lists_no_questions(tmp_path, capsys):
    path = _write(tmp_path / "g.jsonl", [{"id": "a", "logprobs": WORKED}])
    assert main(["score", str(path), "--top", "0"]) == 0
    out = capsys.readouterr().out
    assert "Most suspicious" not in out and "TBD distribution" in out


# ---- the combined detector: combine fit, then report --combined ----


def test_cli_fit_then_report_with_the_combined_score(tmp_path):
    """combine fit on a labelled lm-eval-style folder, then report --combined --json."""
    import json
    import subprocess
    import sys

    from tests.helpers import offline_env

    out = tmp_path / "out" / "model"
    write_results(out, "calib")
    write_samples(out, "calib", make_run())
    cli = [sys.executable, "-m", "lm_eval_tbd"]
    fit = subprocess.run(cli + ["combine", "fit", str(tmp_path / "out"), "--out", str(tmp_path / "m.json")],
                         capture_output=True, text=True, env=offline_env())
    assert fit.returncode == 0, fit.stderr
    assert "out of fold (5-fold): AUC" in fit.stdout
    # another labelled set (other question texts) gets the combined score in the report
    other = tmp_path / "other" / "model"
    write_results(other, "bench")
    write_samples(other, "bench", make_run(seed=7), questions="other {}")
    rep = subprocess.run(cli + ["report", str(tmp_path / "other"), "--combined", str(tmp_path / "m.json"),
                                "--json", str(tmp_path / "o.json")], capture_output=True, text=True, env=offline_env())
    assert rep.returncode == 0, rep.stderr
    scores = json.loads((tmp_path / "o.json").read_text())["tasks"]["bench"]["scores"]
    assert "combined" in scores and 0.5 < scores["combined"]["auc"] <= 1.0
    # the calibration questions themselves get no combined score: their figures would be in-sample
    rep = subprocess.run(cli + ["report", str(tmp_path / "out"), "--combined", str(tmp_path / "m.json"),
                                "--json", str(tmp_path / "r.json")], capture_output=True, text=True, env=offline_env())
    assert rep.returncode == 0, rep.stderr
    assert "were used to fit the combined model" in " ".join(rep.stdout.split())
    assert "combined" not in json.loads((tmp_path / "r.json").read_text())["tasks"]["calib"]["scores"]
    bad = subprocess.run(cli + ["report", str(tmp_path / "out"), "--combined", str(tmp_path / "nope.json")],
                         capture_output=True, text=True, env=offline_env())
    assert bad.returncode == 2 and "nope.json" in bad.stderr


def _labelled(root, task, *, stamp="2026-01-01T00-00-00.000000", seed=0, prefix="{}", **metadata):
    """A labelled lm-eval-style run of ``task`` (make_run's questions) under ``root/model``."""
    write_results(root / "model", task, stamp=stamp, metadata=metadata)
    write_samples(root / "model", task, make_run(seed=seed), stamp=stamp, questions=prefix)
    return root


def test_combine_fit_refuses_runs_made_with_other_options(tmp_path, capsys):
    _labelled(tmp_path / "a", "calib")
    _labelled(tmp_path / "b", "calib2", seed=3, prefix="b {}", tbd_tau=0.5)
    assert main(["combine", "fit", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "m.json")]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "calibration run 1 calib" in err and "calibration run 2 calib2" in err
    assert "tbd_tau: 1.0 (calibration run 1) vs 0.5 (calibration run 2)" in err
    assert not (tmp_path / "m.json").exists()


def test_combine_fit_warns_about_a_question_given_twice(tmp_path, capsys):
    _labelled(tmp_path / "a", "calib")
    assert main(["combine", "fit", str(tmp_path / "a"), str(tmp_path / "a"), "--out", str(tmp_path / "m.json")]) == 0
    assert "lm-eval-tbd: warning: fit_combined: 40 question(s) appear more than once" in capsys.readouterr().err


def test_the_combined_model_records_its_options_and_refuses_runs_scored_otherwise(tmp_path, capsys):
    # applying a model to features re-scored with another tau went unnoticed
    _labelled(tmp_path / "calib", "calib")
    _labelled(tmp_path / "bench", "bench", seed=7, prefix="other {}")
    _labelled(tmp_path / "tau", "bench", seed=7, prefix="other {}", tbd_tau=0.9)
    model = tmp_path / "m.json"
    assert main(["combine", "fit", str(tmp_path / "calib"), "--out", str(model)]) == 0
    options = json.loads(model.read_text())["tbd_options"]
    assert options["tbd_tau"] == 1.0 and options["tbd_max_tokens"] == 300 and options["model"] == "hf"
    assert options["fitted_on"][0].startswith("calib (")
    capsys.readouterr()
    assert main(["report", str(tmp_path / "bench"), "--combined", str(model)]) == 0
    for argv in ([str(tmp_path / "tau")], [str(tmp_path / "bench"), "--tau", "0.9"]):
        assert main(["report", *argv, "--combined", str(model)]) == 2
        err = " ".join(capsys.readouterr().err.split())
        assert f"the combined model {model}" in err and "tbd_tau: 1.0 (combined model) vs 0.9 (bench)" in err


def test_audit_score_combined_gives_a_verdict(tmp_path, capsys):
    # it always said: score = "combined" and combined_model ... go together
    from dataclasses import replace

    from lm_eval_tbd.core.runs import TaskRun

    _labelled(tmp_path / "calib", "calib")
    model = tmp_path / "m.json"
    assert main(["combine", "fit", str(tmp_path / "calib"), "--out", str(model)]) == 0
    run = make_run(seed=9)
    out = tmp_path / "bench" / "model"
    # Question texts drawn alike for both tasks: the text-only diagnostic sees no shift to call
    # the audit confounded for.
    words = np.random.default_rng(0).choice(["sum", "area", "ratio", "prime", "angle", "digit"], (len(run.questions), 6))
    for task, label in (("members", 1), ("clean", 0)):
        write_results(out, task)
        write_samples(out, task, TaskRun(task, None, tuple(replace(q, label=None, question=" ".join(words[i]))
                                                           for i, q in enumerate(run.questions) if q.label == label)))
    capsys.readouterr()
    assert main(["report", str(tmp_path / "bench"), "--combined", str(model), "--reference", "clean",
                 "--audit-score", "combined", "--max-auc", "0.75", "--json", str(tmp_path / "r.json")]) == 0
    audit = json.loads((tmp_path / "r.json").read_text())["audit"]
    assert audit["score"] == "combined" and audit["combined_model"] == str(model)
    members = audit["tasks"]["members"]
    assert members["verdict"] == "FAIL" and members["audit"]["score"] == "combined" and members["audit"]["auc"] > 0.75
    with pytest.raises(SystemExit) as exit_:
        main(["report", str(tmp_path / "bench"), "--reference", "clean", "--audit-score", "combined", "--max-auc", "0.7"])
    assert exit_.value.code == 2 and "--audit-score combined needs --combined MODEL" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["--alpha", "1e300"], ["--tau", "1e-300"]])
def test_score_parameters_that_make_every_tbd_zero_are_refused(tmp_path, capsys, argv):
    # every question scored 0 without a word: the outcome inf is refused for
    path = _write(tmp_path / "gen.jsonl", [{"id": f"q{i}", "logprobs": [LN(0.5), LN(0.9)]} for i in range(3)])
    assert main(["score", str(path), *argv, "--json", str(tmp_path / "o.json")]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "gen: all 3 questions that generated tokens score TBD 0 under tau" in err and "choose another --tau" in err
    assert not (tmp_path / "o.json").exists()


def test_score_warns_when_the_logged_tokens_all_score_zero(tmp_path, capsys):
    path = _write(tmp_path / "gen.jsonl", [{"id": f"q{i}", "logprobs": [0.0, 0.0]} for i in range(3)])
    assert main(["score", str(path)]) == 0
    assert "lm-eval-tbd: warning: gen: all 3 questions that generated tokens score TBD 0" in capsys.readouterr().err


@pytest.mark.parametrize(("argv", "message"), [
    (["--questions", "0"], "argument --questions: must be an integer >= 4"),
    (["--questions", "-5"], "argument --questions: must be an integer >= 4"),
    (["--questions", "x"], "argument --questions: expected an integer, got 'x'"),
    (["--epochs", "-1"], "argument --epochs: must be an integer >= 1, got -1"),
    (["--epochs", "0"], "argument --epochs: must be an integer >= 1, got 0"),
])
def test_demo_options_are_checked_naming_the_option(tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as exit_:
        main(["demo", "--out", str(tmp_path / "d"), *argv])
    assert exit_.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "d").exists()


@pytest.mark.parametrize(("argv", "message"), [
    (["--folds", "1"], "argument --folds: must be an integer >= 2, got 1"),
    (["--folds", "-3"], "argument --folds: must be an integer >= 2, got -3"),
    (["--C", "0"], "argument --C: must be a number > 0, got '0'"),
    (["--C", "-1"], "argument --C: must be a number > 0"),
])
def test_combine_fit_options_are_checked_naming_the_option(tmp_path, capsys, argv, message):
    # sklearn's "k-fold cross-validation requires ... n_splits=2" named no option
    with pytest.raises(SystemExit) as exit_:
        main(["combine", "fit", str(tmp_path), "--out", str(tmp_path / "m.json"), *argv])
    assert exit_.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.parametrize(("features", "message"), [
    ("tbd,tbd", "--features 'tbd,tbd': tbd given twice"),
    ("tbd,", "--features 'tbd,': an empty score name"),
])
def test_combine_fit_features_are_checked(tmp_path, capsys, features, message):
    # tbd,tbd fitted a model that could not be loaded; "tbd," asked for a score named ""
    _labelled(tmp_path / "a", "calib")
    assert main(["combine", "fit", str(tmp_path / "a"), "--out", str(tmp_path / "m.json"), "--features", features]) == 2
    assert message in capsys.readouterr().err and not (tmp_path / "m.json").exists()


def test_demo_out_that_is_a_file_is_refused_naming_the_option(tmp_path, capsys):
    (tmp_path / "o").write_text("")
    assert main(["demo", "--out", str(tmp_path / "o" / "sub"), "--questions", "4", "--epochs", "1"]) == 2
    assert f"--out {tmp_path / 'o' / 'sub'}: {tmp_path / 'o'} is a file, not a folder" in capsys.readouterr().err
