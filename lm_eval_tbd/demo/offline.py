"""The demo's data: templated word problems with worked solutions (seeded; nothing downloaded),
their seeded split into members (distillation data) and non-members, and the share of members a
student reproduces verbatim. The distillation itself is :mod:`lm_eval_tbd.demo.distil`'s.
``lm-eval-tbd demo`` (:mod:`lm_eval_tbd.app.demo`) runs them end to end."""

from __future__ import annotations

import random

__all__ = ["TASKS", "make_problems", "split_members", "memorised_share"]

_NAMES = ["Ana", "Ben", "Chen", "Dara", "Eli", "Fay", "Gus", "Hana", "Ivo", "Jun", "Kai", "Lea", "Mia", "Noor", "Omar", "Pia"]
_ITEMS = ["apples", "marbles", "stamps", "books", "shells", "coins", "pencils", "cards"]


def _problem(rng: random.Random) -> tuple[str, str]:
    kind = rng.randrange(4)
    name, item = rng.choice(_NAMES), rng.choice(_ITEMS)
    a, b, c = rng.randint(10, 99), rng.randint(2, 60), rng.randint(2, 9)
    if kind == 0:
        give = rng.randint(1, a)
        q = f"{name} has {a} {item}, buys {b} more and gives {give} away. How many {item} does {name} have now?"
        s = f"{name} starts with {a}. Buying {b} gives {a} + {b} = {a + b}. Giving {give} away leaves {a + b} - {give} = {a + b - give}. The answer is {a + b - give}."
    elif kind == 1:
        q = f"A garden is {a} meters long and {c} meters wide. What is its area in square meters?"
        s = f"The area is length times width: {a} * {c} = {a * c}. The answer is {a * c}."
    elif kind == 2:
        q = f"{name} reads {b} pages a day for {c} days, then {a} pages on the last day. How many pages in total?"
        s = f"In {c} days {name} reads {b} * {c} = {b * c} pages. Adding {a} gives {b * c} + {a} = {b * c + a}. The answer is {b * c + a}."
    else:
        q = f"{c} friends share {a * c} {item} equally. How many {item} does each friend get?"
        s = f"Each friend gets {a * c} / {c} = {a}. The answer is {a}."
    return q, s


def make_problems(n: int, seed: int = 0) -> list[dict]:
    """``n`` distinct problems ``{"id", "question", "solution"}``, the same for the same seed."""
    rng, seen, rows = random.Random(seed), set(), []
    while len(rows) < n:
        q, s = _problem(rng)
        if q not in seen:
            seen.add(q)
            rows.append({"id": f"demo-{len(rows)}", "question": q, "solution": s})
    return rows


def split_members(rows: list[dict], member_fraction: float = 0.5, seed: int = 42) -> list[dict]:
    """Shuffle with ``seed`` (the paper's S1 protocol uses 42); the first part are members (label 1)."""
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    n_members = round(len(rows) * member_fraction)
    labels = {idx: int(rank < n_members) for rank, idx in enumerate(order)}
    return [{**row, "label": labels[i]} for i, row in enumerate(rows)]


#: The demo's three question sets: distilled on, never seen, and fresh reference questions.
TASKS = ("demo_members", "demo_unseen", "demo_reference")


def memorised_share(run, answers: dict[str, str], tokenizer, n_tokens: int = 50) -> float:
    """Share of members whose greedy answer reproduces the first ``n_tokens`` of its training
    answer (``answers``: question id -> the answer text it was distilled on)."""
    hits = members = 0
    for q in run.questions:
        if q.label != 1:
            continue
        members += 1
        target = tokenizer(answers[q.question_id])["input_ids"][:n_tokens]
        hits += q.record.token_ids[: len(target)] == target
    return hits / max(members, 1)
