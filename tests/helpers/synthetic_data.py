"""Synthetic question sets in the layout of the benchmark data directory (``aime24.jsonl``,
``aime25.jsonl``, ``math500.jsonl``, ``gsm8k_test.jsonl``, ``s1k.jsonl``), generated from a seed.

The test suite runs on a fresh clone with nothing beside it: it never reads the real benchmark
files. These sets have the fields and rough shape of the real ones (competition-style questions
with LaTeX, some short and some a few hundred characters long; worked solutions where the real
files have them), which is all the tests need: a question to prompt with, and text to train a
tiny tokenizer on. Importable (``from tests.helpers.synthetic_data import write_benchmark_dir``), not
a conftest, so nothing imports a conftest.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

__all__ = ["FILES", "make_rows", "write_benchmark_dir"]

#: file name -> (rows, with worked solutions)
FILES = {"aime24.jsonl": (30, True), "aime25.jsonl": (30, False), "math500.jsonl": (120, True),
         "gsm8k_test.jsonl": (240, True), "s1k.jsonl": (200, True)}

_OBJECTS = ["triangle $ABC$", "square $PQRS$", "circle $\\omega$", "regular hexagon", "rectangle $WXYZ$"]
_PEOPLE = ["Alice", "Bob", "Carmen", "Deepak", "Elena", "Farid", "Greta", "Hiro"]


def _question(rng: random.Random, i: int) -> tuple[str, str, str]:
    """(question, answer, solution): one of a few templates, lengths from one line to a paragraph."""
    a, b, c = rng.randint(2, 99), rng.randint(2, 60), rng.randint(2, 9)
    kind = rng.randrange(4)
    if kind == 0:
        q = f"Find the remainder when ${a}^{{{b}}} + {c}$ is divided by $1000$."
        ans = (pow(a, b, 1000) + c) % 1000
        s = f"Compute ${a}^{{{b}}} \\bmod 1000$ by repeated squaring, then add ${c}$. The answer is $\\boxed{{{ans}}}$."
    elif kind == 1:
        obj = rng.choice(_OBJECTS)
        q = (f"Let {obj} have side lengths that are positive integers with perimeter ${a + b + c}$. "
             f"Points $M$ and $N$ lie on its sides so that $MN = {c}$ and the area cut off is $\\frac{{{a}}}{{{b}}}$ "
             f"of the whole. Find $m+n$, where the ratio of the remaining area to the whole is $\\tfrac{{m}}{{n}}$ "
             "in lowest terms.")
        ans = a + b
        s = f"The remaining share is $1 - \\frac{{{a}}}{{{b}}}$; reducing gives the fraction, so $m+n = {ans}$."
    elif kind == 2:
        p = rng.choice(_PEOPLE)
        q = (f"{p} has {a} marbles and buys {b} more each day for {c} days. "
             f"How many marbles does {p} have at the end?")
        ans = a + b * c
        s = f"{p} buys {b} * {c} = {b * c} marbles, so {a} + {b * c} = {ans}. #### {ans}"
    else:
        terms = " + ".join(f"\\frac{{{rng.randint(1, 9)}}}{{{rng.randint(2, 9)}}}x^{{{k}}}" for k in range(c))
        q = (f"Consider the polynomial $P(x) = {terms}$. Suppose the sum of the squares of its roots equals "
             f"${a}$ and the product of its nonzero coefficients is ${b}$. Determine the number of ordered pairs "
             f"$(r, s)$ of distinct roots with $r + s$ an integer, and justify why no other pair qualifies. " * (1 + i % 2)).strip()
        ans = (a * b) % 1000
        s = f"By Vieta's formulas the relations give ${a} \\cdot {b} \\bmod 1000 = {ans}$, so the count is ${ans}$."
    return q, str(ans), s


def make_rows(name: str, *, seed: int = 0) -> list[dict]:
    """The rows of synthetic file ``name`` (one of :data:`FILES`), the same for the same seed."""
    n, with_solution = FILES[name]
    rng = random.Random(f"{seed}:{name}")
    rows = []
    for i in range(n):
        q, ans, s = _question(rng, i)
        row = {"id": i if name == "s1k.jsonl" else f"{name.split('.')[0]}-{i}", "question": q, "answer": ans}
        if with_solution:
            row["solution"] = s
        rows.append(row)
    return rows


def write_benchmark_dir(directory: str | Path, *, seed: int = 0) -> Path:
    """Write every file of :data:`FILES` into ``directory``; returns it."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        rows = make_rows(name, seed=seed)
        if name == "s1k.jsonl":  # s1K's shape: id, question, solution
            rows = [{k: r[k] for k in ("id", "question", "solution")} for r in rows]
        (directory / name).write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return directory
