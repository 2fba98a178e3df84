"""The calibrated audit (lm_eval_tbd.core.calibrated) with hand-computed values."""

import pytest

from lm_eval_tbd.core.calibrated import (
    BASE_DIFFERENCE,
    STUDENT_ONLY,
    BaseRunMismatch,
    calibrated_audit,
    calibrated_values,
    paired_base,
    short_generations,
)
from lm_eval_tbd.core.record import GenerationRecord
from lm_eval_tbd.core.runs import QuestionResult, TaskRun
from lm_eval_tbd.core.stats import UndefinedMetricError


def run(task, tbds, *, tokens=None, finish="length", texts=None, ids=None):
    """A run whose question i has TBD ``tbds[i]`` and generated ``tokens[i]`` tokens."""
    qs = []
    for i, t in enumerate(tbds):
        n = (tokens or [30] * len(tbds))[i]
        rec = GenerationRecord(token_ids=list(range(n)), logprobs=[-0.1] * n, finish_reason=finish)
        qid = (ids or [f"q{i}" for i in range(len(tbds))])[i]
        qs.append(QuestionResult(i, qid, (texts or {}).get(qid, f"question {qid}"), None, t, rec, {"tbd": t}))
    return TaskRun(task, f"samples_{task}.jsonl", tuple(qs))


def test_base_difference_removes_what_the_base_model_already_found_easy():
    # The benchmark is easier than the reference for the base model too: the student's own TBD
    # separates the sets completely, the difference to the base not at all.
    bench, ref = run("b", [0.2, 0.3]), run("r", [0.5, 0.6])
    base_bench, base_ref = run("b", [0.2, 0.3]), run("r", [0.5, 0.6])
    raw = calibrated_audit(bench, ref, min_tokens=0, n_resamples=50)
    assert raw["method"] == STUDENT_ONLY and raw["auc"] == 1.0
    cal = calibrated_audit(bench, ref, base_benchmark=base_bench, base_reference=base_ref, min_tokens=0, n_resamples=50)
    assert cal["method"] == BASE_DIFFERENCE and cal["auc"] == 0.5 and cal["p_value"] == 1.0


def test_base_difference_by_hand():
    # decision value -TBD; student minus base per question:
    # benchmark: (-0.2 + 0.5, -0.4 + 0.5, -0.6 + 0.5) = (0.3, 0.1, -0.1); reference: (0.0, 0.2)
    bench, base_bench = run("b", [0.2, 0.4, 0.6]), run("b", [0.5, 0.5, 0.5])
    ref, base_ref = run("r", [0.5, 0.3]), run("r", [0.5, 0.5])
    assert calibrated_values(bench, "tbd", base_bench) == pytest.approx([0.3, 0.1, -0.1])
    a = calibrated_audit(bench, ref, base_benchmark=base_bench, base_reference=base_ref, min_tokens=0, n_resamples=50)
    # pairs above: 0.3 > both, 0.1 > 0.0 only, -0.1 > none: U = 3 of 6
    assert a["auc"] == 0.5
    # empirical p-values (1 + #{ref >= x}) / 3: 1/3, 2/3, 3/3
    assert a["p_values"] == pytest.approx([1 / 3, 2 / 3, 1.0])


def test_short_generations_are_left_out_counted_and_listed():
    # q1 stopped (EOS) after 3 tokens; q2 was cut at the scored length of 3 and is kept
    bench = run("b", [0.1, 0.9, 0.2, 0.3], tokens=[30, 3, 30, 30])
    bench = TaskRun("b", bench.samples_file, bench.questions[:1] + (
        _with_finish(bench.questions[1], "eos"),) + bench.questions[2:])
    short = short_generations(bench, min_tokens=20)
    assert short == [{"id": "q1", "tokens": 3.0}]
    assert short_generations(bench, min_tokens=0) == []
    a = calibrated_audit(bench, run("r", [0.5, 0.6, 0.7]), min_tokens=20, n_resamples=50)
    assert a["excluded"] == {"min_tokens": 20, "benchmark": [{"id": "q1", "tokens": 3.0}], "reference": []}
    assert a["n_benchmark"] == 3 and a["kept_ids"] == ["q0", "q2", "q3"] and a["auc"] == 1.0


def _with_finish(q, finish):
    from dataclasses import replace

    return replace(q, record=replace(q.record, finish_reason=finish))


def test_too_few_questions_left_names_the_rule():
    eos = run("r", [0.5, 0.6], tokens=[2, 30], finish="eos")
    with pytest.raises(UndefinedMetricError, match="1 of 2 questions left after leaving out 1 whose generation ended "
                                                   "before 20 tokens"):
        calibrated_audit(run("b", [0.1, 0.2]), eos)


def test_base_run_lacking_questions_names_both_runs():
    with pytest.raises(BaseRunMismatch, match=r"base run b \(base.jsonl\) lacks 1 of the 2 questions of student run b "
                                              r"\(samples_b.jsonl\) \(ids q1\)"):
        paired_base(run("b", [0.1, 0.2]), TaskRun("b", "base.jsonl", run("b", [0.1]).questions))


def test_base_run_with_another_question_set_names_both_runs():
    base = TaskRun("b", "base.jsonl", run("b", [0.1, 0.2, 0.3]).questions)
    with pytest.raises(BaseRunMismatch, match="hold different question sets: 1 questions only in the base run"):
        paired_base(run("b", [0.1, 0.2]), base)


def test_base_run_wording_a_question_differently():
    base = TaskRun("b", "base.jsonl", run("b", [0.1, 0.2], texts={"q1": "another"}).questions)
    with pytest.raises(BaseRunMismatch, match="words question 'q1' differently"):
        paired_base(run("b", [0.1, 0.2]), base)


def test_base_needs_both_tasks():
    with pytest.raises(ValueError, match="base model's runs of both the benchmark and the reference"):
        calibrated_audit(run("b", [0.1, 0.2]), run("r", [0.3, 0.4]), base_benchmark=run("b", [0.1, 0.2]))


def test_says_what_it_could_not_control_for():
    a = calibrated_audit(run("b", [0.1, 0.2]), run("r", [0.3, 0.4]), n_resamples=50)
    assert any("beyond what the text-only diagnostic catches" in u for u in a["uncontrolled"])
