"""The data that beyond adds to a real-student run: unrelated items for training after
distillation (none sharing a question with s1K) and the run's questions reworded."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

from benchmarks.protocol import Protocol
from benchmarks.student.split import TASKS, read_rows


def _norm(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text.lower()).split())


def _grams(words: list[str], n: int = 12) -> set[str]:
    return {" ".join(words[i:i + n]) for i in range(max(0, len(words) - n + 1))}


def unrelated_items(data_dir: Path, s1k_rows: list[dict], n: int, seed: int) -> tuple[list[dict], dict]:
    """``n`` MATH-500 / GSM8K question -> solution pairs sharing no question with s1K (seeded),
    and the overlap check's counts (candidates, dropped for the same text, dropped for a shared
    run of 12 words)."""
    s1k_norm = {_norm(r["question"]) for r in s1k_rows}
    grams = set().union(*(_grams(t.split()) for t in s1k_norm))
    pool, dropped = [], {"same_text": 0, "shared_12_words": 0}
    for name in ("math500.jsonl", "gsm8k_test.jsonl"):
        for i, r in enumerate(read_rows(data_dir / name)):
            text = _norm(r["question"])
            if text in s1k_norm:
                dropped["same_text"] += 1
            elif _grams(text.split()) & grams:
                dropped["shared_12_words"] += 1
            else:
                pool.append({**r, "id": f"{name.split('.')[0]}-{r.get('id', i)}"})
    if len(pool) < n:
        raise SystemExit(f"--post-items {n}: only {len(pool)} unrelated items in {data_dir}")
    return random.Random(seed).sample(pool, n), {"candidates": len(pool) + sum(dropped.values()), **dropped}


def reworded_tasks(work: Path, base_dir: Path, p: Protocol, seed: int) -> tuple[Path, dict[str, str]]:
    """The real student's three question files reworded, as tasks rw_* in ``work/tasks-reworded``;
    also returns one example (original and reworded) for the report."""
    from lm_eval_tbd.core.rewording import reword
    from lm_eval_tbd.harness.custom_tasks import write_jsonl_task

    task_dir = work / "tasks-reworded"
    example = {}
    for name in TASKS:
        rows = [json.loads(line) for line in (work / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()]
        new = [{"id": r["id"], "question": reword(r["question"], seed=seed)} for r in rows]
        example = example or {"original": rows[0]["question"][:300], "reworded": new[0]["question"][:360]}
        path = work / f"rw_{name}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in new), encoding="utf-8")
        write_jsonl_task(f"rw_{name}", path, task_dir, tbd_max_tokens=p.max_tokens, tbd_input_scores=True,
                         tbd_ref_model=str(base_dir))
    return task_dir, example

