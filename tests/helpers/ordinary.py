"""lm-eval output folders holding a TBD task and an ordinary task of the same run, written in
lm-eval's --log_samples layout, for the accuracy tests (lm_eval_tbd.core.outcomes / accuracy,
report's accuracy section, the gate's max_accuracy_gap). The end-to-end test makes them with the
real lm_eval instead."""

from __future__ import annotations

import json
from pathlib import Path

from lm_eval_tbd.core.record import GenerationRecord
from tests.helpers.runs import STAMP, write_results

__all__ = ["write_tbd", "write_ordinary", "questions"]

RECORD = GenerationRecord(token_ids=list(range(30)), logprobs=[-0.5] * 30, finish_reason="length").to_json()


def questions(n: int, prefix: str = "What is") -> list[str]:
    return [f"{prefix} {i} + {i * 7 % 11}?" for i in range(n)]


def write_tbd(folder: Path, task: str, texts: list[str], tbds: list[float], *, labels=None, stamp: str = STAMP) -> Path:
    """``samples_<task>_<stamp>.jsonl``: one TBD sample per question with its logged ``tbd``, and
    the task's entry in the run's results file."""
    folder.mkdir(parents=True, exist_ok=True)
    write_results(folder, task, stamp=stamp)
    lines = []
    for i, (text, tbd) in enumerate(zip(texts, tbds)):
        doc = {"id": f"{task}-{i}", "question": text}
        if labels is not None:
            doc["label"] = labels[i]
        lines.append({"doc_id": i, "doc": doc, "resps": [[RECORD]], "filtered_resps": [RECORD], "tbd": tbd})
    path = folder / f"samples_{task}_{stamp}.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return path


def write_ordinary(folder: Path, task: str, texts: list[str], values, *, metric: str = "exact_match",
                   filters=("none",), field: str = "question", stamp: str = STAMP, order=None) -> Path:
    """``samples_<task>_<stamp>.jsonl`` of an ordinary generate_until task as lm-eval 0.4.13 logs
    it: per document and filter, ``doc``, ``target``, ``resps``, ``filter``, ``metrics`` (the
    names) and each metric's value. ``values``: per question, or per filter a list per question.
    ``order``: the doc order (default as given)."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for k, name in enumerate(filters):
        per_q = values[k] if isinstance(values[0], (list, tuple)) else values
        for i in (order or range(len(texts))):
            lines.append({"doc_id": i, "doc": {field: texts[i], "answer": "4"}, "target": "4",
                          "arguments": [["Question: ...", {"until": ["Question:"]}]], "resps": [["The answer is 4."]],
                          "filtered_resps": ["4"], "filter": name, "metrics": [metric],
                          "doc_hash": "x", "prompt_hash": "y", "target_hash": "z", metric: per_q[i]})
    path = folder / f"samples_{task}_{stamp}.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return path
