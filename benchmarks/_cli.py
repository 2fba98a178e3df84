"""Command-line checks shared by the benchmark scripts."""

from __future__ import annotations

import argparse
import re

# A bare file name: no folder separators, and no leading dot (no hidden files, no "..").
_STEM = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*")


def check_stem(parser: argparse.ArgumentParser, option: str, stem: str) -> None:
    """Exit through ``parser.error`` (status 2, naming ``option``) unless ``stem`` is a plain
    output-file stem: letters, digits, '_', '.' and '-', not starting with '.'.

    Example: ``check_stem(parser, "--name", "run-1")`` returns; ``"../run"`` exits.
    """
    if not _STEM.fullmatch(stem):
        parser.error(f"{option} {stem!r}: use letters, digits, '_', '.' and '-' only, not starting with '.'")
