"""The shift benchmark's pure helpers: answer checking, the sets' views and the tallies."""

from benchmarks.audits import accuracy, analysis


def test_boxed_takes_the_last_balanced_box():
    assert accuracy._boxed(r"so \boxed{1} then \boxed{\frac{1}{2}} done") == r"\frac{1}{2}"
    assert accuracy._boxed("no box") is None and accuracy._boxed(r"\boxed{unclosed") is None


def test_math_answers_compare_after_light_normalisation():
    assert accuracy.correct(r"The answer is $\boxed{\dfrac{3}{4}}$.", r"\frac{3}{4}", "math")
    assert accuracy.correct(r"\boxed{\left( 3, \frac{\pi}{2} \right)}", r"\left( 3, \frac{\pi}{2} \right)", "math")
    assert not accuracy.correct(r"\boxed{5}", "6", "math") and not accuracy.correct("5", "5", "math")  # no box, no answer


def test_gsm_answers_take_the_last_number():
    assert accuracy.correct("She makes 9 * 2 = $18 a day.\n#### 18", "18", "gsm")
    assert accuracy.correct("In total 1,200 dollars", "1200", "gsm")
    assert not accuracy.correct("18 eggs, so 7", "18", "gsm") and not accuracy.correct("none", "3", "gsm")


def _cell(kind, verdict, text_auc=0.5, benchmark="b", exchangeable=False):
    return {"benchmark": benchmark, "reference": "r", "kind": kind, "exchangeable": exchangeable, "text_auc": text_auc,
            "audits": {"raw": {"tbd": {"verdict": verdict}}}}


def test_tally_counts_false_fails_detections_and_confounded_cells():
    cells = [_cell("null", "FAIL"), _cell("null", "PASS"), _cell("null", "FAIL", text_auc=0.9),
             _cell("power", "FAIL", benchmark="leak"), _cell("power", "PASS", benchmark="leak2"),
             _cell("power", "FAIL", benchmark="leak2", exchangeable=True)]
    t = analysis._tally(cells, "raw", "tbd")
    assert (t["null"], t["false_fail"], t["power"], t["detected"]) == (3, 2, 3, 2)
    assert t["missed_where_exchangeable_detects"] == ["leak2 vs r"]  # its exchangeable test detects it
    t = analysis._tally(cells, "raw", "tbd", text_limit=0.75)
    assert (t["false_fail"], t["confounded_null"]) == (1, 1)


def test_allowed_false_fails_rounds_up():
    assert analysis.allowed_false_fails(70) == 1 and analysis.allowed_false_fails(100) == 1 and analysis.allowed_false_fails(101) == 2
