"""Scores from generations logged outside lm-eval (lm_eval_tbd.core.logs, `lm-eval-tbd score`), and
records from OpenAI-style responses (lm_eval_tbd.backends.openai_format). Response shapes follow the
OpenAI completions / chat completions APIs; test_api_server checks them against a real server."""

from __future__ import annotations

import json
import math

import pytest

from lm_eval_tbd.app.cli import main
from lm_eval_tbd.core.logs import load_logged_generations
from lm_eval_tbd.backends.openai_format import MissingLogprobsError, record_from_chat_choice, record_from_completion_choice
from lm_eval_tbd.core.record import GenerationRecord
from lm_eval_tbd.core.scores import TBDParams

LN = math.log
WORKED = [LN(1.0), LN(0.9), LN(0.5)]  # docs/method.md's worked example: TBD 0.455471


def _chat(logprobs, tokens=None, finish="stop", tops=None):
    tokens = tokens or [f"t{i}" for i in range(len(logprobs))]
    tops = tops or logprobs
    return {"index": 0, "finish_reason": finish, "message": {"role": "assistant", "content": "".join(tokens)},
            "logprobs": {"content": [{"token": t, "logprob": lp, "top_logprobs": [{"token": t, "logprob": top}]}
                                     for t, lp, top in zip(tokens, logprobs, tops, strict=True)]}}


def _completion(logprobs, tokens=None, finish="length"):
    tokens = tokens or [f"t{i}" for i in range(len(logprobs))]
    return {"index": 0, "text": "".join(tokens), "finish_reason": finish,
            "logprobs": {"tokens": tokens, "token_logprobs": logprobs,
                         "top_logprobs": [{t: lp} for t, lp in zip(tokens, logprobs, strict=True)]}}


def _write(path, lines):
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def test_chat_and_completion_choices_give_the_same_record():
    a = record_from_chat_choice(_chat(WORKED, ["a", "b", "c"]))
    b = record_from_completion_choice(_completion(WORKED, ["a", "b", "c"], finish="stop"))
    for rec in (a, b):
        assert rec.tokens == ["a", "b", "c"] and rec.token_ids is None
        assert rec.logprobs == pytest.approx(WORKED) and rec.finish_reason == "eos" and rec.text == "abc"


def test_vllm_token_id_strings_give_ids():
    rec = record_from_completion_choice(_completion(WORKED, ["token_id:5", "token_id:7", "token_id:2"]))
    assert rec.token_ids == [5, 7, 2] and rec.tokens is None and rec.finish_reason == "length"


def test_length_finish_and_limit():
    assert record_from_chat_choice(_chat(WORKED, finish="length")).finish_reason == "length"
    # finish_reason missing from a log: the request's max_tokens tells them apart
    choice = _chat(WORKED)
    del choice["finish_reason"]
    assert record_from_chat_choice(choice, max_tokens=3).finish_reason == "length"
    assert record_from_chat_choice(choice, max_tokens=10).finish_reason == "eos"
    with pytest.raises(ValueError, match="content_filter"):
        record_from_chat_choice(_chat(WORKED, finish="content_filter"))


def test_missing_logprobs_name_the_option():
    no_lp = {"index": 0, "text": "x", "finish_reason": "length", "logprobs": None}
    with pytest.raises(MissingLogprobsError, match="'logprobs': 1"):
        record_from_completion_choice(no_lp)
    with pytest.raises(MissingLogprobsError, match="'logprobs': true"):
        record_from_chat_choice({"index": 0, "message": {"content": "x"}, "finish_reason": "stop", "logprobs": None})
    with pytest.raises(MissingLogprobsError, match="token 1"):
        record_from_chat_choice(_chat([-0.1, None, -0.2], tops=[-0.1, -0.1, -0.2]))
    with pytest.raises(MissingLogprobsError, match="token 0"):
        record_from_completion_choice(_completion([float("nan")]))


def test_non_greedy_tokens_are_refused():
    with pytest.raises(ValueError, match="not the server's top choice"):
        record_from_chat_choice(_chat([-1.2, -0.1], tops=[-0.4, -0.1]))
    with pytest.raises(ValueError, match="> 0"):
        record_from_chat_choice(_chat([0.5]))


def test_plain_logprob_lines_hand_computed(tmp_path):
    path = _write(tmp_path / "gen.jsonl", [
        {"id": "q1", "question": "What?", "label": 1, "logprobs": WORKED},
        {"id": "q2", "question": "Why?", "label": 0, "logprobs": [LN(0.5), LN(0.5)], "finish_reason": "eos"},
    ])
    run = load_logged_generations(path)
    q1, q2 = run.questions
    assert q1.tbd == pytest.approx(0.455471, abs=1e-6)
    assert q2.tbd == pytest.approx(0.5 ** 0.6)
    assert q1.scores["gen_mean_logprob"] == pytest.approx(sum(WORKED) / 3)
    assert (q1.label, q2.label) == (1, 0) and run.labelled and q2.record.finish_reason == "eos"
    # other parameters, same log-probs: tau 0.8 keeps only p = 0.5 -> (0.3 ** 0.6)
    rescored = load_logged_generations(path, params=TBDParams(tau=0.8))
    assert rescored.questions[0].tbd == pytest.approx(0.3 ** 0.6)


