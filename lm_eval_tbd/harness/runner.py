"""Running the real ``lm_eval`` command in a subprocess (the demo, the gate's model mode and the
benchmarks all score through the stock CLI, so what they measure is what users run)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
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
    drops its stdout (the results table).

    The child does not outlive this process: SIGTERM (what CI runners send to cancel a job) or an
    exception here (KeyboardInterrupt) stops it first, then this process ends as it would have."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
                            stderr=subprocess.PIPE if capture else None, text=True, env=env)
    with _stopped_with_us(proc):
        stdout, stderr = proc.communicate()
    completed = subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)
    if check and completed.returncode != 0:
        tail = f":\n{completed.stderr[-3000:]}" if capture else " (its messages are above)"
        raise RuntimeError(f"lm_eval failed with exit status {completed.returncode}{tail}")
    return completed


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def _stopped_with_us(proc: subprocess.Popen):
    """Stop ``proc`` when this process gets SIGTERM (then die of it, through the handler that was
    there before) or when the block raises."""
    installed, previous = False, None
    if threading.current_thread() is threading.main_thread():
        previous = signal.getsignal(signal.SIGTERM)
        if previous is not signal.SIG_IGN:

            def on_sigterm(signum, frame):
                _stop(proc)
                signal.signal(signum, previous if previous is not None else signal.SIG_DFL)
                os.kill(os.getpid(), signum)

            signal.signal(signal.SIGTERM, on_sigterm)
            installed = True
    try:
        yield
    except BaseException:
        _stop(proc)
        raise
    finally:
        if installed:
            signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
