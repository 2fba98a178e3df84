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
        qs.append(QuestionResult(i, f"q{i}", "Q", i % 2, scores["tbd"], rec, scores))
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
