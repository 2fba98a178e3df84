"""Command-line helpers shared by the benchmark scripts: output stems, the command a result
records, progress lines."""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path

# A bare file name: no folder separators, and no leading dot (no hidden files, no "..").
_STEM = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*")


def check_stem(parser: argparse.ArgumentParser, option: str, stem: str) -> None:
    """Exit through ``parser.error`` (status 2, naming ``option``) unless ``stem`` is a plain
    output-file stem: letters, digits, '_', '.' and '-', not starting with '.'.

    Example: ``check_stem(parser, "--name", "run-1")`` returns; ``"../run"`` exits.
    """
    if not _STEM.fullmatch(stem):
        parser.error(f"{option} {stem!r}: use letters, digits, '_', '.' and '-' only, not starting with '.'")


def command_line(argv: list[str], script: str = "real_student.py") -> str:
    """The command as run, less --out and --work, with --data, --data-dir and --base as bare file
    names (a machine's paths must not reach committed results)."""
    kept, action = [], None
    for a in argv:
        opt, eq, value = a.partition("=")
        if action == "drop":
            action = None
        elif action == "name":
            kept.append(Path(a).name)
            action = None
        elif opt in ("--out", "--work"):
            action = None if eq else "drop"
        elif opt in ("--data", "--data-dir", "--base"):
            kept.append(f"{opt}={Path(value).name}" if eq else opt)
            action = None if eq else "name"
        else:
            kept.append(a)
    return shlex.join(["python", f"benchmarks/{script}", *kept])


def log(msg: str) -> None:
    """A progress line, flushed at once (the scoring subprocesses write to the same terminal)."""
    print(msg, flush=True)
