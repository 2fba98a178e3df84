"""lm_eval_tbd.core.combine, the combined detector: out-of-fold figures, save/load round trip,
application to a run. `lm-eval-tbd combine fit` / `report --combined` are tested in
tests/unit/app/test_cli.py, the gate's score = "combined" in tests/unit/pytest_contam/test_plugin.py."""

import math

import numpy as np
import pytest

from lm_eval_tbd.core.combine import fit_combined, load_combined
from lm_eval_tbd.core.record import GenerationRecord
from lm_eval_tbd.core.runs import QuestionResult, TaskRun
from lm_eval_tbd.core.scores import TBDParams, score_record
from tests.helpers.runs import make_run


def test_fit_reports_out_of_fold_figures_and_round_trips(tmp_path):
    run = make_run()
    model = fit_combined([run], n_resamples=200)
    assert set(model.features) >= {"tbd", "gen_mean_logprob", "ref_logprob", "ref_certain_share"}
    assert "gen_zlib" not in model.features
    assert model.out_of_fold["decisions_note"].startswith("out-of-fold")
    assert 0.5 < model.out_of_fold["auc"] <= 1.0  # the reference-calibrated features separate
    path = model.save(tmp_path / "model.json")
    again = load_combined(path)
    assert again == model
    d = again.decisions(run)
    assert d.shape == (40,) and np.isfinite(d).all()
    # by hand for one question: intercept + coef . standardised decision values
    q = run.questions[0]
    from lm_eval_tbd.core.scores import decision_value

    x = np.array([decision_value(f, q.scores[f]) for f in model.features])
    assert d[0] == pytest.approx(model.intercept + ((x - model.means) / model.scales) @ np.array(model.coef))


def test_out_of_fold_is_not_in_sample():
    # pure noise features: in-sample fits look better than chance, out-of-fold must not
    rng = np.random.default_rng(1)
    qs = []
    for i in range(40):
        lp = np.log(rng.uniform(0.2, 0.9, 10))
        rec = GenerationRecord(token_ids=list(range(10)), logprobs=lp.tolist(), finish_reason="length")
        scores = score_record(rec, TBDParams())
        # distinct texts: questions with one text are one question to the folds
        qs.append(QuestionResult(i, f"q{i}", f"Q{i}", i % 2, scores["tbd"], rec, scores))
    model = fit_combined([TaskRun("noise", None, tuple(qs))], n_resamples=200)
    assert model.out_of_fold["auc_ci"][0] < 0.5 < model.out_of_fold["auc_ci"][1] or model.out_of_fold["auc"] < 0.7


def test_bad_inputs_are_clear_errors(tmp_path):
    run = make_run(n=6)
    with pytest.raises(ValueError, match="each class needs at least 5"):
        fit_combined([run])
    with pytest.raises(ValueError, match="not given for every question"):
        fit_combined([make_run()], features=["q_mean_logprob"])
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(ValueError, match="bad.json"):
        load_combined(tmp_path / "bad.json")
    model = fit_combined([make_run()], n_resamples=100)
    with pytest.raises(KeyError, match="needs score"):
        model.decision({"tbd": 0.1})
    assert not math.isnan(model.intercept)


def test_cross_fit_scores_each_question_with_a_model_blind_to_it():
    from lm_eval_tbd.core.combine import cross_fit_decisions

    calib = make_run(seed=0)
    target = make_run(seed=5)  # same question ids, other values (e.g. the questions reworded)
    out = cross_fit_decisions(calib, {"calib": calib, "target": target})
    assert set(out) == {"calib", "target"} and all(np.isfinite(v).all() and v.shape == (40,) for v in out.values())
    from lm_eval_tbd.core.stats import roc_auc

    assert roc_auc([q.label for q in target.questions], out["target"]) > 0.5
    other = TaskRun("other", None, tuple(QuestionResult(99, "q99", "Q", 1, 0.1, q.record, q.scores)
                                         for q in make_run(n=1).questions))
    with pytest.raises(ValueError, match="questions the calibration run lacks"):
        cross_fit_decisions(calib, {"other": other})


def test_a_question_given_twice_stays_in_one_fold():
    # two copies of one run reported an "out-of-fold" AUC of 0.618 against 0.528 for the run alone
    run = make_run(seed=3, separation=0.0)  # no signal: out of fold, chance
    warnings = []
    single = fit_combined([run], n_resamples=50)
    doubled = fit_combined([run, run], n_resamples=50, warn=warnings.append)
    assert len(warnings) == 1 and "40 question(s) appear more than once" in warnings[0]
    assert "calibration question 'q0' (also calibration question 'q0')" in warnings[0]
    # with each copy in the fold of its twin, doubling adds no spurious skill
    assert doubled.out_of_fold["auc"] < single.out_of_fold["auc"] + 0.02  # 0.530 vs 0.538; 0.588 ungrouped
    assert doubled.n_members == 2 * single.n_members


def test_a_question_with_two_labels_is_refused():
    run = make_run(n=20)
    flipped = TaskRun("flipped", None, tuple(QuestionResult(q.doc_id, q.question_id, q.question, 1 - q.label, q.tbd,
                                                            q.record, q.scores) for q in run.questions))
    with pytest.raises(ValueError, match="flipped question 'q0' has label 1, but the same question is calibration "
                                         "question 'q0' with label 0"):
        fit_combined([run, flipped])


@pytest.mark.parametrize(("change", "message"), [
    ({"features": []}, "'features' must be a non-empty list of score names"),
    ({"intercept": "0.3"}, "'intercept' must be a finite number, got '0.3'"),
    ({"coef": "abc"}, "'coef' must be a list of numbers"),
    ({"coef": ["a"]}, "'coef\\[0\\]' must be a finite number"),
    ({"coef": [float("nan")]}, "'coef\\[0\\]' must be a finite number, got nan"),
    ({"scales": [0.0]}, "'scales\\[0\\]' must be a finite number > 0"),
    ({"means": [1.0, 2.0]}, "arrays of different lengths"),
    ({"features": ["tbd", "tbd"]}, "a score twice"),
    ({"features": ["nope"]}, "unknown score"),
    ({"C": True}, "'C' must be a finite number > 0"),
    ({"n_members": -1}, "'n_members' must be an integer >= 0"),
    ({"extra": 1}, "unknown key\\(s\\) \\['extra'\\]"),
    ({"version": 1}, "version 1, which does not record the TBD options"),
])
def test_a_bad_model_file_is_an_error_naming_it(tmp_path, change, message):
    # features [] scored a constant 0.500; string coefficients gave a TypeError, NaN "y_score contains NaN"
    import json

    data = {"version": 2, "features": ["tbd"], "means": [0.0], "scales": [1.0], "coef": [1.0], "intercept": 0.0,
            "C": 1.0, "out_of_fold": {}, "n_members": 5, "n_nonmembers": 5, "folds": 5, "calibration_questions": [],
            "tbd_options": None}
    path = tmp_path / "m.json"
    path.write_text(json.dumps(data))
    assert load_combined(path).features == ("tbd",)
    path.write_text(json.dumps({**data, **change}))
    with pytest.raises(ValueError, match=f"^{path}: .*{message}"):
        load_combined(path)


def test_a_feature_named_twice_is_refused():
    # fit wrote a model with features (tbd, tbd), which loading then refused
    with pytest.raises(ValueError, match="features \\['tbd', 'tbd'\\] name a score more than once"):
        fit_combined([make_run()], features=["tbd", "tbd"])
