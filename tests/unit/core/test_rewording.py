"""Deterministic rewordings: each kind on hand-written inputs, math left intact, same output every call."""

import pytest

from lm_eval_tbd.core.rewording import KINDS, PREFIXES, reword


def test_each_kind_by_hand():
    q = "Let  $ x $ be  the number of 3 apples and 25000 pears in 1999 , not $2$ ."
    assert reword(q, ["whitespace"]) == "Let $x$ be the number of 3 apples and 25000 pears in 1999, not $2$."
    assert reword(q, ["numbers"]) == "Let  $ x $ be  the number of three apples and 25,000 pears in 1999 , not $2$ ."
    assert reword("Compute $a+b$ and $$c$$.", ["latex"]) == "Compute \\(a+b\\) and \\[c\\]."
    out = reword("What is 2+2?", ["prefix"], seed=0)
    prefix, body = out.split("\n\n", 1)
    assert prefix in PREFIXES and body == "What is 2+2?"


def test_numbers_leave_math_decimals_identifiers_and_ratios_alone():
    q = "Take 3.5 km, item 007, ratio 3:4, 10%, x2, $3 + 4$ and \\(5\\), then 7 steps."
    assert reword(q, ["numbers"]) == "Take 3.5 km, item 007, ratio 3:4, 10%, x2, $3 + 4$ and \\(5\\), then seven steps."


def test_all_kinds_are_deterministic_and_keep_the_formula():
    q = "Find the remainder when $9 \\times 99$ is divided by $1000$ ."
    a, b = reword(q, seed=3), reword(q, seed=3)
    assert a == b and "\\(9 \\times 99\\)" in a and "\\(1000\\)." in a
    assert set(KINDS) == {"prefix", "whitespace", "latex", "numbers"}
    with pytest.raises(ValueError, match="unknown rewording"):
        reword(q, ["synonyms"])
