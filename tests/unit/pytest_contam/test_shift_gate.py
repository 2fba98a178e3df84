"""pytest --contam in audit mode with the shift controls: a base model's run (base_results), the
text-only diagnostic and its "confounded" verdict, on synthetic result folders (no model)."""

import json
import math
import textwrap

import pytest

import lm_eval_tbd.app.report  # noqa: F401 - loaded before in-process pytester runs (see test_plugin.py)
from lm_eval_tbd.core.record import GenerationRecord
from lm_eval_tbd.core.scores import TBDParams, score_record
from tests.helpers.runs import STAMP, write_results

WORDS = ["sum", "area", "ratio", "prime", "angle", "digit", "chord", "mean"]


def texts(n, seed, vocabulary=WORDS):
    import numpy as np

    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(vocabulary, 7)) for _ in range(n)]


def write_task(root, task, probs, questions, metadata=None):
    """One task of an lm_eval output folder: question i generates 4 tokens of probability probs[i]."""
    folder = root / "model"
    write_results(folder, task, metadata=metadata)
    lines = []
    for i, (p, q) in enumerate(zip(probs, questions)):
        rec = GenerationRecord(token_ids=[1, 2, 3, 4], logprobs=[math.log(p)] * 4, finish_reason="length")
        lines.append(json.dumps({"doc_id": i, "doc": {"id": f"{task}-{i}", "question": q}, "resps": [[rec.to_json()]],
                                 **score_record(rec, TBDParams())}))
    (folder / f"samples_{task}_{STAMP}.jsonl").write_text("\n".join(lines) + "\n")


N = 12
EASY, HARD = [0.9 + 0.005 * i for i in range(N)], [0.5 + 0.005 * i for i in range(N)]


@pytest.fixture
def shifted(pytester):
    """The benchmark is easier than the reference for the base model as much as for the student:
    raw TBD separates them, the student-minus-base difference does not. Question texts are drawn
    alike, so the text-only diagnostic sees no shift."""
    bench_q, ref_q = texts(N, 1), texts(N, 2)
    for root in (pytester.path / "student", pytester.path / "base"):
        write_task(root, "bench", EASY, bench_q)
        write_task(root, "ref", HARD, ref_q)
    return pytester


def config(pytester, body, head='results = "student"'):
    pytester.makefile(".toml", pyproject="[tool.pytest_contam]\n" + head + "\n" + textwrap.dedent(body))


GATE = """
    [tool.pytest_contam.benchmarks.bench]
    reference = "ref"
    max_auc = 0.65
    alpha = 0.01
    """


def gate_json(pytester):
    return json.loads((pytester.path / "r.json").read_text())["benchmarks"]["bench"]


def test_without_a_base_run_the_shift_fails_the_gate(shifted):
    config(shifted, GATE)
    result = shifted.runpytest("--contam", "--contam-json=r.json")
    result.assert_outcomes(failed=1)
    g = gate_json(shifted)
    assert g["verdict"] == "FAIL" and g["audit"]["auc"] == 1.0 and g["audit"]["method"] == "student-only"
    assert g["audit"]["text_shift"]["auc"] < 0.8
    assert "not controlled for: how differently the model treats the two question sets" in result.stdout.str()


def test_the_base_run_calibrates_the_shift_away(shifted):
    config(shifted, GATE, head='results = "student"\nbase_results = "base"')
    result = shifted.runpytest("--contam", "--contam-json=r.json")
    result.assert_outcomes(passed=1)
    g = gate_json(shifted)
    assert g["verdict"] == "PASS" and g["audit"]["method"] == "base-difference" and g["audit"]["auc"] == 0.5


def test_a_leak_the_base_model_did_not_have_still_fails(shifted):
    # the student is near-certain on the benchmark, where the base model was not
    write_task(shifted.path / "base", "bench", HARD, texts(N, 1))
    config(shifted, GATE, head='results = "student"\nbase_results = "base"')
    result = shifted.runpytest("--contam", "--contam-json=r.json")
    result.assert_outcomes(failed=1)
    assert gate_json(shifted)["audit"]["auc"] == 1.0


def test_sets_that_differ_in_kind_are_confounded(pytester):
    write_task(pytester.path / "student", "bench", HARD, [f"Compute the integral of x^{i} dx" for i in range(N)])
    write_task(pytester.path / "student", "ref", HARD, [f"Tom has {i} apples and buys more" for i in range(N)])
    config(pytester, GATE)
    result = pytester.runpytest("--contam", "--contam-json=r.json")
    result.assert_outcomes(failed=1)
    text = " ".join(result.stdout.str().split())
    assert "bench: confounded: the questions alone tell benchmark from reference ref (text-only AUC 1.00 >= 0.8)" in text
    assert "Give a reference of the same source and format" in text
    g = gate_json(pytester)
    assert g["verdict"] == "confounded" and g["passed"] is False and g["audit"]["text_shift"]["auc"] == 1.0
    assert "CONFOUNDED" in result.stdout.str()

    # A base-model run does not make such a pair decidable: a distilled student answers whole kinds
    # of questions differently (benchmarks/results/shift.md)
    write_task(pytester.path / "base", "bench", HARD, [f"Compute the integral of x^{i} dx" for i in range(N)])
    write_task(pytester.path / "base", "ref", HARD, [f"Tom has {i} apples and buys more" for i in range(N)])
    config(pytester, GATE, head='results = "student"\nbase_results = "base"')
    pytester.runpytest("--contam", "--contam-json=r.json").assert_outcomes(failed=1)
    assert gate_json(pytester)["verdict"] == "confounded" and gate_json(pytester)["audit"]["method"] == "base-difference"

    config(pytester, GATE + "allow_confounded = true\n")
    result = pytester.runpytest("--contam", "--contam-json=r.json")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*ContamWarning: bench: confounded*(allowed: passed)*"])
    assert gate_json(pytester)["verdict"] == "confounded" and gate_json(pytester)["passed"] is True


