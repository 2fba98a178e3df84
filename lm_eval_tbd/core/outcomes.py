"""The ordinary task beside a TBD task: reading its per-question correctness back from lm-eval's
``--log_samples`` files, finding which ordinary task holds a TBD task's questions, and joining
the two by question text.

``lm_eval --tasks aime24,tbd_aime24 --log_samples`` writes ``samples_aime24_<date>.jsonl`` (each
line: ``doc_id``, ``doc``, ``filter``, ``metrics`` (the metric names) and each metric's value,
e.g. ``"exact_match": 1.0``) beside ``samples_tbd_aime24_<date>.jsonl``. A task with several
filters (gsm8k: ``strict-match`` and ``flexible-extract``) logs each document once per filter.

The two tasks are joined by content: the normalised question text (:func:`normalise_question`)
of the TBD task's question and of the ordinary task's ``doc`` (its ``question``, ``problem``,
``Question`` or ``Problem`` field), never by ``doc_id`` alone, since two tasks may load the same
questions in different orders or with different ``--limit``.

Example::

    outcomes = load_outcomes("out/", "aime24")              # exact_match per document
    joined = join_questions(load_run("out/", "tbd_aime24"), outcomes)
    joined.matched, joined.describe()                      # 30, "30 of 30 tbd_aime24 questions ..."
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from lm_eval_tbd.core.compat import run_stamp
from lm_eval_tbd.core.data import numbered_lines
from lm_eval_tbd.core.record import loads_json
from lm_eval_tbd.core.runs import TaskRun
from lm_eval_tbd.core.samples import _holds_records, _task_of, samples_path

__all__ = ["ACCURACY_TASKS", "QUESTION_FIELDS", "PairingError", "Outcome", "TaskOutcomes", "Join",
           "normalise_question", "parse_task_metric", "ordinary_candidates", "find_ordinary_task",
           "load_outcomes", "join_questions", "MIN_MATCHED_SHARE", "Paired", "pair_run"]

#: The ordinary lm-eval task(s) holding each packaged TBD task's questions. Any other ``tbd_X`` is
#: paired with a task named ``X`` when the run holds one; ``--accuracy`` sets any other pairing.
ACCURACY_TASKS = {
    "tbd_aime24": ("aime24",),
    "tbd_aime25": ("aime25",),
    "tbd_math500": ("minerva_math500", "hendrycks_math500"),
    "tbd_gsm8k": ("gsm8k",),
}

#: Where an ordinary task's ``doc`` holds the question (the first of these that is a non-empty string).
QUESTION_FIELDS = ("question", "problem", "Question", "Problem")

#: A join is refused when fewer than this share of the smaller side's questions have a twin.
MIN_MATCHED_SHARE = 0.5


class PairingError(ValueError):
    """A TBD task and an ordinary task that cannot be joined (none or several candidates, questions
    that do not match, an unreadable metric); the message names both tasks."""


def normalise_question(text: str) -> str:
    """The text two tasks' copies of one question share: Unicode NFKC, case-folded, every run of
    whitespace one space, stripped. ``normalise_question(" What  is\\n2+2? ")`` is ``"what is 2+2?"``."""
    return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", text)).strip().casefold()


def parse_task_metric(spec: str) -> tuple[str, str | None]:
    """``"TASK[:METRIC]"`` -> ``(TASK, METRIC or None)``. METRIC is a metric lm-eval logged, alone
    (``exact_match``) or with its filter as lm-eval's results name it (``exact_match,strict-match``)."""
    task, _, metric = spec.partition(":")
    task, metric = task.strip(), metric.strip()
    if not task or (":" in spec and not metric):
        raise ValueError(f"{spec!r}: expected TASK or TASK:METRIC (e.g. gsm8k:exact_match,strict-match)")
    return task, metric or None


def ordinary_candidates(tbd_task: str) -> tuple[str, ...]:
    """The ordinary tasks that may hold ``tbd_task``'s questions, by name (:data:`ACCURACY_TASKS`,
    else ``X`` for ``tbd_X``); () when there is no such name."""
    if tbd_task in ACCURACY_TASKS:
        return ACCURACY_TASKS[tbd_task]
    return (tbd_task[len("tbd_"):],) if tbd_task.startswith("tbd_") and len(tbd_task) > len("tbd_") else ()


def _has_samples(folder: Path, task: str) -> bool:
    return any(_task_of(p) == task for p in folder.glob(f"samples_{task}_*.jsonl"))


def find_ordinary_task(folder: str | Path, tbd_task: str) -> str | None:
    """The ordinary task of ``folder`` (one model's lm-eval output folder, the TBD run's) that
    pairs with ``tbd_task`` by name (:func:`ordinary_candidates`); None when the folder holds none.

    Raises :class:`PairingError` when it holds several (``minerva_math500`` and
    ``hendrycks_math500`` for ``tbd_math500``): which one is meant must be said."""
    found = [t for t in ordinary_candidates(tbd_task) if _has_samples(Path(folder), t)]
    if len(found) > 1:
        raise PairingError(f"ambiguous pairing: {tbd_task} could be joined with {' or '.join(found)}, all run in "
                           f"{folder}; choose one with --accuracy {tbd_task}={found[0]} (gate: accuracy_task)")
    return found[0] if found else None


