"""Named TBD tasks over your own JSONL question files.

``tbd_jsonl`` scores one file per run. To score several sets in one run (say the questions you
distilled on, held-out ones, and a clean reference set) give each its own task:
``write_jsonl_task("my_heldout", "heldout.jsonl", "my_tasks/")`` writes ``my_tasks/my_heldout.yaml``,
and ``lm_eval --include_path my_tasks --tasks my_heldout,...`` runs it.
"""

from __future__ import annotations

import re
from pathlib import Path

from lm_eval_tbd.atomic import write_text_atomic
from lm_eval_tbd.data import read_questions_jsonl
from lm_eval_tbd.paths import tasks_dir

__all__ = ["write_jsonl_task"]

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]*$")


def write_jsonl_task(name: str, data_file: str | Path, directory: str | Path, **metadata) -> Path:
    """Write ``directory/<name>.yaml``: the TBD task over ``data_file`` (validated now, so a bad
    file fails here rather than mid-run). Extra ``metadata`` (e.g. ``tbd_max_tokens=300``) is
    stored in the task. Returns the YAML path."""
    if not _NAME.match(name):
        raise ValueError(f"task name {name!r}: use letters, digits, '_' or '-', starting with a letter")
    data_file = Path(data_file).resolve()
    read_questions_jsonl(data_file)
    from lm_eval_tbd.task_options import options_from_metadata

    options_from_metadata(metadata, task=name)
    lines = [
        f"include: {tasks_dir() / '_tbd_template_yaml'}",
        f"task: {name}",
        "custom_dataset: !function lm_eval_tbd.data.load_jsonl",
        "metadata:",
        "  version: 1.0",
        f"  tbd_data_file: {str(data_file)!r}",
        *(f"  {k}: {v!r}" for k, v in sorted(metadata.items())),
    ]
    return write_text_atomic(Path(directory) / f"{name}.yaml", "\n".join(lines) + "\n")
