"""Where the task YAMLs are: inside the installed package, or at the top of a source checkout."""

from __future__ import annotations

from pathlib import Path

__all__ = ["tasks_dir"]


def tasks_dir() -> Path:
    """The directory to pass as lm-eval's ``--include_path`` / ``TaskManager(include_path=...)``."""
    package = Path(__file__).resolve().parents[1]  # lm_eval_tbd/
    # An installed wheel carries them in the package; a source checkout at its top level.
    for candidate in (package / "tasks", package.parent / "tasks"):
        if (candidate / "_tbd_template_yaml").is_file():
            return candidate
    raise FileNotFoundError(f"lm_eval_tbd: task YAMLs not found in or beside {package}; "
                            "is the package installed completely?")
