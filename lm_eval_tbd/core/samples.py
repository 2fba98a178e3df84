"""Read TBD runs back from an lm-eval ``--output_path`` directory written with ``--log_samples``.

lm-eval writes ``<output_path>/<model>/results_<date>.json`` and
``samples_<task>_<date>.jsonl``. :func:`load_run` picks the newest samples file of a task and
parses every logged generation record into a :class:`~lm_eval_tbd.core.runs.TaskRun`.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

from lm_eval_tbd.core.data import check_label, utf8_error_message
from lm_eval_tbd.core.options import params_from_metadata
from lm_eval_tbd.core.record import GenerationRecord, loads_json
from lm_eval_tbd.core.runs import QuestionResult, TaskRun
from lm_eval_tbd.core.scores import SCORES, TBDParams, score_record

__all__ = ["load_run", "find_tasks", "samples_path"]


def _sample_scores(records, question: str, samples_file: Path) -> tuple:
    """Each sample's own scores under the run's parameters (as far as the run records them), so
    a sampled run keeps every score's spread across samples; () for a single generation."""
    if len(records) < 2:
        return ()
    params = _run_params(samples_file)
    return tuple(score_record(r, params, question=question) for r in records)


@functools.lru_cache(maxsize=64)
def _run_params(samples_file: Path) -> TBDParams:
    """The TBD parameters the run used, from its results file's task config (defaults if absent)."""
    stamp = samples_file.stem.rsplit("_", 1)[-1]
    results = samples_file.parent / f"results_{stamp}.json"
    try:
        configs = json.loads(results.read_text(encoding="utf-8")).get("configs", {})
        metadata = configs[_task_of(samples_file)].get("metadata") or {}
    except (OSError, ValueError, KeyError, AttributeError):
        metadata = {}
    return params_from_metadata({k: v for k, v in metadata.items() if k in ("tbd_tau", "tbd_alpha", "tbd_max_tokens")})


def _samples_files(root: Path, task: str | None = None) -> list[Path]:
    pattern = f"samples_{task}_*.jsonl" if task else "samples_*.jsonl"
    return sorted(root.rglob(pattern))


def _task_of(path: Path) -> str:
    # samples_<task>_<date>.jsonl; dates look like 2026-11-23T13-43-01.123456 (no underscores)
    return path.stem[len("samples_"):].rsplit("_", 1)[0]


def find_tasks(output_path: str | Path) -> list[str]:
    """Task names with TBD samples under ``output_path`` (sorted).

    Told by content, not by name (tasks written by ``make-task`` have any name): a task is a
    TBD task when the first sample of one of its samples files holds a generation record in
    ``resps[0][0]``. An ordinary task's response there is its generated text."""
    by_task: dict[str, list[Path]] = {}
    for path in _samples_files(Path(output_path)):
        by_task.setdefault(_task_of(path), []).append(path)
    return sorted(task for task, files in by_task.items() if any(_holds_records(p) for p in files))


def _holds_records(samples_file: Path) -> bool:
    """Whether the first sample of ``samples_file`` is a TBD sample (False for unreadable files:
    discovery skips them; naming the task with --task reports what is wrong)."""
    try:
        with samples_file.open(encoding="utf-8") as f:
            first = next((line for line in f if line.strip()), None)
        if first is None:
            return False
        GenerationRecord.from_json(json.loads(first)["resps"][0][0])
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return False
    return True


def samples_path(output_path: str | Path, task: str) -> Path:
    """The newest ``samples_<task>_<date>.jsonl`` under ``output_path``, of any task (TBD or not).

    Raises FileNotFoundError naming the directory and task when there is none (was the run made
    with ``--log_samples``?), and ValueError when several models' folders hold runs of ``task``.
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
    return max(files, key=lambda p: (p.name.rsplit("_", 1)[-1], p.stat().st_mtime))


def load_run(output_path: str | Path, task: str) -> TaskRun:
    """The newest logged run of ``task`` under ``output_path`` (see :func:`samples_path`).

    Raises FileNotFoundError naming the directory and task when no samples file exists (was the
    run made with ``--log_samples``?), and ValueError naming file and line for a malformed sample.
    """
    newest = samples_path(output_path, task)
    try:
        questions = _read_samples(newest)
    except UnicodeDecodeError:
        raise ValueError(utf8_error_message(newest)) from None
    if not questions:
        raise ValueError(f"{newest}: no samples")
    labelled = [q for q in questions if q.label is not None]
    if 0 < len(labelled) < len(questions):
        first = next(q for q in questions if q.label is None)
        raise ValueError(f"{newest}: {len(labelled)} of {len(questions)} documents have a 'label' (first without: "
                         f"doc_id {first.doc_id}); a run's questions are labelled all or none")
    questions.sort(key=lambda q: q.doc_id)
    return TaskRun(task, newest, tuple(questions))


def _read_samples(path: Path) -> list[QuestionResult]:
    """Every sample of one samples file, in file order; ValueError naming the line of a bad one,
    and of a document logged twice (lm-eval logs each document once, its samples together)."""
    questions, first_line = [], {}
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            where = f"{path}:{lineno}"
            try:
                sample = loads_json(line)
                doc_id = int(sample["doc_id"])
                if doc_id in first_line:
                    raise _Repeated(f"{where}: doc_id {doc_id} is also the document of line {first_line[doc_id]}; "
                                    "lm-eval logs each document once (were lines copied or files joined?)")
                first_line[doc_id] = lineno
                # One response per sample (sampled decoding with tbd_samples k logs k of them).
                records = tuple(GenerationRecord.from_json(resp[0]) for resp in sample["resps"])
                if not records:
                    raise ValueError("no responses")
                doc = sample["doc"]
                question = doc.get("question", "")
                questions.append(QuestionResult(
                    doc_id=doc_id,
                    question_id=str(doc.get("id", sample["doc_id"])),
                    question=question,
                    label=check_label(doc.get("label"), "doc"),
                    tbd=float(sample["tbd"]),
                    record=records[0],
                    scores={k: float(sample[k]) for k in SCORES if k in sample},
                    records=records,
                    sample_scores=_sample_scores(records, question, path),
                ))
            except _Repeated as err:
                raise ValueError(str(err)) from None
            except (KeyError, IndexError, TypeError, ValueError) as err:
                raise ValueError(f"{where}: not a TBD sample ({type(err).__name__}: {err})") from None
    return questions


class _Repeated(Exception):
    """A document logged twice (its message is the whole error)."""
