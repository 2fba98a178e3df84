"""Lets the stock ``lm_eval`` command find the TBD tasks with no flags.

Imported at interpreter start by ``lm_eval_tbd.pth`` in site-packages, so it must stay cheap: it
imports nothing heavy and only installs a one-shot import hook. When ``lm_eval.tasks.manager`` is
first imported, the hook wraps ``TaskManager.__init__`` to add this package's task directory to
``include_path`` (before the user's own paths, so theirs still override ours).

Switch it off with ``LM_EVAL_TBD_AUTOLOAD=0`` (then pass ``--include_path`` yourself).
"""

from __future__ import annotations

import os
import sys

ENV = "LM_EVAL_TBD_AUTOLOAD"
TARGET = "lm_eval.tasks.manager"


def patch_task_manager(module) -> None:
    import functools
    import inspect

    cls = module.TaskManager
    original = cls.__init__
    if getattr(original, "_lm_eval_tbd", False):
        return
    signature = inspect.signature(original)

    @functools.wraps(original)
    def __init__(self, *args, **kwargs):
        from lm_eval_tbd.paths import tasks_dir

        bound = signature.bind(self, *args, **kwargs)
        given = bound.arguments.get("include_path")
        paths = [] if given is None else list(given) if isinstance(given, (list, tuple)) else [given]
        ours = tasks_dir()
        if not any(os.path.realpath(p) == str(ours) for p in paths):
            bound.arguments["include_path"] = [ours, *paths]
        original(*bound.args, **bound.kwargs)

    __init__._lm_eval_tbd = True
    cls.__init__ = __init__


class _Finder:
    """Meta-path finder that fires once, for lm_eval.tasks.manager, then removes itself."""

    def find_spec(self, name, path=None, target=None):
        if name != TARGET:
            return None
        import importlib.util

        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        exec_module = spec.loader.exec_module

        def exec_and_patch(module):
            exec_module(module)
            patch_task_manager(module)

        spec.loader.exec_module = exec_and_patch
        return spec


def install() -> None:
    if os.environ.get(ENV, "1").strip().lower() in ("0", "false", "no", "off"):
        return
    if TARGET in sys.modules:
        patch_task_manager(sys.modules[TARGET])
    elif not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())


try:
    install()
except Exception as err:  # never break interpreter start-up
    print(f"lm_eval_tbd: task autoload disabled ({err})", file=sys.stderr)