@dataclass(frozen=True)
class Outcome:
    """One document of an ordinary task: its question text and the metric's value (1.0 correct and
    0.0 wrong for ``exact_match``; the mean of these values is the task's accuracy)."""

    doc_id: int
    question: str
    value: float


@dataclass(frozen=True)
class TaskOutcomes:
    """One ordinary task's logged outcomes under one metric and filter."""

    task: str
    samples_file: Path
    metric: str
    filter: str
    outcomes: tuple[Outcome, ...]
    # the other filters the file logs (not used), and whether the filter was asked for by name
    other_filters: tuple[str, ...] = field(default=())
    filter_given: bool = False

    @property
    def metric_key(self) -> str:
        """The metric as lm-eval's results name it: ``exact_match,none``."""
        return f"{self.metric},{self.filter}"


def _number(value) -> float | None:
    """A metric value as a float, or None when it is not a finite number (lm-eval logs tuples for
    corpus metrics such as bleu)."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    return None


def _question_text(doc, where: str) -> str:
    if not isinstance(doc, dict):
        raise ValueError(f"{where}: 'doc' is not an object")
    for name in QUESTION_FIELDS:
        if isinstance(doc.get(name), str) and doc[name].strip():
            return doc[name]
    raise ValueError(f"{where}: the document has no question text under {', '.join(QUESTION_FIELDS)} "
                     f"(its fields: {', '.join(sorted(map(str, doc))) or 'none'})")


def load_outcomes(output_path: str | Path, task: str, *, metric: str | None = None) -> TaskOutcomes:
    """The newest logged run of the ordinary ``task`` under ``output_path``: each document's
    question text and its value of ``metric``.

    ``metric``: ``NAME`` or ``NAME,FILTER`` (lm-eval's spelling in results files); default: the
    first metric the file logs whose value is a number, under the first filter it logs.

    Raises FileNotFoundError naming the folder and task when no samples file exists; ValueError
    naming file and line for a malformed sample, a document without question text, a document
    logged twice under one filter, or a metric not logged or not numeric; PairingError when
    ``task`` is a TBD task (its samples hold generation records, not correctness).
    """
    path = samples_path(output_path, task)
    if _holds_records(path):
        raise PairingError(f"{task} ({path}) is a TBD task: its samples hold generation records, not correctness; "
                           "pair a TBD task with the ordinary task that ran the same questions")
    name, _, wanted_filter = (metric or "").partition(",")
    samples = []
    for where, line in numbered_lines(path):
        try:
            sample = loads_json(line)
            samples.append((where, int(sample["doc_id"]), str(sample.get("filter", "none")), sample))
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"{where}: not an lm-eval sample ({type(err).__name__}: {err})") from None
    if not samples:
        raise ValueError(f"{path}: no samples")
    filters = list(dict.fromkeys(f for _, _, f, _ in samples))
    chosen = wanted_filter or filters[0]
    if chosen not in filters:
        raise ValueError(f"{task}: metric {metric!r}: no filter {chosen!r} in {path} (its filters: {', '.join(filters)})")
    kept = [s for s in samples if s[2] == chosen]
    logged = kept[0][3].get("metrics") or []
    if not name:
        name = next((m for m in logged if _number(kept[0][3].get(m)) is not None), "")
        if not name:
            raise ValueError(f"{task}: {path} logs no numeric metric per document (metrics: {', '.join(map(str, logged)) or 'none'}); "
                             "name one with TASK:METRIC")
    outcomes, first_line = [], {}
    for where, doc_id, _, sample in kept:
        if doc_id in first_line:
            raise ValueError(f"{where}: doc_id {doc_id} is also the document of {first_line[doc_id]} (filter {chosen})")
        first_line[doc_id] = where
        if name not in sample:
            raise ValueError(f"{where}: no metric {name!r} (logged: {', '.join(map(str, sample.get('metrics') or [])) or 'none'})")
        value = _number(sample[name])
        if value is None:
            raise ValueError(f"{where}: metric {name!r} is {sample[name]!r}, not a number")
        outcomes.append(Outcome(doc_id, _question_text(sample.get("doc"), where), value))
    outcomes.sort(key=lambda o: o.doc_id)
    return TaskOutcomes(task, path, name, chosen, tuple(outcomes), tuple(f for f in filters if f != chosen),
                        bool(wanted_filter))


@dataclass(frozen=True)
class Join:
    """A TBD run and an ordinary task's outcomes joined by question text: ``pairs`` holds
    ``(index into run.questions, index into outcomes.outcomes)``, in the TBD run's order."""

    tbd_task: str
    task: str
    pairs: tuple[tuple[int, int], ...]
    n_tbd: int
    n_task: int
    unmatched_tbd: tuple[str, ...]  # question ids of the TBD run without a twin
    unmatched_task: tuple[int, ...]  # doc ids of the ordinary task without a twin

    @property
    def matched(self) -> int:
        return len(self.pairs)

    @property
    def partial(self) -> bool:
        """Whether either side has questions the other lacks."""
        return self.matched < max(self.n_tbd, self.n_task)

    def describe(self) -> str:
        return (f"{self.matched} of {self.n_tbd} {self.tbd_task} questions matched {self.matched} of "
                f"{self.n_task} {self.task} documents by question text")

    def to_json(self) -> dict:
        return {"matched": self.matched, "n_tbd": self.n_tbd, "n_task": self.n_task,
                "unmatched_tbd": list(self.unmatched_tbd), "unmatched_task": list(self.unmatched_task)}


def join_questions(run: TaskRun, outcomes: TaskOutcomes, *, min_share: float = MIN_MATCHED_SHARE) -> Join:
    """Join ``run``'s questions with ``outcomes``' documents by normalised question text.

    A question both sides hold k times is paired k times, in doc order. Raises
    :class:`PairingError` naming both tasks when fewer than ``min_share`` of the smaller side's
    questions have a twin (none at all included): they are not the same question set.
    """
    by_text: dict[str, list[int]] = {}
    for j, o in enumerate(outcomes.outcomes):
        by_text.setdefault(normalise_question(o.question), []).append(j)
    pairs, unmatched = [], []
    for i, q in enumerate(run.questions):
        twins = by_text.get(normalise_question(q.question))
        if twins:
            pairs.append((i, twins.pop(0)))
        else:
            unmatched.append(q.question_id)
    used = {j for _, j in pairs}
    joined = Join(run.task, outcomes.task, tuple(pairs), len(run.questions), len(outcomes.outcomes), tuple(unmatched),
                  tuple(o.doc_id for j, o in enumerate(outcomes.outcomes) if j not in used))
    smaller = min(joined.n_tbd, joined.n_task)
    if joined.matched == 0 or joined.matched < min_share * smaller:
        example_tbd = run.questions[0].question if run.questions else ""
        example_task = outcomes.outcomes[0].question if outcomes.outcomes else ""
        raise PairingError(f"mismatched pairing: {run.task} and {outcomes.task} do not hold the same questions: "
                           f"{joined.describe()} (at least {min_share:.0%} of the smaller set must match); e.g. "
                           f"{run.task} asks {_short(example_tbd)!r}, {outcomes.task} asks {_short(example_task)!r} "
                           f"({run.samples_file}, {outcomes.samples_file})")
    return joined


def _short(text: str, width: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[:width - 1] + "…"


@dataclass(frozen=True)
class Paired:
    """A TBD run's ordinary task, read and joined (:func:`pair_run`); with a base model's folder,
    the base model's outcomes of the same task joined with the same run, or ``base_note`` saying
    why there are none."""

    outcomes: TaskOutcomes
    join: Join
    base_outcomes: TaskOutcomes | None = None
    base_join: Join | None = None
    base_note: str | None = None
    # the ordinary task's samples come from another lm_eval run (date) than the TBD task's
    other_run: str | None = None


def pair_run(run: TaskRun, spec: str | None = None, *, base_path: str | Path | None = None) -> Paired | None:
    """The ordinary task holding ``run``'s questions, from the folder of ``run``'s samples file
    (the same model's run): ``spec`` (``"TASK[:METRIC]"``) names it, else it is found by name
    (:func:`find_ordinary_task`); None when none is found and ``spec`` names none.

    ``base_path``: the base model's lm-eval output folder; its run of the same ordinary task is
    joined with ``run`` too (``base_note`` says why not when it holds none).

    Raises :class:`PairingError` naming both tasks for an ambiguous or mismatched pairing, a
    named task that was not run (FileNotFoundError's message), or a TBD task named as the
    ordinary one; ValueError for unreadable samples.
    """
    folder = Path(run.samples_file).parent
    if spec is not None:
        task, metric = parse_task_metric(spec)
    else:
        task, metric = find_ordinary_task(folder, run.task), None
        if task is None:
            return None
    try:
        outcomes = load_outcomes(folder, task, metric=metric)
    except FileNotFoundError as err:
        raise PairingError(f"{run.task} paired with {task}, but {err}") from None
    join = join_questions(run, outcomes)
    stamps = run_stamp(run.samples_file), run_stamp(outcomes.samples_file)
    other = (f"{task}'s newest run ({stamps[1]}) is not {run.task}'s ({stamps[0]}): the two come from different "
             "lm_eval runs" if None not in stamps and stamps[0] != stamps[1] else None)
    if base_path is None:
        return Paired(outcomes, join, other_run=other)
    try:
        base = load_outcomes(base_path, task, metric=outcomes.metric_key)
    except FileNotFoundError:
        return Paired(outcomes, join, base_note=f"the base model's folder {base_path} holds no run of {task}",
                      other_run=other)
    try:
        base_join = join_questions(run, base)
    except PairingError as err:
        raise PairingError(f"the base model's run ({base_path}): {err}") from None
    return Paired(outcomes, join, base, base_join, other_run=other)
