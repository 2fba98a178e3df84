"""What a leak did to the score: generations judged against the reference answers (MATH's last
``\\boxed{}``, the last number elsewhere), and each leak student's true inflation beside the
label-free estimate from its scores. Read by the shift benchmark and by ``benchmarks.inflation``."""

from __future__ import annotations

from pathlib import Path

from lm_eval_tbd.core.runs import TaskRun


def _boxed(text: str) -> str | None:
    """The content of the last ``\\boxed{...}`` in ``text`` (braces balanced), or None."""
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    depth, i = 0, start + len("\\boxed{") - 1
    for j in range(i, len(text)):
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        if depth == 0:
            return text[i + 1:j]
    return None


def _norm(answer: str) -> str:
    import re

    a = answer.strip().strip("$").replace("\\left", "").replace("\\right", "").replace("\\!", "")
    a = re.sub(r"\\text\{([^}]*)\}", r"\1", a)
    a = re.sub(r"\\[dt]?frac", r"\\frac", a)
    return re.sub(r"\s+", "", a).rstrip(".").replace("^\\circ", "").replace("^{\\circ}", "")


def correct(text: str, answer: str, source: str) -> bool:
    """Whether a generation answers correctly: MATH, the last ``\\boxed{}`` equals the reference
    answer after light normalisation; GSM8K, the last number in the text equals the answer."""

    if source == "math":
        got = _boxed(text)
        return got is not None and _norm(got) == _norm(answer)
    got = last_number(text)
    try:
        return got is not None and got == float(str(answer).replace(",", ""))
    except ValueError:
        return False


def last_number(text: str) -> float | None:
    """The last number in ``text`` (thousands separators dropped), or None."""
    import re

    numbers = re.findall(r"-?\d[\d,]*(?:\.\d+)?", text)
    return float(numbers[-1].replace(",", "")) if numbers else None


def inflation_evidence(set_label: str, decision, ok, ok_base, seen, *, n_resamples: int) -> dict:
    """One leak student's evidence: the true inflation (accuracy ``ok`` on the ``seen`` questions
    minus the rest, minus the same gap of the base model's ``ok_base``) beside the label-free
    estimate of ``lm_eval_tbd.core.accuracy.inflation`` from the student's ``decision`` values."""
    import numpy as np

    from lm_eval_tbd.core.accuracy import group_gap, inflation

    ok, ok_base, seen = (np.asarray(x, dtype=float) for x in (ok, ok_base, seen))
    true_student = group_gap(ok, seen.astype(bool), n_resamples=n_resamples)
    true_base = group_gap(ok_base, seen.astype(bool), n_resamples=n_resamples)
    return {"set": set_label, "accuracy_student": float(ok.mean()), "accuracy_base": float(ok_base.mean()),
            "true": {"student_gap_leaked_minus_clean": true_student, "base_gap_same_halves": true_base,
                     "inflation": true_student["gap"] - true_base["gap"],
                     "overall_points": (true_student["gap"] - true_base["gap"]) * float(seen.mean())},
            "estimated_from_scores": inflation(decision, ok, ok_base, n_resamples=n_resamples)}


def leak_inflation(runs: dict[str, dict[str, TaskRun]], answers: dict[str, dict[str, str]], *, quick: bool = False) -> dict:
    """Per leak student: the true inflation (accuracy of its greedy M-token answers on the leaked
    half minus the clean half, and the same for the base model) beside what the scores estimate
    with no labels (``lm_eval_tbd.core.accuracy.inflation`` over the whole 100-question set: the
    student's accuracy gap, most seen-like quarter by TBD against the rest, minus the base
    model's on the same split). Correctness is judged on the TBD generation itself (M tokens)."""
    import numpy as np

    from lm_eval_tbd.core.scores import decision_value

    n_resamples = 200 if quick else 2000
    out = {}
    for student, source in (("student-math", "math"), ("student-gsm", "gsm")):
        if student not in runs:
            continue
        qs = {m: [q for half in ("a", "b") for q in runs[m][f"{source}_{half}"].questions] for m in (student, "base")}
        leaked = np.array([half == "a" for half in ("a", "b") for _ in runs[student][f"{source}_{half}"].questions])
        base_by_id = {q.question_id: q for q in qs["base"]}
        ok = np.array([correct(q.record.text, answers[source][q.question_id], source) for q in qs[student]], dtype=float)
        ok_base = np.array([correct(base_by_id[q.question_id].record.text, answers[source][q.question_id], source)
                            for q in qs[student]], dtype=float)
        decision = [decision_value("tbd", q.tbd) for q in qs[student]]
        out[student] = inflation_evidence(f"{source} (100: half a leaked, half b clean)", decision, ok, ok_base, leaked,
                                          n_resamples=n_resamples)
    return out


def demo_evidence(work: Path, *, quick: bool, n_resamples: int) -> dict:
    """The demo's student: true and estimated inflation on members + unseen questions."""
    import numpy as np

    from lm_eval_tbd.app.demo import TASKS, run_demo
    from lm_eval_tbd.core.samples import load_run
    from lm_eval_tbd.core.scores import decision_value
    from lm_eval_tbd.demo import make_problems

    n_questions, epochs = (16, 10) if quick else (96, 60)
    if not (work / "demo.json").is_file():
        run_demo(work, n_questions=n_questions, epochs=epochs)
    answers = {r["id"]: last_number(r["solution"]) for r in make_problems(n_questions + n_questions // 2, seed=0)}
    runs = {m: [q for t in TASKS[:2] for q in load_run(work / f"{m}_run", t).questions] for m in ("student", "base")}
    base_by_id = {q.question_id: q for q in runs["base"]}
    qs = runs["student"]
    ok = np.array([last_number(q.record.text) == answers[q.question_id] for q in qs], dtype=float)
    ok_base = np.array([last_number(base_by_id[q.question_id].record.text) == answers[q.question_id] for q in qs],
                       dtype=float)
    members = np.array([q.label == 1 for q in qs])
    return inflation_evidence(f"demo word problems ({members.sum()} members, {(~members).sum()} unseen)",
                              [decision_value("tbd", q.tbd) for q in qs], ok, ok_base, members, n_resamples=n_resamples)
