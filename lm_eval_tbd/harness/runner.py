"""Running the real ``lm_eval`` command in a subprocess (the demo, the gate's model mode and the
benchmarks all score through the stock CLI, so what they measure is what users run)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

__all__ = ["lm_eval_command", "run_lm_eval", "offline_env"]


def lm_eval_command(model: str, tasks, output_path: str | Path, *, model_args: str = "", device: str | None = None,
                    include_path: str | Path | None = None, apply_chat_template: bool = True, batch_size="16",
                    limit: int | None = None, metadata: dict | None = None,
                    launcher: list[str] | None = None) -> list[str]:
    """``python -m lm_eval ... --log_samples --output_path OUTPUT_PATH`` as an argument list.

    ``launcher`` replaces the leading ``[sys.executable, "-m", "lm_eval"]`` by another program
    taking the same arguments (the speed benchmark's timing shim)."""
    cmd = [*(launcher or [sys.executable, "-m", "lm_eval"]), "--model", model, "--tasks", ",".join(tasks),
           "--batch_size", str(batch_size), "--log_samples", "--output_path", str(output_path)]
    if model_args:
        cmd += ["--model_args", model_args]
    if device:
        cmd += ["--device", device]
    if include_path:
        cmd += ["--include_path", str(include_path)]
    if apply_chat_template:
        cmd.append("--apply_chat_template")
    if limit:
        cmd += ["--limit", str(limit)]
    if metadata:
        cmd += ["--metadata", json.dumps(metadata)]
    return cmd


def offline_env(**extra: str) -> dict[str, str]:
    """This process's environment, offline (no hub requests) and with quiet tokenizers."""
    return {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", **extra}


def run_lm_eval(cmd: list[str], *, env: dict | None = None, check: bool = True,
                capture: bool = True) -> subprocess.CompletedProcess:
    """Run ``cmd``; with ``check``, a non-zero exit raises RuntimeError (carrying the end of stderr
    when captured). ``capture=False`` leaves lm_eval's progress bars on the terminal (stderr) and
    drops its stdout (the results table)."""
    if capture:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    else:
        proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, env=env)
    if check and proc.returncode != 0:
        tail = f":\n{proc.stderr[-3000:]}" if capture else " (its messages are above)"
        raise RuntimeError(f"lm_eval failed with exit status {proc.returncode}{tail}")
    return proc
