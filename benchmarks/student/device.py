"""Where the real student's steps run: the device (CPU or CUDA), the training precision, the
record of the machine that made a cached step, and this process's threads and allocator."""

from __future__ import annotations

import os

from benchmarks._cli import log


def resolve_device(choice: str) -> str:
    """``cuda`` or ``cpu``; ``auto`` is ``cuda`` where torch sees a GPU. Asking for ``cuda``
    without one is an error, not a silent CPU run."""
    import torch

    if choice == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if choice == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: torch sees no CUDA GPU here (torch "
                         f"{torch.__version__}); use --device cpu or auto")
    return choice


def ran_on(device: str) -> dict:
    """Where a step ran, kept in its cache file: a resumed run may finish elsewhere (the scoring
    on a GPU, the analysis on a laptop), and its report must say where each step was made."""
    import torch

    return {"device": device, "device_name": torch.cuda.get_device_name() if device == "cuda" else f"{os.cpu_count()} CPU cores"}


def train_dtype(choice: str, device: str = "cpu") -> str:
    """``bf16`` or ``fp32``; ``auto`` is bf16 on a GPU that supports it, and on a CPU only where
    it has native bf16 instructions (AVX512-BF16 or AMX): elsewhere bf16 autocast is emulated
    and far slower (docs/benchmarks.md, Real student)."""
    if choice != "auto":
        return choice
    import torch

    if device == "cuda":
        # Native bf16 from compute capability 8 (Ampere) on; older GPUs emulate it.
        return "bf16" if torch.cuda.get_device_capability()[0] >= 8 else "fp32"
    return "bf16" if cpu_has_native_bf16() else "fp32"


def cpu_has_native_bf16() -> bool:
    """Whether this CPU has bf16 instructions (AVX512-BF16 or AMX). torch's capability string
    ("AVX512") does not tell: it names the kernels torch dispatches to, not the bf16 extensions."""
    import torch

    probes = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    if any(probe is not None for probe in probes):
        return any(probe() for probe in probes if probe is not None)
    return any(x in torch.backends.cpu.get_cpu_capability() for x in ("BF16", "AMX"))


def setup_process(device: str) -> None:
    """Torch threads (2 at most: the cores this benchmark is sized for) and, on CPU, the glibc
    allocator settings of ``lm_eval_tbd.backends.cpu_allocator`` for the training that runs in this process."""
    import torch

    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    if device == "cpu":
        from lm_eval_tbd.backends.cpu_allocator import tune_this_process

        if not tune_this_process():
            log("CPU allocator: glibc's mallopt settings could not be applied here (not glibc?)")
