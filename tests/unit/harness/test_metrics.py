"""lm_eval_tbd.harness.metrics: the aggregations registered in lm-eval."""

from lm_eval_tbd.harness.metrics import AGGREGATIONS


def test_auc_aggregation_uses_minus_tbd_and_reports_undefined_as_none(caplog):
    auc = AGGREGATIONS["tbd_roc_auc"]
    # members (label 1) have LOWER TBD, so decision -TBD is higher: perfect separation
    assert auc([(-0.1, 1), (-0.2, 1), (-0.8, 0), (-0.9, 0)]) == 1.0
    assert auc([(-0.1, 1), (-0.2, 1)]) is None
    assert "tbd_roc_auc is undefined: ROC metrics are undefined: all 2 labelled questions are members" in caplog.text
    assert AGGREGATIONS["tbd_tpr_at_1fpr"]([(-0.1, 1), (-0.8, 0)]) == 1.0
