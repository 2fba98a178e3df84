"""The shift benchmark's question sets and students: AIME 2024 and 2025, seeded MATH-500 and GSM8K
subsets in two halves, the real-student split of s1K; two students that leaked half of one
subset; their protocol; one TBD task per set."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

from benchmarks.protocol import Protocol
from benchmarks.student.split import split


@dataclass(frozen=True)
class ShiftProtocol(Protocol):
    """The students' protocol: the real student's, one checkpoint at the last epoch, with the
    size of each MATH-500/GSM8K subset (``subset``, halved) and of each AIME set (``aime``)."""

    subset: int = 100
    aime: int = 30

    #: the fields this benchmark's summary records, in its order
    SETTINGS = ("n", "subset", "answer_tokens", "epochs", "checkpoints", "lr", "batch_size", "max_tokens", "eval_batch",
                "aime", "device", "train_dtype")

    def settings(self) -> dict:
        full = super().settings()
        return {k: full[k] for k in self.SETTINGS}


FULL = ShiftProtocol(n=32, subset=100, answer_tokens=256, epochs=5, checkpoints=(5,), lr=3e-4, batch_size=4,
                     max_tokens=300, eval_batch=16, aime=30)
QUICK = ShiftProtocol(n=4, subset=8, answer_tokens=24, epochs=1, checkpoints=(1,), lr=1e-4, batch_size=4, max_tokens=16,
                      eval_batch=8, aime=4)
#: set name -> (file, what)
SOURCES = {"aime24": "aime24.jsonl", "aime25": "aime25.jsonl", "math500": "math500.jsonl",
           "gsm8k": "gsm8k_test.jsonl", "s1k": "s1k.jsonl"}
SETS = ("aime24", "aime25", "math_a", "math_b", "gsm_a", "gsm_b", "s1k_members", "s1k_nonmembers")
#: student -> (leaked set, training seed)
STUDENTS = {"student-math": ("math_a", 0), "student-gsm": ("gsm_a", 1)}
SUBSET_SEEDS = {"math": 1, "gsm": 2}


def task_name(set_name: str) -> str:
    return f"shift_{set_name}"


def read_source(data_dir: Path, name: str) -> list[dict]:
    path = data_dir / SOURCES[name]
    if not path.is_file():
        raise SystemExit(f"--data-dir {data_dir}: no {SOURCES[name]} there (the benchmark data: ../shared/data)")
    rows = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            row = json.loads(line)
            if not isinstance(row.get("question"), str):
                raise SystemExit(f"{path}:{i}: no string field 'question'")
            rows.append(row)
    return rows


def halves(rows: list[dict], size: int, seed: int) -> tuple[list[dict], list[dict]]:
    """A seeded subset of ``size`` rows, in two halves (``a`` first)."""
    chosen = random.Random(seed).sample(range(len(rows)), size)
    picked = [rows[i] for i in chosen]
    return picked[: size // 2], picked[size // 2:]


def build_sets(data_dir: Path, p: ShiftProtocol, split_seed: int = 42) -> dict[str, list[dict]]:
    """Every set of the benchmark: name -> rows (``id``, ``question`` and, where known, ``solution``)."""
    sets = {"aime24": read_source(data_dir, "aime24")[: p.aime],
            "aime25": read_source(data_dir, "aime25")[: p.aime]}
    sets["math_a"], sets["math_b"] = halves(read_source(data_dir, "math500"), p.subset, SUBSET_SEEDS["math"])
    sets["gsm_a"], sets["gsm_b"] = halves(read_source(data_dir, "gsm8k"), p.subset, SUBSET_SEEDS["gsm"])
    sets["s1k_members"], sets["s1k_nonmembers"] = split(read_source(data_dir, "s1k"), p.n, split_seed)
    for name in ("math_a", "gsm_a", "s1k_members"):
        missing = [str(r.get("id")) for r in sets[name] if not isinstance(r.get("solution"), str) or not r["solution"]]
        if missing:
            raise SystemExit(f"{name}: rows {', '.join(missing[:5])} have no solution to distil on")
    return sets


def write_tasks(work: Path, sets: dict[str, list[dict]], p: Protocol) -> Path:
    """One TBD task per set (no labels: which sets are seen depends on the model)."""
    from lm_eval_tbd.harness.custom_tasks import write_jsonl_task

    task_dir = work / "tasks"
    for name in SETS:
        path = work / f"{task_name(name)}.jsonl"
        path.write_text("".join(json.dumps({"id": str(r["id"]), "question": r["question"]}) + "\n"
                                for r in sets[name]), encoding="utf-8")
        write_jsonl_task(task_name(name), path, task_dir, tbd_max_tokens=p.max_tokens)
    return task_dir


def seen_sets(model: str) -> set[str]:
    """The sets a model was trained on."""
    if model == "base":
        return set()
    return {"s1k_members", STUDENTS[model][0]}
