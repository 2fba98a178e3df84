"""``lm-eval-tbd report`` on lm-eval output folders built here: task discovery, audit mode
(--reference), plots (--plot) and figures as JSON (--json). No model, no shared data."""

from __future__ import annotations

import json
import math

import pytest

from lm_eval_tbd.cli import main
from lm_eval_tbd.record import GenerationRecord
from lm_eval_tbd.results import find_tasks, load_run
from lm_eval_tbd.scores import TBDParams
from lm_eval_tbd.scoring import score_record

STAMP = "2026-01-01T00-00-00.000000"


def write_run(root, task, probs, labels=None, model="org__model"):
    """A samples file as lm-eval writes it with --log_samples: one line per question whose
    ``resps[0][0]`` is the generation record (each question generates the tokens of one row of
    ``probs``), with every score under the paper's parameters beside it."""
    folder = root / model
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for i, row in enumerate(probs):
        record = GenerationRecord(token_ids=list(range(len(row))), logprobs=[math.log(p) for p in row],
                                  finish_reason="length", text="x" * len(row))
        doc = {"id": f"{task}-{i}", "question": f"question {i} of {task}"}
        if labels is not None:
            doc["label"] = labels[i]
        lines.append({"doc_id": i, "doc": doc, "resps": [[record.to_json()]], "filtered_resps": [record.to_json()],
                      **score_record(record, TBDParams())})
    (folder / f"samples_{task}_{STAMP}.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    return root


def write_plain_run(root, task, model="org__model"):
    """An ordinary generate_until task's samples: text responses."""
    folder = root / model
    folder.mkdir(parents=True, exist_ok=True)
    line = {"doc_id": 0, "doc": {"question": "Q?"}, "resps": [["The answer is 4."]], "exact_match": 0.0}
    (folder / f"samples_{task}_{STAMP}.jsonl").write_text(json.dumps(line) + "\n")


SEEN = [[0.99, 0.98, 0.97]] * 4  # near-deterministic: low TBD
UNSEEN = [[0.6, 0.4, 0.5], [0.3, 0.7, 0.5], [0.5, 0.5, 0.5], [0.45, 0.55, 0.35]]


def test_tasks_are_found_by_content_not_by_name(tmp_path, capsys):
    # after `make-task my_heldout`, report said "no TBD samples" (it looked for names tbd*)
    write_run(tmp_path, "my_heldout", UNSEEN)
    write_run(tmp_path, "tbd_aime24", SEEN)
    write_plain_run(tmp_path, "aime24")
    write_plain_run(tmp_path, "tbd_looks_like_one")
    assert find_tasks(tmp_path) == ["my_heldout", "tbd_aime24"]
    assert main(["report", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "TBD contamination: my_heldout" in out and "TBD contamination: tbd_aime24" in out
    assert "aime24 " not in out.replace("tbd_aime24", "")


def test_no_tbd_samples_is_still_an_error(tmp_path, capsys):
    write_plain_run(tmp_path, "aime24")
    assert main(["report", str(tmp_path)]) == 2
    assert "no TBD samples" in capsys.readouterr().out


def test_report_with_a_single_member(tmp_path, capsys):
    # scipy's "two or more observations" error ended the report
    write_run(tmp_path, "mine", SEEN[:1] + UNSEEN, labels=[1, 0, 0, 0, 0])
    assert main(["report", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "ROC AUC" in out and "1.000" in out and "No confidence intervals" in out


def test_samples_file_that_is_not_utf8_names_the_line(tmp_path, capsys):
    write_run(tmp_path, "mine", UNSEEN)
    path = next(tmp_path.rglob("samples_mine_*.jsonl"))
    path.write_bytes(path.read_bytes() + b'{"doc_id": 9, "doc": {"question": "\xff"}}\n')
    assert main(["report", str(tmp_path), "--task", "mine"]) == 2
    assert f"{path}:5: not valid UTF-8" in capsys.readouterr().err
