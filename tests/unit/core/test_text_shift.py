"""The text-only diagnostic (lm_eval_tbd.core.text_shift): values known without a classifier."""

import numpy as np
import pytest

from lm_eval_tbd.core.stats import UndefinedMetricError
from lm_eval_tbd.core.text_shift import MIN_PER_SET, text_only_auc


def test_identical_texts_cannot_be_told_apart():
    # every out-of-fold decision value is the same: Mann-Whitney counts every pair a tie, AUC 1/2
    r = text_only_auc(["x + y = 3"] * 6, ["x + y = 3"] * 6)
    assert r["auc"] == 0.5 and r["auc_ci"] == [0.5, 0.5]
    assert (r["n_benchmark"], r["n_reference"], r["folds"]) == (6, 6, 3)


def test_sets_with_no_ngram_in_common_are_told_apart_perfectly():
    r = text_only_auc(["aaaa bbbb"] * 3 + ["aaab abab"] * 3, ["zzzz yyyy"] * 3 + ["zzzy yzyz"] * 3)
    assert r["auc"] == 1.0 and r["auc_ci"] == [1.0, 1.0]


def test_sets_drawn_alike_stay_near_one_half():
    rng = np.random.default_rng(0)
    words = ["sum", "area", "ratio", "prime", "angle"]
    a = [" ".join(rng.choice(words, 8)) for _ in range(40)]
    b = [" ".join(rng.choice(words, 8)) for _ in range(40)]
    r = text_only_auc(a, b)
    assert r["folds"] == 5 and r["auc_ci"][0] < 0.5 < r["auc_ci"][1]


def test_seeded():
    a, b = [f"find x if {i}x = {i + 1}" for i in range(12)], [f"how many apples {i}" for i in range(12)]
    assert text_only_auc(a, b, seed=3) == text_only_auc(a, b, seed=3)


def test_too_few_questions_is_undefined():
    with pytest.raises(UndefinedMetricError, match=f"at least {MIN_PER_SET} questions on each side, got 3 and 9"):
        text_only_auc(["q"] * 3, ["r"] * 9)
