"""Apply a benchmark's threshold to its per-question TBD scores (lower TBD = more seen-like)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from pytest_contam.config import Threshold

__all__ = ["GateResult", "evaluate", "missing"]


@dataclass(frozen=True)
class GateResult:
    benchmark: str
    passed: bool
    n: int
    mean: float | None
    median: float | None
    n_flagged: int
    flagged_fraction: float | None
    score_cutoff: float
    max_flagged_fraction: float
    top_flagged: tuple  # ((question id, TBD, question text), ...) lowest TBD first
    samples_file: str | None = None
    error: str | None = None

    def message(self) -> str:
        """The failure text: threshold, measured value and the most suspicious questions."""
        if self.error:
            return f"{self.benchmark}: {self.error}"
        lines = [
            f"{self.benchmark}: {self.n_flagged} of {self.n} questions ({self.flagged_fraction:.1%}) have TBD below "
            f"score_cutoff {self.score_cutoff:g}; max_flagged_fraction is {self.max_flagged_fraction:.1%} "
            f"(mean TBD {self.mean:.4f}, median {self.median:.4f}; lower = more likely seen)",
        ]
        if self.top_flagged:
            lines.append("most suspicious flagged questions (lowest TBD first):")
            lines += [f"  {qid:>12}  TBD {score:.4f}  {text}" for qid, score, text in self.top_flagged]
        if self.samples_file:
            lines.append(f"scores from {self.samples_file}")
        return "\n".join(lines)

    def to_json(self) -> dict:
        d = asdict(self)
        d["top_flagged"] = [{"id": q, "tbd": s, "question": t} for q, s, t in self.top_flagged]
        return d


def _snippet(text: str, width: int = 70) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def evaluate(threshold: Threshold, run, top: int = 5) -> GateResult:
    """Gate one benchmark's run (an ``lm_eval_tbd.results.TaskRun``)."""
    import numpy as np

    scores = run.scores()
    flagged = sorted((q for q in run.questions if q.tbd < threshold.score_cutoff), key=lambda q: (q.tbd, q.doc_id))
    fraction = len(flagged) / len(scores)
    return GateResult(
        benchmark=threshold.benchmark,
        passed=fraction <= threshold.max_flagged_fraction,
        n=len(scores),
        mean=float(scores.mean()),
        median=float(np.median(scores)),
        n_flagged=len(flagged),
        flagged_fraction=fraction,
        score_cutoff=threshold.score_cutoff,
        max_flagged_fraction=threshold.max_flagged_fraction,
        top_flagged=tuple((q.question_id, q.tbd, _snippet(q.question)) for q in flagged[:top]),
        samples_file=str(run.samples_file),
    )


def missing(threshold: Threshold, error: str) -> GateResult:
    """A configured benchmark without results: a failure, never a silent pass."""
    return GateResult(threshold.benchmark, False, 0, None, None, 0, None, threshold.score_cutoff,
                      threshold.max_flagged_fraction, (), None, error)
