"""Read TBD results back from an lm-eval ``--output_path`` directory written with ``--log_samples``.

lm-eval writes ``<output_path>/<model>/results_<date>.json`` and
``samples_<task>_<date>.jsonl``. :func:`load_run` picks the newest samples file of a task, parses
every logged generation record, and can re-score it with other TBD parameters without the model.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from lm_eval_tbd.record import GenerationRecord
from lm_eval_tbd.scores import SCORES, TBDParams
from lm_eval_tbd.scoring import score_record

__all__ = ["QuestionResult", "TaskRun", "load_run", "find_tasks"]


@dataclass(frozen=True)
class QuestionResult:
    """One question's outcome. ``tbd``: LOWER = more likely seen."""

    doc_id: int
    question_id: str
    question: str
    label: int | None
    tbd: float
    record: GenerationRecord
    scores: dict = None  # every score logged for this question (see lm_eval_tbd.scores.SCORES)


@dataclass(frozen=True)
class TaskRun:
    task: str
    samples_file: Path
    questions: tuple[QuestionResult, ...]

    @property
    def labelled(self) -> bool:
        return any(q.label is not None for q in self.questions)

    def scores(self):
        import numpy as np

        return np.array([q.tbd for q in self.questions], dtype=float)

    def rescore(self, params: TBDParams) -> "TaskRun":
        """The same run with TBD recomputed from the logged log-probabilities under ``params``."""
        qs = []
        for q in self.questions:
            scores = score_record(q.record, params, question=q.question)
            qs.append(QuestionResult(q.doc_id, q.question_id, q.question, q.label, scores["tbd"], q.record, scores))
        return TaskRun(self.task, self.samples_file, tuple(qs))

    def score_names(self) -> list[str]:
        """Scores every question has (in SCORES order), e.g. for a comparison table."""
        return [n for n in SCORES if all(q.scores and n in q.scores for q in self.questions)]

    def score_values(self, name: str):
        import numpy as np

        return np.array([q.scores[name] for q in self.questions], dtype=float)


def _samples_files(root: Path, task: str | None = None) -> list[Path]:
    pattern = f"samples_{task}_*.jsonl" if task else "samples_*.jsonl"
    return sorted(root.rglob(pattern))


def _task_of(path: Path) -> str:
    # samples_<task>_<date>.jsonl; dates look like 2026-11-23T13-43-01.123456 (no underscores)
    return path.stem[len("samples_"):].rsplit("_", 1)[0]


def find_tasks(output_path: str | Path) -> list[str]:
    """Task names with TBD samples under ``output_path`` (sorted)."""
    root = Path(output_path)
    return sorted({_task_of(p) for p in _samples_files(root) if _task_of(p).startswith("tbd")})


def load_run(output_path: str | Path, task: str) -> TaskRun:
    """The newest logged run of ``task`` under ``output_path``.

    Raises FileNotFoundError naming the directory and task when no samples file exists (was the
    run made with ``--log_samples``?), and ValueError naming file and line for a malformed sample.
    """
    root = Path(output_path)
    files = [p for p in _samples_files(root, task) if _task_of(p) == task]
    if not files:
        raise FileNotFoundError(
            f"no samples for task {task!r} under {root} (run lm_eval with --log_samples --output_path {root})"
        )
    folders = sorted({p.parent for p in files})
    if len(folders) > 1:
        # lm-eval writes one folder per model: picking the newest file across them could gate
        # another model than the one meant.
        raise ValueError(f"runs of task {task!r} from several models under {root}: "
                         f"{', '.join(str(f.relative_to(root)) for f in folders)}; point at one model's folder")
    newest = max(files, key=lambda p: (p.name.rsplit("_", 1)[-1], p.stat().st_mtime))
    questions = []
    with newest.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            where = f"{newest}:{lineno}"
            try:
                sample = json.loads(line)
                record = GenerationRecord.from_json(sample["resps"][0][0])
                doc = sample["doc"]
                questions.append(QuestionResult(
                    doc_id=int(sample["doc_id"]),
                    question_id=str(doc.get("id", sample["doc_id"])),
                    question=doc.get("question", ""),
                    label=doc.get("label"),
                    tbd=float(sample["tbd"]),
                    record=record,
                    scores={k: float(sample[k]) for k in SCORES if k in sample},
                ))
            except (KeyError, IndexError, TypeError, ValueError) as err:
                raise ValueError(f"{where}: not a TBD sample ({type(err).__name__}: {err})") from None
    if not questions:
        raise ValueError(f"{newest}: no samples")
    questions.sort(key=lambda q: q.doc_id)
    return TaskRun(task, newest, tuple(questions))
