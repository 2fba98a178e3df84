"""lm_eval_tbd.core.gate: criteria with no limit give the figures only; limits none of which could
be checked fail (the gate's own cases are in tests/unit/pytest_contam/)."""

from __future__ import annotations

from lm_eval_tbd.core.gate import GateCriteria, evaluate
from lm_eval_tbd.core.samples import load_run
from tests.helpers.runs import make_run, write_results, write_samples


def _runs(folder):
    for task, seed, separation in (("bench", 1, 2.0), ("clean", 2, 0.0)):
        write_results(folder, task)
        write_samples(folder, task, make_run(30, seed=seed, separation=separation))
    return load_run(folder, "bench"), load_run(folder, "clean")


def test_criteria_without_a_limit_give_the_figures_and_fail_nothing(tmp_path):
    run, reference = _runs(tmp_path)
    criteria = GateCriteria("bench", reference="clean", min_generated_tokens=0)
    assert not criteria.has_limits
    result = evaluate(criteria, run, reference=reference)
    assert result.checks == () and result.passed and result.verdict == "PASS"
    assert 0.0 <= result.audit["auc"] <= 1.0 and result.audit["n_reference"] == 30


def test_a_limit_that_is_applied_decides(tmp_path):
    run, reference = _runs(tmp_path)
    criteria = GateCriteria("bench", reference="clean", max_auc=0.0, min_generated_tokens=0)
    result = evaluate(criteria, run, reference=reference)
    assert [c["key"] for c in result.checks] == ["auc"] and not result.passed and result.verdict == "FAIL"
    assert "limit 0.000" in result.message()


def test_limits_none_of_which_was_checked_fail(tmp_path):
    # max_accuracy_gap is checked only when the accuracy is asked for: nothing shows the run clean.
    run, _ = _runs(tmp_path)
    result = evaluate(GateCriteria("bench", max_accuracy_gap=0.1), run)
    assert result.checks == () and not result.passed and result.verdict == "FAIL"
