"""Synthetic labelled runs (lm_eval_tbd.core.runs.TaskRun) with reference log-probs, for the tests
of the combined detector: in lm_eval_tbd.core.combine, through the CLI and through the gate; and
lm-eval's files of a run (samples and results) written in its layout."""

import json
from pathlib import Path

import numpy as np

from lm_eval_tbd.core.record import GenerationRecord
from lm_eval_tbd.core.runs import QuestionResult, TaskRun
from lm_eval_tbd.core.scores import TBDParams, score_record

__all__ = ["make_run", "write_results", "write_samples", "STAMP"]

STAMP = "2026-01-01T00-00-00.000000"


def make_run(n=40, seed=0, separation=1.0):
    """Members' generated tokens are more probable under the student than under the reference."""
    rng = np.random.default_rng(seed)
    qs = []
    for i in range(n):
        label = i % 2
        p = np.clip(rng.uniform(0.3, 0.95, 12) + label * 0.04 * separation, 0.01, 0.999)
        q = np.clip(p - label * 0.2 * separation + rng.normal(0, 0.05, 12), 0.01, 0.999)
        rec = GenerationRecord(token_ids=list(range(12)), logprobs=np.log(p).tolist(), finish_reason="length",
                               ref_logprobs=np.log(q).tolist())
        scores = score_record(rec, TBDParams())
        qs.append(QuestionResult(i, f"q{i}", f"Q{i}", label, scores["tbd"], rec, scores))
    return TaskRun("calibration", None, tuple(qs))


def write_results(folder: Path, task: str, *, stamp: str = STAMP, metadata: dict | None = None, model: str = "hf",
                  model_args="pretrained=org/model,dtype=float32", chat_template: str | None = "{{ messages }}",
                  **fields) -> Path:
    """``folder/results_<stamp>.json`` as lm_eval writes it, with ``task``'s configuration added to
    what the file already holds (one lm_eval run writes one file for all its tasks): its metadata
    as lm-eval records it (the YAML's ``version`` and defaults, merged with --metadata), the
    model, its arguments and the chat template. ``fields``: other top-level fields."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"results_{stamp}.json"
    data = json.loads(path.read_text()) if path.exists() else {
        "results": {}, "configs": {},
        "config": {"model": model, "model_args": model_args, "batch_size": "1"},
        "chat_template": chat_template,
        "chat_template_sha": None if chat_template is None else f"sha-of-{chat_template}",
        "fewshot_as_multiturn": chat_template is not None,
        "system_instruction": None, "system_instruction_sha": None,
    }
    data.update(fields)
    data["configs"][task] = {"task": task, "metadata": {"version": 1.0, "tbd_tau": 1.0, "tbd_alpha": 0.6,
                                                        "tbd_max_tokens": 300, **(metadata or {})}}
    path.write_text(json.dumps(data))
    return path


def write_samples(folder: Path, task: str, run, *, stamp: str = STAMP, questions: str = "{}") -> Path:
    """``folder/samples_<task>_<stamp>.jsonl`` of a TaskRun (as make_run builds): one line per
    question, its record in ``resps[0][0]`` and its scores beside it. ``questions`` formats each
    question text (to give another set of the same records other texts)."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps({"doc_id": q.doc_id, "doc": {"id": q.question_id, "question": questions.format(q.question),
                                                     "label": q.label},
                         "resps": [[q.record.to_json()]], **q.scores}) for q in run.questions]
    path = folder / f"samples_{task}_{stamp}.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path
