"""The detection benchmark's questions: s1K in the S1 split (seeded shuffle, first 80% members),
the pretraining data, and answers truncated to the student's budget."""

from __future__ import annotations

import json
import random
from pathlib import Path


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def s1_split(data: Path, max_chars: int, n_members: int, n_nonmembers: int, seed: int = 42):
    """The S1 split (seeded shuffle, first 80% members, last 20% non-members), then the subset."""
    rows = read_jsonl(data / "s1k.jsonl")
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    cut = int(0.8 * len(rows))
    usable = lambda idx: [rows[i] for i in idx if len(rows[i]["question"]) < max_chars and rows[i].get("solution")]  # noqa: E731
    members, nonmembers = usable(order[:cut]), usable(order[cut:])
    if len(members) < n_members or len(nonmembers) < n_nonmembers:
        raise SystemExit(f"only {len(members)} members / {len(nonmembers)} non-members under {max_chars} characters")
    return members[:n_members], nonmembers[:n_nonmembers]


def truncate(tok, text: str, n: int) -> str:
    return tok.decode(tok(text)["input_ids"][:n])
