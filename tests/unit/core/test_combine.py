"""The combined detector: out-of-fold figures, save/load round trip, application to a run."""

import math

import numpy as np
import pytest

from lm_eval_tbd.core.combine import fit_combined, load_combined
from lm_eval_tbd.core.record import GenerationRecord
from lm_eval_tbd.core.runs import QuestionResult, TaskRun
from lm_eval_tbd.core.scores import TBDParams
from lm_eval_tbd.core.scores import score_record


def make_run(n=40, seed=0, separation=1.0):
    """Members' generated tokens are more probable under the student than under the reference."""
    rng = np.random.default_rng(seed)
    qs = []
    for i in range(n):
        label = i % 2
        p = np.clip(rng.uniform(0.3, 0.95, 12) + label * 0.04 * separation, 0.01, 0.999)
        q = np.clip(p - label * 0.2 * separation + rng.normal(0, 0.05, 12), 0.01, 0.999)
        rec = GenerationRecord(token_ids=list(range(12)), logprobs=np.log(p).tolist(), finish_reason="length",
                               ref_logprobs=np.log(q).tolist())
        scores = score_record(rec, TBDParams())
        qs.append(QuestionResult(i, f"q{i}", f"Q{i}", label, scores["tbd"], rec, scores))
    return TaskRun("calibration", None, tuple(qs))


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


def test_cli_fit_then_report_with_the_combined_score(tmp_path):
    """combine fit on a labelled lm-eval-style folder, then report --combined --json."""
    import json
    import subprocess
    import sys

    from tests.helpers import offline_env

    out = tmp_path / "out" / "model"
    out.mkdir(parents=True)
    run = make_run()
    lines = [json.dumps({"doc_id": q.doc_id, "doc": {"id": q.question_id, "question": q.question, "label": q.label},
                         "resps": [[q.record.to_json()]], **q.scores}) for q in run.questions]
    (out / "samples_calib_2026-01-01T00-00-00.000000.jsonl").write_text("\n".join(lines) + "\n")
    cli = [sys.executable, "-m", "lm_eval_tbd"]
    fit = subprocess.run(cli + ["combine", "fit", str(tmp_path / "out"), "--out", str(tmp_path / "m.json")],
                         capture_output=True, text=True, env=offline_env())
    assert fit.returncode == 0, fit.stderr
    assert "out of fold (5-fold): AUC" in fit.stdout
    # another labelled set (other question texts) gets the combined score in the report
    other = tmp_path / "other" / "model"
    other.mkdir(parents=True)
    lines = [json.dumps({"doc_id": q.doc_id, "doc": {"id": q.question_id, "question": "other " + q.question,
                                                     "label": q.label},
                         "resps": [[q.record.to_json()]], **q.scores}) for q in make_run(seed=7).questions]
    (other / "samples_bench_2026-01-01T00-00-00.000000.jsonl").write_text("\n".join(lines) + "\n")
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


def _write_task(folder, task, run, prefix):
    import json

    folder.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps({"doc_id": q.doc_id, "doc": {"id": q.question_id, "question": prefix + q.question},
                         "resps": [[q.record.to_json()]], **q.scores}) for q in run.questions]
    (folder / f"samples_{task}_2026-01-01T00-00-00.000000.jsonl").write_text("\n".join(lines) + "\n")


def test_gate_with_the_combined_score(pytester, tmp_path):
    """pytest --contam with score = "combined": members fail against unseen questions as reference."""
    from dataclasses import replace as dc_replace

    model = fit_combined([make_run()], n_resamples=100)
    model.save(pytester.path / "model.json")
    run = make_run(seed=9)
    members = TaskRun("m", None, tuple(q for q in run.questions if q.label == 1))
    unseen = TaskRun("u", None, tuple(dc_replace(q, label=None) for q in run.questions if q.label == 0))
    _write_task(pytester.path / "res" / "model", "bench", members, "bench ")
    _write_task(pytester.path / "res" / "model", "clean", unseen, "clean ")
    pytester.makefile(".toml", pyproject="""
        [tool.pytest_contam]
        results = "res"
        [tool.pytest_contam.benchmarks.bench]
        reference = "clean"
        score = "combined"
        combined_model = "model.json"
        max_auc = 0.75
        """)
    result = pytester.runpytest("--contam", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*contam::bench*"])
    assert "AUC against clean" in result.stdout.str()


@pytest.mark.parametrize(("body", "message"), [
    ('score = "combined"\nmax_auc = 0.7\nreference = "clean"\n', 'needs tool.pytest_contam.benchmarks.bench.combined_model'),
    ('combined_model = "m.json"\nmax_auc = 0.7\nreference = "clean"\n', 'combined_model needs'),
    ('score = "combined"\ncombined_model = "m.json"\nscore_cutoff = 0.2\n', "is compared against a reference task"),
])
def test_gate_combined_config_errors(tmp_path, body, message):
    import tomllib

    from pytest_contam.config import ConfigError, parse_config

    table = tomllib.loads('results = "r"\n[benchmarks.bench]\n' + body)
    with pytest.raises(ConfigError, match=message):
        parse_config(table, "t.toml", tmp_path, where="tool.pytest_contam.")
