"""The real student's figures from its runs: memorisation, ROC figures of every score, paired
bootstrap AUC differences and the combined detector out of fold."""

from __future__ import annotations

#: a member is memorised when its greedy output reproduces this many tokens of its training answer
MEMO_TOKENS = 50


def matching_prefix(ids: list[int], target: list[int]) -> int:
    return next((i for i, (a, b) in enumerate(zip(ids, target)) if a != b), min(len(ids), len(target)))


def memorisation(run, answers: dict[str, list[int]]) -> dict:
    """Members whose greedy output reproduces the first 50 tokens of their training answer, and
    the mean matching prefix (members: training answer; non-members: their unseen solution)."""
    prefix = {1: [], 0: []}
    hits = 0
    for q in run.questions:
        target = answers[q.question_id]
        k = matching_prefix(q.record.token_ids, target)
        prefix[q.label].append(k)
        if q.label == 1:
            hits += k >= min(MEMO_TOKENS, len(target))
    return {"memorised_share": hits / max(1, len(prefix[1])),
            "mean_prefix_members": sum(prefix[1]) / max(1, len(prefix[1])),
            "mean_prefix_nonmembers": sum(prefix[0]) / max(1, len(prefix[0]))}


def figures(run, windows, n_resamples: int) -> dict:
    """ROC figures for TBD at each window and for every score (M = the run's own length)."""
    from lm_eval_tbd.app.report import compare_scores
    from lm_eval_tbd.core.scores import TBDParams

    keep = ("auc", "auc_ci", "tpr@1%fpr", "tpr@1%fpr_ci", "tpr@5%fpr", "tpr@5%fpr_ci", "tpr@1%fpr_paper")
    slim = lambda r: {k: r[k] for k in keep}  # noqa: E731
    out = {"scores": {k: slim(v) for k, v in compare_scores(run, n_resamples=n_resamples).items()}}
    out["tbd_windows"] = {str(m): slim(compare_scores(run.rescore(TBDParams(max_tokens=m)), n_resamples=n_resamples)["tbd"])
                          for m in windows}
    return out


def paired(run_a, name_a: str, run_b, name_b: str) -> dict:
    """Paired bootstrap AUC(a) - AUC(b) over the same questions (decision values)."""
    from lm_eval_tbd.core.scores import decision_value
    from lm_eval_tbd.core.stats import paired_auc_difference

    ids_a = [q.question_id for q in run_a.questions]
    assert ids_a == [q.question_id for q in run_b.questions], "runs hold different questions"
    labels = [q.label for q in run_a.questions]
    a = [decision_value(name_a, v) for v in run_a.score_values(name_a)]
    b = [decision_value(name_b, v) for v in run_b.score_values(name_b)]
    return paired_auc_difference(labels, a, b)


def combined_oof(run, n_resamples: int) -> dict:
    """The combined detector (``lm_eval_tbd.core.combine``) on this run, out of fold only: each
    question is scored by a logistic regression fitted on the other folds' questions (5-fold,
    seeded). Its ROC figures and the paired difference against TBD on the same questions."""
    from lm_eval_tbd.core.combine import cross_fit_decisions
    from lm_eval_tbd.core.scores import decision_value
    from lm_eval_tbd.core.stats import paired_auc_difference, roc_report

    try:
        oof = cross_fit_decisions(run, {"self": run})["self"]
    except ValueError as err:  # e.g. a probability-0 token makes a feature non-finite
        return {"error": str(err)}
    labels = [q.label for q in run.questions]
    tbd = [decision_value("tbd", v) for v in run.score_values("tbd")]
    keep = ("auc", "auc_ci", "tpr@1%fpr", "tpr@1%fpr_ci", "tpr@5%fpr", "tpr@5%fpr_ci")
    report = roc_report(labels, oof, n_resamples=n_resamples, seed=0)
    return {**{k: report[k] for k in keep}, "vs_tbd": paired_auc_difference(labels, oof, tbd)}
