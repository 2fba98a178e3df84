"""lm_eval_tbd.backends.check_prompt_fits: a prompt that would be left-truncated is refused, naming
the question, instead of being scored as if it were the whole question. The hf backend's refusal
on a real model is tested in tests/integration/test_hf_prompt_fit.py."""

import pytest

from lm_eval_tbd.backends import PromptTooLongError, check_prompt_fits


def test_check_prompt_fits_names_question_lengths_and_options():
    check_prompt_fits(84, 16, 100)  # exactly fits
    check_prompt_fits(10_000, 16, None)  # no known limit: the server's business
    with pytest.raises(PromptTooLongError) as err:
        check_prompt_fits(85, 16, 100, doc={"id": "q7"})
    text = str(err.value)
    assert "question 'q7'" in text and "85 tokens" in text and "room for 84" in text and "max_length" in text
    with pytest.raises(PromptTooLongError, match="max_model_len"):
        check_prompt_fits(85, 16, 100, length_option="max_model_len")