def test_base_run_missing_questions_names_both_runs(shifted):
    write_task(shifted.path / "base", "bench", EASY[:-1], texts(N, 1)[:-1])
    config(shifted, GATE, head='results = "student"\nbase_results = "base"')
    result = shifted.runpytest("--contam")
    result.assert_outcomes(failed=1)
    text = " ".join(result.stdout.str().split())
    assert "no usable results: base run bench (" in text and "lacks 1 of the 12 questions of benchmark run bench (" in text


def test_base_run_with_other_questions_names_both_runs(shifted):
    write_task(shifted.path / "base", "bench", EASY, texts(N, 7))
    config(shifted, GATE, head='results = "student"\nbase_results = "base"')
    result = shifted.runpytest("--contam")
    result.assert_outcomes(failed=1)
    assert "words question 'bench-0' differently" in " ".join(result.stdout.str().split())


def test_base_run_with_other_tbd_settings_names_both_runs(shifted):
    write_task(shifted.path / "base", "bench", EASY, texts(N, 1), metadata={"tbd_tau": 0.5})
    config(shifted, GATE, head='results = "student"\nbase_results = "base"')
    result = shifted.runpytest("--contam")
    result.assert_outcomes(failed=1)
    text = " ".join(result.stdout.str().split())
    assert "student bench (" in text and "base model bench (" in text and "tbd_tau: 1.0 (student) vs 0.5 (base model)" in text


@pytest.mark.parametrize("head, body, message", [
    ('results = "student"\nbase_model = "hf"', GATE, "'base_model' is run with the options of 'model'"),
    ('results = "student"\nbase_results = "base"\nbase_model = "hf"', GATE, "mutually exclusive"),
    ('results = "student"\nbase_results = "base"', "[tool.pytest_contam.benchmarks.bench]\nscore_cutoff = 0.3\n",
     "no benchmark sets a 'reference'"),
    ('results = "student"', "[tool.pytest_contam.benchmarks.bench]\nscore_cutoff = 0.3\nallow_confounded = true\n",
     "allow_confounded needs tool.pytest_contam.benchmarks.bench.reference"),
    ('results = "student"', GATE + "max_text_auc = 1.0\n", "max_text_auc must be in (0.5, 1.0)"),
    ('results = "student"', GATE + "min_generated_tokens = -1\n", "min_generated_tokens must be >= 0"),
    ('results = "student"', GATE + "allow_confounded = \"yes\"\n", "allow_confounded must be bool"),
])
def test_shift_keys_are_checked(pytester, head, body, message):
    config(pytester, body, head=head)
    result = pytester.runpytest("--contam")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert message in result.stderr.str()


def test_config_defaults_are_the_cores():
    from lm_eval_tbd.core.calibrated import DEFAULT_MIN_TOKENS
    from lm_eval_tbd.core.text_shift import DEFAULT_MAX_TEXT_AUC
    from pytest_contam.config import Threshold

    t = Threshold("b", reference="r", max_auc=0.6)
    assert (t.min_generated_tokens, t.max_text_auc, t.allow_confounded) == (DEFAULT_MIN_TOKENS, DEFAULT_MAX_TEXT_AUC, False)


def test_a_reference_whose_tbd_is_all_zero_fails_the_gate_with_the_reason(pytester):
    # every generated token has probability 1: TBD 0 everywhere ties, which would read as AUC 0.5
    write_task(pytester.path / "student", "bench", HARD, texts(N, 1))
    write_task(pytester.path / "student", "ref", [1.0] * N, texts(N, 2))
    config(pytester, GATE)
    result = pytester.runpytest("--contam")
    result.assert_outcomes(failed=1)
    assert "ref: all 12 questions that generated tokens score TBD 0" in " ".join(result.stdout.str().split())


def test_a_reference_made_with_other_options_names_both_runs(pytester):
    write_task(pytester.path / "student", "bench", HARD, texts(N, 1))
    write_task(pytester.path / "student", "ref", HARD, texts(N, 2), metadata={"tbd_tau": 0.5})
    config(pytester, GATE)
    result = pytester.runpytest("--contam")
    result.assert_outcomes(failed=1)
    text = " ".join(result.stdout.str().split())
    assert "benchmark bench (" in text and "reference ref (" in text and "tbd_tau: 1.0 (benchmark) vs 0.5 (reference)" in text
