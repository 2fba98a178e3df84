"""Named TBD tasks over your own JSONL question files.

``tbd_jsonl`` scores one file per run. To score several sets in one run (say the questions you
distilled on, held-out ones, and a clean reference set) give each its own task:
``write_jsonl_task("my_heldout", "heldout.jsonl", "my_tasks/")`` writes ``my_tasks/my_heldout.yaml``,
and ``lm_eval --include_path my_tasks --tasks my_heldout,...`` runs it.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from lm_eval_tbd.core.atomic import write_text_atomic
from lm_eval_tbd.core.data import read_questions_jsonl
from lm_eval_tbd.core.options import options_from_metadata
from lm_eval_tbd.core.paths import tasks_dir

__all__ = ["write_jsonl_task", "builtin_names"]

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]*$")


def builtin_names() -> set[str]:
    """The package's own task and group names (tbd_aime24, tbd_aime, tbd_jsonl, ...)."""
    names = set()
    for path in tasks_dir().glob("*.yaml"):
        names |= set(re.findall(r"^(?:task|group):\s*([A-Za-z0-9_\-]+)\s*$", path.read_text(encoding="utf-8"),
                                flags=re.MULTILINE))
    return names


def write_jsonl_task(name: str, data_file: str | Path, directory: str | Path, **metadata) -> Path:
    """Write ``directory/<name>.yaml``: the TBD task over ``data_file`` (validated now, so a bad
    file fails here rather than mid-run). Extra ``metadata`` (e.g. ``tbd_max_tokens=300``) is
    stored in the task. Returns the YAML path.

    The name must be letters, digits, '_' or '-' (nothing after them, not even a newline), and
    not one of the package's own tasks, which it would shadow."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(f"task name {name!r}: use letters, digits, '_' or '-', starting with a letter")
    if name in builtin_names():
        raise ValueError(f"task name {name!r} is one of lm-eval-tbd's own tasks, which a task of that name would "
                         "shadow (or be shadowed by); choose another name")
    data_file = Path(data_file).resolve()
    read_questions_jsonl(data_file)

    options_from_metadata(metadata, task=name)
    head = {"include": str(tasks_dir() / "_tbd_template_yaml"), "task": name}
    meta = {"metadata": {"version": 1.0, "tbd_data_file": str(data_file), **dict(sorted(metadata.items()))}}
    text = _yaml(head) + _LOADER_LINE + "\n" + _yaml(meta)
    return write_text_atomic(Path(directory) / f"{name}.yaml", text)


# lm-eval's YAML loader resolves the ``!function`` tag; safe_dump cannot write a custom tag, so
# this one line (a fixed, plain module path) is written as it is and everything else is dumped.
_LOADER_LINE = "custom_dataset: !function lm_eval_tbd.core.data.load_jsonl"


def _yaml(mapping: dict) -> str:
    """``mapping`` as block YAML through PyYAML, so any path (backslashes, both quote kinds,
    ``: ``, non-ASCII) loads back unchanged; keys in the given order, lines never folded."""
    return yaml.safe_dump(mapping, sort_keys=False, allow_unicode=True, default_flow_style=False, width=2**31 - 1)
