"""Scores from generations logged outside lm-eval: any backend or closed API that recorded the
log-probability of each generated token, re-scored without re-running generation.

One JSON object per line of a JSON Lines file, in any of these shapes:

- an OpenAI Batch API output line: ``{"custom_id": ..., "response": {"status_code": 200, "body":
  <chat or completions response>}}`` (``custom_id`` is the question id);
- ``{"id"?, "question"?, "label"?, "response": <chat or completions response>}``;
- a bare chat or completions response ``{"choices": [...]}``;
- ``{"id"?, "question"?, "label"?, "logprobs": [float, ...], "tokens"?: [...], "token_ids"?: [...],
  "text"?: str, "finish_reason"?: "eos" | "length"}`` for anything else (vLLM outputs, TGI
  ``details``, your own loop).

Questions and labels may also come from a question file (``id``, ``question``, ``label``: the
``tbd_jsonl`` format) joined on ``id``; ids must be unique on both sides, and a label given on
both sides must agree. The generation must be greedy and start from the question
alone, as the protocol says; this module cannot check how it was made.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from lm_eval_tbd.core.data import _check_label, iter_json_objects, read_question_lines
from lm_eval_tbd.core.openai_format import record_from_choice
from lm_eval_tbd.core.record import GenerationRecord
from lm_eval_tbd.core.runs import QuestionResult, TaskRun
from lm_eval_tbd.core.scores import TBDParams, score_record

__all__ = ["load_logged_generations", "record_from_logged"]

_RECORD_FIELDS = {"logprobs", "tokens", "token_ids", "text", "finish_reason"}
_META_FIELDS = {"id", "question", "label"}


def _response_body(line: Mapping, where: str) -> Mapping | None:
    response = line.get("response")
    if response is None and "choices" in line:
        return line
    if isinstance(response, Mapping) and "body" in response:  # OpenAI Batch API output
        status = response.get("status_code", 200)
        if status != 200:
            raise ValueError(f"{where}: the logged request failed (status_code {status}); it cannot be scored")
        return response["body"]
    if response is not None and not isinstance(response, Mapping):
        raise ValueError(f"{where}: 'response' must be a JSON object, got {type(response).__name__}")
    return response


def record_from_logged(line: Mapping, where: str = "logged generation") -> GenerationRecord:
    """The generation record of one logged line (any shape in the module docstring).

    Raises ``ValueError`` (``MissingLogprobsError`` for a response without log-probs) naming
    ``where`` and the missing or malformed field.
    """
    body = _response_body(line, where)
    if body is not None:
        choices = body.get("choices")
        if not choices:
            raise ValueError(f"{where}: response has no 'choices'")
        if len(choices) > 1:
            raise ValueError(f"{where}: response has {len(choices)} choices; TBD scores one greedy generation (n=1)")
        return record_from_choice(choices[0], where=where)
    if "logprobs" not in line:
        raise ValueError(f"{where}: neither 'response', 'choices' nor 'logprobs'; see lm_eval_tbd.core.logs for the formats")
    unknown = set(line) - _RECORD_FIELDS - _META_FIELDS
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {sorted(unknown)}; known: {sorted(_RECORD_FIELDS | _META_FIELDS)}")
    logprobs = line["logprobs"]
    if not isinstance(logprobs, list):
        raise ValueError(f"{where}: 'logprobs' must be a list of numbers")
    ids, tokens = line.get("token_ids"), line.get("tokens")
    try:
        record = GenerationRecord(
            token_ids=ids,
            tokens=tokens if tokens is not None or ids is not None else [""] * len(logprobs),
            logprobs=logprobs,
            finish_reason=line.get("finish_reason", "length"),
            text=line.get("text", ""),
            backend="logged",
        )
    except ValueError as err:
        raise ValueError(f"{where}: {err}") from None
    return record


def _question_index(path: Path) -> dict[str, tuple[str, dict]]:
    """id -> ("FILE:LINE", row) of a question file (whose ids are unique, or it is refused)."""
    return {row["id"]: (where, row) for where, row in read_question_lines(path)}


def _joined_label(line_label: int | None, where: str, qid: str, row: dict, row_where: str) -> int | None:
    """The question's label when both the logged line and the question file may give one: the
    same label, or the one given; two different labels are an error (taking either would
    silently flip members and non-members, and the AUC with them)."""
    if line_label is None:
        return row["label"]
    if row["label"] is not None and row["label"] != line_label:
        raise ValueError(f"{where}: id {qid!r} has label {line_label}, but {row_where} gives it label {row['label']}; "
                         "the logged generations and the question file contradict each other")
    return line_label


def load_logged_generations(path: str | Path, *, questions: str | Path | None = None,
                            params: TBDParams | None = None, task: str | None = None) -> TaskRun:
    """Every logged generation of ``path`` scored with ``params`` (default: the paper's), as a
    :class:`~lm_eval_tbd.core.runs.TaskRun` the report and the statistics take.

    ``questions`` (a question file) supplies question text and labels by ``id``; every logged id
    must be in it, and a label on a logged line must agree with the file's (a contradiction is a
    ValueError naming both lines and the id). Without it, ids, questions and labels come from the
    lines themselves. Ids must be unique in both files. A line
    without an id gets its 0-based position among the generations, as question files number
    rows without one. TBD: LOWER = more likely seen.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"logged generations file not found: {path}")
    params = params or TBDParams()
    index = _question_index(Path(questions)) if questions is not None else None
    results, seen = [], {}
    for where, line in iter_json_objects(path):
        record = record_from_logged(line, where)
        # A bare response's own "id" (cmpl-...) names the request, not the question.
        own_id = None if "choices" in line else line.get("id")
        qid = str(line.get("custom_id", own_id if own_id is not None else len(results)))
        if qid in seen:
            raise ValueError(f"{where}: question id {qid!r} appears twice (also on line {seen[qid].rsplit(':', 1)[1]})")
        seen[qid] = where
        question, label = line.get("question", ""), _check_label(line.get("label"), where)
        if index is not None:
            if qid not in index:
                raise ValueError(f"{where}: id {qid!r} is not in the question file {questions}")
            row_where, row = index[qid]
            # The question file's text wins: a logged "question" may be the templated prompt.
            question, label = row["question"], _joined_label(label, where, qid, row, row_where)
        try:
            scores = score_record(record, params, question=question or None)
        except ValueError as err:
            raise ValueError(f"{where}: {err}") from None
        results.append(QuestionResult(len(results), qid, question, label, scores["tbd"], record, scores))
    if not results:
        raise ValueError(f"{path}: no logged generations")
    labels = {q.label is None for q in results}
    if len(labels) > 1:
        raise ValueError(f"{path}: some generations have a label and others do not; label all or none")
    return TaskRun(task or path.stem, path, tuple(results), params)
