"""lm_eval_tbd.core.runs: a run's questions calibrated by a reference model's run of the same
questions (the q_ref_* scores for runs made without tbd_ref_model)."""

import pytest

from lm_eval_tbd.core.record import GenerationRecord
from lm_eval_tbd.core.runs import QuestionResult, TaskRun
from lm_eval_tbd.core.scores import TBDParams


def _run(task: str, question_lps: dict[str, list[float]], samples: int = 1, wording: str = "question") -> TaskRun:
    qs = []
    for i, (qid, q_lp) in enumerate(question_lps.items()):
        recs = tuple(GenerationRecord(token_ids=[1], logprobs=[-0.1 * (s + 1)], finish_reason="length",
                                      question_logprobs=q_lp) for s in range(samples))
        qs.append(QuestionResult(i, qid, f"{wording} {qid}", i % 2, 0.0, recs[0], {}, recs if samples > 1 else ()))
    return TaskRun(task, None, tuple(qs)).rescore(TBDParams())


def test_reference_run_fills_the_question_calibration():
    student = _run("student", {"a": [-1.0, -2.0], "b": [-0.5, -0.5]}, samples=2)
    base = _run("base", {"b": [-1.5, -0.5], "a": [-2.0, -4.0]})
    out = student.with_reference_questions(base, TBDParams())
    by_id = {q.question_id: q for q in out.questions}
    assert by_id["a"].scores["q_ref_logprob"] == pytest.approx(-1.5 - -3.0)  # matched by id, not order
    assert by_id["b"].scores["q_ref_logprob"] == pytest.approx(-0.5 - -1.0)
    assert by_id["b"].scores["q_ref_min_k"] == pytest.approx(0.0)  # ratios [1.0, 0.0]: the lowest
    assert all(r.ref_question_logprobs == [-2.0, -4.0] for r in by_id["a"].records)  # every sample
    assert len(by_id["a"].sample_scores) == 2
    assert "q_ref_logprob" not in student.questions[0].scores  # the input run is left as it was


def test_reference_run_must_hold_the_same_questions_and_tokens():
    student = _run("student", {"a": [-1.0, -2.0]})
    with pytest.raises(ValueError, match="student: question 'a': the reference run base has no question"):
        student.with_reference_questions(_run("base", {"z": [-1.0, -2.0]}), TBDParams())
    with pytest.raises(ValueError, match="2 question tokens, but 3 in the reference run"):
        student.with_reference_questions(_run("base", {"a": [-1.0, -2.0, -3.0]}), TBDParams())
    with pytest.raises(ValueError, match="words it differently"):
        student.with_reference_questions(_run("base", {"a": [-1.0, -2.0]}, wording="reworded"), TBDParams())
