"""The detection benchmark's figures for one checkpoint: memorisation, and ROC figures for every TBD
setting and every logged score."""

from __future__ import annotations


def evaluate_checkpoint(run, answers: dict, tok, max_tokens: int) -> dict:
    """Memorisation share, and ROC figures for every TBD setting and every logged score."""
    from lm_eval_tbd.app.report import compare_scores
    from lm_eval_tbd.core.scores import TBDParams
    from lm_eval_tbd.demo import memorised_share

    out = {"memorised_share": memorised_share(run, answers, tok), "scores": compare_scores(run, n_resamples=1000)}
    tbd = {}
    for m in sorted({100, max_tokens}):
        for tau in (0.9, 1.0):
            r = compare_scores(run.rescore(TBDParams(tau=tau, max_tokens=m)), n_resamples=1000)["tbd"]
            tbd[f"M={m},tau={tau}"] = r
    out["tbd_settings"] = tbd
    return out
