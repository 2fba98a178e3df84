"""glibc ``malloc`` settings for generating on CPU, applied in the process that generates.

Why: a CPU forward pass allocates and frees large tensors at every decoding step (the key/value
cache is concatenated anew each step, megabytes per layer). With glibc's defaults, freed blocks
above the mmap threshold go back to the kernel (``munmap``, or a trimmed heap) and the next step
faults the same pages in again; how often depends on the process's allocation history, since
glibc moves its mmap threshold as it goes. Long prompts make it worse. The settings below keep
freed memory in the process, so a step reuses the last step's pages; only where memory comes
from changes, never a number the model computes. The cost is a higher, flatter RSS: memory is no
longer handed back between steps. ``benchmarks/hf_cpu_profile.py`` measures both.

The hf backend calls :func:`tune_this_process` before it generates on a CPU device; set
``LM_EVAL_TBD_CPU_ALLOCATOR=0`` to leave the allocator alone. A ``MALLOC_*_`` variable the user
already set wins over ours.
"""

from __future__ import annotations

import ctypes
import os
import platform

__all__ = ["ENV", "SETTINGS", "allocator_env", "enabled", "tune_this_process"]

#: Set to 0 / false / no / off to keep glibc's defaults in the hf backend.
ENV = "LM_EVAL_TBD_CPU_ALLOCATOR"
# mallopt parameter numbers (malloc.h) and the values (each fits mallopt's int): MMAP_THRESHOLD at
# glibc's ceiling for its dynamic threshold (32 MiB on 64-bit), so it no longer moves; the heap is
# trimmed only when 2 GiB lie free at its top.
_MALLOPT = {"TRIM_THRESHOLD": -1, "TOP_PAD": -2, "MMAP_THRESHOLD": -3}
SETTINGS = {"TRIM_THRESHOLD": 2**31 - 1, "TOP_PAD": 256 << 20, "MMAP_THRESHOLD": 32 << 20}

_tuned = False


def _glibc() -> bool:
    return platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


def enabled(environ=None) -> bool:
    """False when ``LM_EVAL_TBD_CPU_ALLOCATOR`` says 0 / false / no / off."""
    value = (os.environ if environ is None else environ).get(ENV, "1")
    return value.strip().lower() not in ("0", "false", "no", "off")


def allocator_env(env: dict[str, str]) -> dict[str, str]:
    """``env`` plus the ``MALLOC_*_`` variables, for a child process (on glibc Linux; otherwise
    ``env`` unchanged). Variables already in ``env`` win."""
    if not _glibc():
        return dict(env)
    return {**{f"MALLOC_{k}_": str(v) for k, v in SETTINGS.items()}, **env}


def tune_this_process() -> bool:
    """Apply the settings to this process with ``mallopt`` (glibc Linux only), except those set
    in the environment already. Returns True when every setting is in effect; idempotent."""
    global _tuned
    if not _glibc():
        return False
    if _tuned:
        return True
    mallopt = ctypes.CDLL(None).mallopt
    ok = True
    for name, value in SETTINGS.items():
        if f"MALLOC_{name}_" in os.environ:
            continue
        ok = bool(mallopt(_MALLOPT[name], ctypes.c_int(value))) and ok
    _tuned = ok
    return ok
