"""Atomic file writes: readers see the old file or the new one, never half of one."""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path

__all__ = ["write_text_atomic", "write_bytes_atomic", "write_json_atomic", "json_safe"]


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    return write_bytes_atomic(path, text.encode("utf-8"))


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


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


def write_json_atomic(path: str | os.PathLike, obj) -> Path:
    # allow_nan=False: an undefined figure must be written as null, never as the non-JSON NaN.
    return write_text_atomic(path, json.dumps(obj, indent=2, allow_nan=False) + "\n")
