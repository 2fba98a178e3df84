"""lm_eval_tbd.core.logs: scores from generations logged outside lm-eval (plain log-prob lines,
OpenAI-style responses, batch output joined with a question file). The `lm-eval-tbd score` command
on such files is tested in tests/unit/app/test_cli.py, the records from OpenAI-style choices in
tests/unit/backends/test_openai_format.py."""

from __future__ import annotations

import pytest

from lm_eval_tbd.core.logs import load_logged_generations
from lm_eval_tbd.core.scores import TBDParams
from tests.helpers.openai_responses import LN, WORKED
from tests.helpers.openai_responses import chat_choice as _chat
from tests.helpers.openai_responses import write_jsonl as _write


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


def test_bare_response_ids_are_positions_not_response_ids(tmp_path):
    questions = _write(tmp_path / "q.jsonl", [{"question": "A?", "label": 1}, {"question": "B?", "label": 0}])
    path = _write(tmp_path / "gen.jsonl", [{"id": "cmpl-1", "choices": [_chat(WORKED)]},
                                           {"id": "cmpl-2", "choices": [_chat([LN(0.5)])]}])
    run = load_logged_generations(path, questions=questions)
    assert [(q.question_id, q.question, q.label) for q in run.questions] == [("0", "A?", 1), ("1", "B?", 0)]


# ---- regressions ----


def test_duplicate_logged_ids_name_both_lines(tmp_path):
    path = _write(tmp_path / "gen.jsonl", [{"id": "x", "logprobs": WORKED}, {"id": "y", "logprobs": WORKED},
                                           {"id": "x", "logprobs": WORKED}])
    with pytest.raises(ValueError, match=r"gen.jsonl:3: question id 'x' appears twice \(also on line 1\)"):
        load_logged_generations(path)


def test_a_key_twice_on_one_line_is_refused(tmp_path):
    # {"logprobs": [...], "logprobs": [...]} scored the last list silently
    path = tmp_path / "gen.jsonl"
    path.write_text('{"id": "a", "logprobs": [-0.1], "logprobs": [-2.0, -3.0]}\n')
    with pytest.raises(ValueError, match=f"^{path}:1: key 'logprobs' appears twice in one object"):
        load_logged_generations(path)
