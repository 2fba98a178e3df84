"""The glibc allocator settings for CPU runs (lm_eval_tbd.backends.cpu_allocator): they must stop a growing buffer (the shape
of a key/value cache concatenated anew each decoding step) from being faulted in from the kernel
at every step, whether applied in-process (mallopt) or to a child through the environment."""

import os
import subprocess
import sys

import pytest

from lm_eval_tbd.backends import cpu_allocator
from tests.helpers import ROOT

GLIBC = cpu_allocator._glibc()

# Counts the minor page faults of steps 40-79 of a loop that allocates, fills and frees a 16 MiB
# buffer growing by 64 KiB a step.
CHILD = """
import resource, sys
import torch
if sys.argv[1] == "mallopt":
    from lm_eval_tbd.backends import cpu_allocator
    assert cpu_allocator.tune_this_process()
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for i in range(80):
    if i == 40:
        start = faults()
    buffer = torch.ones((4 << 20) + i * 16384)
    del buffer
print(faults() - start)
"""


def _steady_faults(mode: str, env: dict[str, str]) -> int:
    proc = subprocess.run([sys.executable, "-c", CHILD, mode], env=env, capture_output=True, text=True, timeout=120,
                          cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return int(proc.stdout.split()[-1])


def _plain_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}


@pytest.mark.skipif(not GLIBC, reason="glibc settings")
def test_settings_stop_the_per_step_page_faults_in_process_and_through_the_environment():
    plain = _plain_env()
    default = _steady_faults("default", plain)
    # 40 steps x 16 MiB of 4 KiB pages faulted in again each step with glibc's defaults.
    assert default > 40 * 4096 // 2
    assert _steady_faults("mallopt", plain) < default / 20
    assert _steady_faults("default", cpu_allocator.allocator_env(plain)) < default / 20


def test_allocator_env_keeps_the_users_settings():
    env = cpu_allocator.allocator_env({"MALLOC_TOP_PAD_": "0", "PATH": "/bin"})
    assert env["MALLOC_TOP_PAD_"] == "0" and env["PATH"] == "/bin"
    if GLIBC:
        assert env["MALLOC_MMAP_THRESHOLD_"] == str(32 << 20)
        assert env["MALLOC_TRIM_THRESHOLD_"] == str(2**31 - 1)


def test_every_setting_fits_mallopts_int():
    assert all(-(2**31) <= v < 2**31 for v in cpu_allocator.SETTINGS.values())
