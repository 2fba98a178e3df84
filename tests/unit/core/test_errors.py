"""lm_eval_tbd.core.errors: an error in the user's input, raised from code lm-eval's command
calls and caught by nothing, is one line on stderr, not a traceback through lm-eval."""

import subprocess
import sys

import pytest

from tests.helpers import offline_env

RAISE = """
from lm_eval_tbd.core.errors import user_error
def deep():
    raise user_error(ValueError("task t: metadata 'tbd_max_tokens' must be an integer >= 1, got 0"))
def lm_eval_internals():
    {call}
lm_eval_internals()
"""


def _run(call: str, **env):
    return subprocess.run([sys.executable, "-c", RAISE.format(call=call)], capture_output=True, text=True,
                          env=offline_env(**env))


@pytest.mark.parametrize("call", ["deep()", "try:\n        deep()\n    except ValueError as e:\n"
                                            "        raise RuntimeError('lm-eval wraps it') from e"])
def test_a_marked_error_is_one_line(call):
    proc = _run(call)
    assert proc.returncode == 1
    assert proc.stderr == "lm-eval-tbd: error: task t: metadata 'tbd_max_tokens' must be an integer >= 1, got 0\n"


def test_the_traceback_on_request_and_for_anything_else():
    proc = _run("deep()", LM_EVAL_TBD_TRACEBACK="1")
    assert proc.returncode == 1 and "Traceback" in proc.stderr and "in lm_eval_internals" in proc.stderr
    proc = _run("deep(); ", LM_EVAL_TBD_TRACEBACK="0")
    assert proc.stderr.startswith("lm-eval-tbd: error:")
    other = _run("user_error(ValueError('unused')); raise KeyError('a bug')")
    assert other.returncode == 1 and "Traceback" in other.stderr and "KeyError: 'a bug'" in other.stderr


def test_caught_errors_keep_their_type():
    from lm_eval_tbd.core.data import load_jsonl

    with pytest.raises(ValueError, match="needs a question file"):
        load_jsonl()


def test_the_line_comes_after_open_progress_bars():
    # raised inside lm-eval's "Running generate_logprobs requests" loop, it was glued to the bar,
    # and the bar was drawn again after it
    call = "from tqdm import tqdm\n    bar = tqdm(total=2, desc='Running requests')\n    bar.update(1)\n    deep()"
    proc = _run(call)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 1 and lines[-1].startswith("lm-eval-tbd: error: task t:"), proc.stderr
    assert "Running requests" not in lines[-1]
