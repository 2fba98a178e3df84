"""Where the task YAMLs are: inside the installed package, or at the top of a source checkout."""

from __future__ import annotations

from pathlib import Path

__all__ = ["tasks_dir"]


def tasks_dir() -> Path:
    """The directory to pass as lm-eval's ``--include_path`` / ``TaskManager(include_path=...)``."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "tasks", here.parent / "tasks"):
        if (candidate / "_tbd_template_yaml").is_file():
            return candidate
    raise FileNotFoundError(f"lm_eval_tbd: task YAMLs not found beside {here}; is the package installed completely?")
