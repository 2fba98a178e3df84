"""Errors in what the user gave (a ``--metadata`` option, a question file, ``tbd_max_tokens``
against the model's context) raised from code that lm-eval's own ``lm_eval`` command calls.

lm-eval calls the TBD tasks from its task loading and its model loop, so such an error reached
the user as the last line of a ~30-line traceback through lm-eval's internals. :func:`user_error`
marks the exception and installs (once, in the process where one is raised) a ``sys.excepthook``
that prints a marked exception that nothing caught as one line, ``lm-eval-tbd: error: <message>``,
and nothing else; the exit status stays 1, as for any uncaught exception. Anything else, and
every exception when ``LM_EVAL_TBD_TRACEBACK=1``, goes to the previous hook with its traceback.
Code that catches the exception (the Python API, the pytest gate) sees the same exception type
as before.
"""

from __future__ import annotations

import os
import sys

__all__ = ["user_error", "TRACEBACK_ENV"]

#: Set to 1 to get the full traceback of a marked error as well.
TRACEBACK_ENV = "LM_EVAL_TBD_TRACEBACK"
_MARK = "_lm_eval_tbd_user_error"
_installed = False


def user_error(err: BaseException) -> BaseException:
    """Mark ``err`` as an error in the user's input and return it (``raise user_error(err)``)."""
    setattr(err, _MARK, True)
    _install_hook()
    return err


def _marked(exc: BaseException | None) -> BaseException | None:
    """The marked exception in ``exc``'s chain (itself, its cause or context), if any."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if getattr(exc, _MARK, False):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def _install_hook() -> None:
    global _installed
    if _installed:
        return
    previous = sys.excepthook

    def hook(exc_type, exc, tb):
        ours = _marked(exc)
        if ours is not None and os.environ.get(TRACEBACK_ENV, "0") in ("", "0"):
            _close_progress_bars()
            print(f"lm-eval-tbd: error: {ours}", file=sys.stderr, flush=True)
            return
        previous(exc_type, exc, tb)

    sys.excepthook = hook
    _installed = True


def _close_progress_bars() -> None:
    """Close lm-eval's open tqdm bars first, so the message is not glued to a half-drawn bar and
    no bar is redrawn after it at exit."""
    std = sys.modules.get("tqdm.std")
    for bar in list(getattr(getattr(std, "tqdm", None), "_instances", ()) or ()):
        try:
            bar.close()
        except Exception:  # noqa: BLE001 - never hide the message behind a progress bar's error
            pass
