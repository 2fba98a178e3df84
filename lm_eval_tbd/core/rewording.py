"""Deterministic rewordings of a question, for testing whether a detector survives a benchmark
worded differently from the distillation data.

Each rewording keeps the mathematical content and changes only the surface a likelihood
detector may key on. ``reword(question, kinds, seed=...)`` applies the named kinds in a fixed
order; every kind is a pure function of the text (and, for the instruction prefix, of the seed
and the text), so the same call gives the same string in every run.

Kinds:
- ``prefix``: an instruction before the question, one of :data:`PREFIXES` chosen by a hash of
  the seed and the question (e.g. "Solve the following problem and explain your reasoning.").
- ``whitespace``: runs of spaces and tabs become one space, space before punctuation and around
  inline-math delimiters is tidied, and the text is stripped.
- ``latex``: inline math ``$...$`` becomes ``\\(...\\)`` and display math ``$$...$$`` becomes
  ``\\[...\\]`` (the same formulas, other delimiters).
- ``numbers``: integers outside math written in words when 0-12 ("3 apples" -> "three apples"),
  and with thousands separators from 10000 up ("25000" -> "25,000"). Numbers inside math, in
  identifiers, decimals and years (1000-9999) are left alone, where rewriting could change
  meaning.
"""

from __future__ import annotations

import hashlib
import re

__all__ = ["KINDS", "PREFIXES", "reword"]

KINDS = ("prefix", "whitespace", "latex", "numbers")
PREFIXES = (
    "Solve the following problem and explain your reasoning.",
    "Answer the question below. Show your work step by step.",
    "Here is a problem for you to solve, with a justification of each step:",
)
_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve")
# Math segments: $$...$$, $...$, \[...\], \(...\) (non-greedy, across lines).
_MATH = re.compile(r"(\$\$.+?\$\$|\$.+?\$|\\\[.+?\\\]|\\\(.+?\\\))", re.S)


def _outside_math(text: str, fn) -> str:
    """Apply ``fn`` to the parts of ``text`` outside math segments."""
    parts = _MATH.split(text)
    return "".join(p if i % 2 else fn(p) for i, p in enumerate(parts))


def _whitespace(text: str) -> str:
    text = re.sub(r"[ \t]+", " ", text)
    text = re.sub(r"\$ *([^$]+?) *\$", r"$\1$", text)  # no padding inside inline-math delimiters
    text = re.sub(r" +([,.;:!?])", r"\1", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def _latex(text: str) -> str:
    text = re.sub(r"\$\$(.+?)\$\$", r"\\[\1\\]", text, flags=re.S)
    return re.sub(r"(?<!\\)\$(.+?)(?<!\\)\$", r"\\(\1\\)", text, flags=re.S)


def _number(match: re.Match) -> str:
    digits = match.group(0)
    value = int(digits)
    if len(digits) > 1 and digits.startswith("0"):
        return digits  # "007": an identifier, not a quantity
    if value <= 12:
        return _WORDS[value]
    if value >= 10000:
        return f"{value:,}"
    return digits


def _numbers(text: str) -> str:
    # Whole integers only: not part of a word, a decimal, a ratio written with ":" or a thousands group.
    pattern = re.compile(r"(?<![\w.,:/^_-])\d+(?![\w.,:/%]|\.\d)")
    return _outside_math(text, lambda part: pattern.sub(_number, part))


def _prefix(text: str, seed: int) -> str:
    digest = hashlib.sha256(f"{seed}\0{text}".encode()).digest()
    return f"{PREFIXES[digest[0] % len(PREFIXES)]}\n\n{text}"


def reword(question: str, kinds=KINDS, *, seed: int = 0) -> str:
    """``question`` with the rewordings in ``kinds`` applied in the order of :data:`KINDS`.

    Example: ``reword("Find  3 values of $x$ .", ["whitespace", "latex", "numbers"])`` gives
    ``"Find three values of \\(x\\)."``.
    """
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        raise ValueError(f"unknown rewording(s) {unknown}; known: {list(KINDS)}")
    text = question
    if "whitespace" in kinds:
        text = _whitespace(text)
    if "numbers" in kinds:
        text = _numbers(text)
    if "latex" in kinds:
        text = _latex(text)
    if "prefix" in kinds:
        text = _prefix(text, seed)
    return text
