"""The real student's questions: the s1K-style rows, the paper's member/non-member split and the
three scoring tasks (members, non-members in two halves)."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.protocol import Protocol

#: members; non-members half A (the audit's reference) and half B (the negative control)
TASKS = ("rs_members", "rs_nonmembers_a", "rs_nonmembers_b")


def read_rows(path: Path) -> list[dict]:
    """The rows of a JSON Lines file; each must hold string fields ``question`` and ``solution``."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    for i, r in enumerate(rows):
        if not isinstance(r.get("question"), str) or not isinstance(r.get("solution"), str):
            raise SystemExit(f"{path}:{i + 1}: every row needs string fields 'question' and 'solution'")
    return rows


def split(rows: list[dict], n: int, seed: int) -> tuple[list[dict], list[dict]]:
    """The first ``n`` members and the first ``n`` non-members of the paper's split."""
    from lm_eval_tbd.core.data import train_test_split_indices

    train, test = train_test_split_indices(len(rows), train_size=0.8, seed=seed)
    if n > len(test):
        raise SystemExit(f"--n {n}: the split has only {len(test)} non-members")
    return [rows[i] for i in train[:n]], [rows[i] for i in test[:n]]


def write_tasks(work: Path, members, nonmembers, base_dir: Path, p: Protocol) -> Path:
    """The TASKS as JSON Lines task files in ``work/tasks`` (the base model as ``tbd_ref_model``,
    question-side scores on); returns the task folder."""
    from lm_eval_tbd.harness.custom_tasks import write_jsonl_task

    half = len(nonmembers) // 2
    groups = {"rs_members": members, "rs_nonmembers_a": nonmembers[:half], "rs_nonmembers_b": nonmembers[half:]}
    task_dir = work / "tasks"
    for name, group in groups.items():
        path = work / f"{name}.jsonl"
        # No labels in the task files (each holds one class, so per-task ROC metrics would be
        # undefined): scoring.load() attaches them by task when it joins the three into one labelled run.
        path.write_text("".join(json.dumps({"id": str(r["id"]), "question": r["question"]}) + "\n"
                                for r in group), encoding="utf-8")
        write_jsonl_task(name, path, task_dir, tbd_max_tokens=p.max_tokens, tbd_input_scores=True,
                         tbd_ref_model=str(base_dir))
    return task_dir