def test_batch_output_joined_with_question_file(tmp_path):
    questions = _write(tmp_path / "questions.jsonl", [
        {"id": "a", "question": "First?", "label": 1}, {"id": "b", "question": "Second?", "label": 0}])
    batch = _write(tmp_path / "batch_output.jsonl", [
        {"custom_id": "b", "response": {"status_code": 200, "body": {"choices": [_chat([LN(0.5)])]}}},
        {"custom_id": "a", "response": {"status_code": 200, "body": {"choices": [_chat(WORKED)]}}},
    ])
    run = load_logged_generations(batch, questions=questions)
    by_id = {q.question_id: q for q in run.questions}
    assert by_id["a"].question == "First?" and by_id["a"].label == 1
    assert by_id["a"].tbd == pytest.approx(0.455471, abs=1e-6)
    assert by_id["b"].tbd == pytest.approx(0.5 ** 0.6)


@pytest.mark.parametrize(("lines", "message"), [
    ([{"id": "x", "logprobs": WORKED, "score": 1}], "unknown field"),
    ([{"id": "x", "text": "no log-probs"}], "neither 'response'"),
    ([{"id": "x", "logprobs": WORKED}, {"id": "x", "logprobs": WORKED}], "appears twice"),
    ([{"id": "x", "logprobs": WORKED, "label": 1}, {"id": "y", "logprobs": WORKED}], "label all or none"),
    ([{"id": "x", "logprobs": WORKED, "label": 2}], "label"),
    ([{"custom_id": "x", "response": {"status_code": 429, "body": {"error": "rate limit"}}}], "status_code 429"),
    ([{"choices": [_chat(WORKED), _chat(WORKED)]}], "2 choices"),
    ([{"response": {"choices": [{"index": 0, "text": "x", "logprobs": None}]}}], "logprobs"),
    ([{"logprobs": [-0.1, "high"]}], "position"),
    ([], "no logged generations"),
])
def test_bad_logged_lines_name_file_and_line(tmp_path, lines, message):
    path = _write(tmp_path / "gen.jsonl", lines)
    with pytest.raises(ValueError, match=message) as err:
        load_logged_generations(path)
    assert str(path) in str(err.value)


def test_unknown_id_in_question_file(tmp_path):
    questions = _write(tmp_path / "q.jsonl", [{"id": "a", "question": "A?"}])
    path = _write(tmp_path / "gen.jsonl", [{"id": "zzz", "logprobs": WORKED}])
    with pytest.raises(ValueError, match="'zzz' is not in the question file"):
        load_logged_generations(path, questions=questions)


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


def test_record_with_tokens_round_trips():
    rec = GenerationRecord(token_ids=None, tokens=["a", "b"], logprobs=[-0.1, -0.2], finish_reason="length")
    assert GenerationRecord.from_json(rec.to_json()) == rec
    with pytest.raises(ValueError, match="neither token_ids nor tokens"):
        GenerationRecord(token_ids=None, logprobs=[], finish_reason="length")
    with pytest.raises(ValueError, match="2 tokens but 1"):
        GenerationRecord(token_ids=None, tokens=["a", "b"], logprobs=[-0.1], finish_reason="length")


def test_bare_response_ids_are_positions_not_response_ids(tmp_path):
    questions = _write(tmp_path / "q.jsonl", [{"question": "A?", "label": 1}, {"question": "B?", "label": 0}])
    path = _write(tmp_path / "gen.jsonl", [{"id": "cmpl-1", "choices": [_chat(WORKED)]},
                                           {"id": "cmpl-2", "choices": [_chat([LN(0.5)])]}])
    run = load_logged_generations(path, questions=questions)
    assert [(q.question_id, q.question, q.label) for q in run.questions] == [("0", "A?", 1), ("1", "B?", 0)]


def test_length_finish_short_of_the_limit_is_refused():
    with pytest.raises(ValueError, match="after 3 of 10 tokens"):
        record_from_chat_choice(_chat(WORKED, finish="length"), max_tokens=10)
    assert record_from_chat_choice(_chat(WORKED)).extra["greedy_checked"] is True
    choice = _completion(WORKED)
    choice["logprobs"]["top_logprobs"] = None
    assert record_from_completion_choice(choice).extra["greedy_checked"] is False


def test_shared_prefix_length_of_ids_and_strings():
    from lm_eval_tbd.core.record import shared_prefix_length

    ids = GenerationRecord(token_ids=[1, 2, 3], logprobs=[-0.1] * 3, finish_reason="length")
    strings = GenerationRecord(token_ids=None, tokens=["a", "b", "x"], logprobs=[-0.1] * 3, finish_reason="length")
    assert shared_prefix_length(ids, strings, decode=lambda i: "abc"[i - 1]) == 2
    assert shared_prefix_length(ids, ids) == 3
    with pytest.raises(ValueError, match="decode"):
        shared_prefix_length(ids, strings)


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


def test_duplicate_logged_ids_name_both_lines(tmp_path):
    path = _write(tmp_path / "gen.jsonl", [{"id": "x", "logprobs": WORKED}, {"id": "y", "logprobs": WORKED},
                                           {"id": "x", "logprobs": WORKED}])
    with pytest.raises(ValueError, match=r"gen.jsonl:3: question id 'x' appears twice \(also on line 1\)"):
        load_logged_generations(path)


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


def test_json_safe_spells_non_finite_floats():
    from lm_eval_tbd.core.atomic import json_safe

    assert json_safe({"a": [math.inf, -math.inf, math.nan, 1.5], "b": (None, "x")}) == \
        {"a": ["Infinity", "-Infinity", "NaN", 1.5], "b": [None, "x"]}


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
