"""glibc ``malloc`` settings for long generation and training runs on CPU.

Why: with glibc's defaults, the tensors that a CPU forward pass allocates and frees at every
decoding step (the key/value cache is concatenated anew each step, megabytes per layer) are
handed back to the kernel, by ``munmap`` or by trimming the heap, and the next step faults the
same pages in again. How much that costs depends on the process's allocation history (glibc's
mmap threshold moves with it): what the settings saved, in a fresh process and through lm_eval
(``python -m benchmarks.speed --configs tbd,tbd_malloc``), is in docs/benchmarks.md (Real
student) and ``benchmarks/results/speed-smollm2-allocator.md``. Only where memory comes from
changes; no number the model computes does.

The settings keep freed memory in the process (RSS no longer falls back between steps). A setting
the user already made in the environment is left as it is.
"""

from __future__ import annotations

import ctypes
import os
import platform

# mallopt parameter numbers (malloc.h) and the values (each fits mallopt's int): MMAP_THRESHOLD at
# glibc's ceiling for its dynamic threshold (32 MiB on 64-bit), so it no longer moves; the heap is
# trimmed only when 2 GiB lie free at its top.
_MALLOPT = {"TRIM_THRESHOLD": -1, "TOP_PAD": -2, "MMAP_THRESHOLD": -3}
SETTINGS = {"TRIM_THRESHOLD": 2**31 - 1, "TOP_PAD": 256 << 20, "MMAP_THRESHOLD": 32 << 20}


def _glibc() -> bool:
    return platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


def allocator_env(env: dict[str, str]) -> dict[str, str]:
    """``env`` plus the ``MALLOC_*_`` variables for a child process (on glibc Linux; otherwise
    ``env`` unchanged). Variables already in ``env`` win."""
    if not _glibc():
        return dict(env)
    return {**{f"MALLOC_{k}_": str(v) for k, v in SETTINGS.items()}, **env}


def tune_this_process() -> bool:
    """Apply the settings to this process with ``mallopt`` (glibc Linux only), except those the
    environment set already. Returns True when every setting is in effect."""
    if not _glibc():
        return False
    mallopt = ctypes.CDLL(None).mallopt
    ok = True
    for name, value in SETTINGS.items():
        if f"MALLOC_{name}_" in os.environ:
            continue
        ok = bool(mallopt(_MALLOPT[name], ctypes.c_int(value))) and ok
    return ok
