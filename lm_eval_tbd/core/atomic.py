"""Atomic file writes: readers see the old file or the new one, never half of one.

The new content goes to a hidden temporary file ``.NAME.*.tmp`` beside the target, which then
replaces the target in one step. The temporary file is removed when the write fails, on an
exception (KeyboardInterrupt included) and on SIGTERM. SIGKILL (and a power cut) cannot be
handled: it may leave the temporary file behind, though never a half-written target.
"""

from __future__ import annotations

import json
import math
import os
import signal
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path

__all__ = ["write_text_atomic", "write_bytes_atomic", "write_json_atomic", "json_safe"]


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically as UTF-8 (see :func:`write_bytes_atomic`)."""
    if not isinstance(text, str):
        raise TypeError(f"write_text_atomic: expected str, got {type(text).__name__}")
    return write_bytes_atomic(path, text.encode("utf-8"))


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (parent folders are created); returns the path.

    SIGTERM in the middle of the write removes the temporary file and then ends the process by
    the signal as usual (see :func:`_removed_on_sigterm`). SIGKILL cannot be caught, so it may
    leave the hidden ``.NAME.*.tmp`` file behind.
    """
    path = Path(path)
    # Said in words: mkdir and os.replace would say "[Errno 17] File exists" or name the
    # temporary file.
    if path.is_dir():
        raise IsADirectoryError(f"{path}: is a directory; give the path of the file to write")
    blocking = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        raise NotADirectoryError(f"{path}: cannot be written, {blocking} is a file, not a folder")
    path.parent.mkdir(parents=True, exist_ok=True)
    pending: list[str] = []  # the temporary file, once it exists, for the SIGTERM handler
    with _removed_on_sigterm(pending):
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        pending.append(tmp)
        try:
            with os.fdopen(fd, "wb") as f:
                _plain_mode(f.fileno())
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return path


def _plain_mode(fd: int) -> None:
    """Give the file the mode a plain open() gives a new file (mkstemp makes it owner-only, 0600,
    and a result is for others to read too). Best effort: where modes cannot be set (no fchmod,
    or a file system that refuses it) the file keeps mkstemp's."""
    try:
        os.fchmod(fd, 0o666 & ~_umask())
    except (AttributeError, OSError):
        pass


def _umask() -> int:
    """The process's umask, read from /proc on Linux (which does not change it); elsewhere the
    one read at import (by setting and restoring it, before this module's writes can run in
    threads)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return _IMPORT_UMASK


def _umask_at_import() -> int:
    if Path("/proc/self/status").is_file():
        return 0o022  # not used while /proc answers
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_IMPORT_UMASK = _umask_at_import()


def json_safe(obj):
    """``obj`` (dicts, lists, tuples, scalars) with every non-finite float replaced by the string
    ``"Infinity"``, ``"-Infinity"`` or ``"NaN"``, so that strict JSON can hold it.

    Strings rather than null: a mean log-prob of -inf (a token of probability 0) is a real,
    least-seen-like score, not a missing one, and ``float("-Infinity")`` reads it back."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return "NaN" if math.isnan(obj) else ("Infinity" if obj > 0 else "-Infinity")
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


@contextmanager
def _removed_on_sigterm(pending: list[str]):
    """Within the block, SIGTERM first removes the files in ``pending``; the previous handler is
    restored on leaving it.

    Only SIGTERM's default action needs this: it ends the process at once, without running the
    ``except`` clause that removes the temporary file. So the handler removes the file, restores
    the default and sends the signal again: the process still ends by SIGTERM (status 143 in a
    shell). A handler installed from Python is left in place: it runs as Python code, so if it
    raises (SystemExit, say) the write's own cleanup removes the file, and if it returns the write
    completes. An ignored SIGTERM, or a handler set outside Python (which could not be restored),
    is left alone too. Python handles signals in the main thread only, so other threads change
    nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)
    if previous is not signal.SIG_DFL:
        yield
        return

    def remove_and_terminate(signum, frame):
        for tmp in pending:
            Path(tmp).unlink(missing_ok=True)
        signal.signal(signum, previous)
        os.kill(os.getpid(), signum)
        # Not reached: the default action has ended the process. Should the signal be blocked,
        # still leave with the status a shell gives to a process ended by it.
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, remove_and_terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def write_json_atomic(path: str | os.PathLike, obj) -> Path:
    """Write ``obj`` as indented JSON to ``path`` atomically (see :func:`write_text_atomic`)."""
    # allow_nan=False: an undefined figure must be written as null, never as the non-JSON NaN.
    return write_text_atomic(path, json.dumps(obj, indent=2, allow_nan=False) + "\n")
