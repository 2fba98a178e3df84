"""The hf backend applies the glibc allocator settings of lm_eval_tbd.backends.cpu_allocator in
the process that generates on CPU, unless LM_EVAL_TBD_CPU_ALLOCATOR switches them off."""

import os
import subprocess
import sys

import pytest

from lm_eval_tbd.backends import cpu_allocator
from tests.helpers import ROOT

# One generate_logprobs call on the tiny model in a fresh process; prints whether mallopt ran.
CHILD = """
import sys
from lm_eval.api.instance import Instance
from lm_eval.models.huggingface import HFLM
from lm_eval_tbd import patches
from lm_eval_tbd.backends import cpu_allocator
patches.install()
lm = HFLM(pretrained=sys.argv[1], device="cpu", dtype="float32", batch_size=1)
before = cpu_allocator._tuned
lm.generate_logprobs([Instance(request_type="generate_logprobs", doc={}, idx=0,
                               arguments=("Question: 1 + 1?", {"max_gen_toks": 2}, {}))])
print(before, cpu_allocator._tuned)
"""


def _tuned(model_dir, **env) -> str:
    base = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != cpu_allocator.ENV}
    proc = subprocess.run([sys.executable, "-c", CHILD, str(model_dir)], env={**base, **env}, capture_output=True,
                          text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout.split("\n")[-2]


@pytest.mark.skipif(not cpu_allocator._glibc(), reason="glibc settings")
def test_generating_on_cpu_tunes_the_allocator_unless_switched_off(tiny_model_dir):
    assert _tuned(tiny_model_dir) == "False True"
    assert _tuned(tiny_model_dir, LM_EVAL_TBD_CPU_ALLOCATOR="0") == "False False"


@pytest.mark.parametrize("value, on", [("1", True), ("0", False), (" off ", False), ("No", False), ("yes", True)])
def test_the_switch(value, on):
    assert cpu_allocator.enabled({cpu_allocator.ENV: value}) is on
    assert cpu_allocator.enabled({}) is True
