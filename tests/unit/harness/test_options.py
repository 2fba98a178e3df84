"""The harness side without a model: parameters from metadata, per-question results, aggregations."""

import pytest

from lm_eval_tbd.harness.metrics import AGGREGATIONS
from lm_eval_tbd.harness.options import options_from_metadata, params_from_metadata
from lm_eval_tbd.core.scores import TBDParams


def test_params_default_to_the_paper():
    assert params_from_metadata({"version": 1.0}) == TBDParams(1.0, 0.6, 300)


def test_params_from_metadata_values():
    assert params_from_metadata({"tbd_tau": 0.9, "tbd_alpha": "1", "tbd_max_tokens": 100.0}) == TBDParams(0.9, 1.0, 100)
    assert params_from_metadata({"tbd_max_tokens": "3e2"}).max_tokens == 300


def test_options_reject_unknown_tbd_keys_and_bad_flags():
    opts = options_from_metadata({"tbd_input_scores": "true", "tbd_ref_model": "/base", "pretrained": "x"})
    assert opts.input_scores and opts.ref_model == "/base"
    assert not options_from_metadata({}).input_scores  # off by default: no prompt-wide logits
    with pytest.raises(ValueError, match=r"unknown metadata key\(s\) \['tbd_max_token'\]"):
        options_from_metadata({"tbd_max_token": 5})
    with pytest.raises(ValueError, match="'tbd_input_scores' must be true or false"):
        options_from_metadata({"tbd_input_scores": "yes please"})


@pytest.mark.parametrize(
    "metadata, message",
    [
        ({"tbd_tau": "high"}, "task t: metadata 'tbd_tau' must be a number"),
        ({"tbd_tau": 2}, "task t: tbd_tau must be a number in"),
        ({"tbd_max_tokens": 2.5}, "task t: tbd_max_tokens must be an integer"),
        ({"tbd_alpha": -1}, "task t: tbd_alpha must be"),
        ({"tbd_alpha": "inf"}, "task t: metadata 'tbd_alpha' must be a finite number"),
        ({"tbd_tau": True}, "task t: metadata 'tbd_tau' must be a finite number"),
    ],
)
def test_bad_metadata_names_key_and_task(metadata, message):
    with pytest.raises(ValueError, match=message):
        params_from_metadata(metadata, task="t")


def test_auc_aggregation_uses_minus_tbd_and_reports_undefined_as_none(caplog):
    auc = AGGREGATIONS["tbd_roc_auc"]
    # members (label 1) have LOWER TBD, so decision -TBD is higher: perfect separation
    assert auc([(-0.1, 1), (-0.2, 1), (-0.8, 0), (-0.9, 0)]) == 1.0
    assert auc([(-0.1, 1), (-0.2, 1)]) is None
    assert "tbd_roc_auc is undefined: ROC metrics are undefined: all 2 labelled questions are members" in caplog.text
    assert AGGREGATIONS["tbd_tpr_at_1fpr"]([(-0.1, 1), (-0.8, 0)]) == 1.0


def test_task_import_leaves_statistics_libraries_for_aggregation_time():
    # scikit-learn and scipy are loaded when an aggregation runs, not with the task: their import
    # time and memory would otherwise weigh on every TBD run (see benchmarks/speed.py).
    import subprocess
    import sys

    code = "import sys, lm_eval_tbd.harness.task; assert not {'sklearn', 'scipy'} & set(sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True)
