"""``python benchmarks/_speed_shim.py ARGS`` = ``python -m lm_eval ARGS`` plus two timers.

The speed benchmark (``python -m benchmarks.speed``) starts every measured run through this
file. It runs the ``lm_eval`` package's ``__main__`` with ``runpy`` exactly as ``python -m
lm_eval`` does (the same ``sys.argv`` tail, the working directory first on ``sys.path``), after
adding two timers and nothing else:

* around ``lm_eval.evaluator.evaluate`` (request building, model calls, metrics): ``evaluate_s``;
* around the evaluator's call of the model's request method (``generate_until``,
  ``generate_logprobs``, ...): wall and CPU seconds, request count, and the RSS and peak RSS before
  and after the call (the peak reached inside the call is known only when it rose there).

The timings are written as JSON to the file named by ``$TBD_SPEED_TIMINGS`` when lm_eval exits,
whether it succeeded or not.
"""

from __future__ import annotations

import json
import os
import resource
import runpy
import sys
import time

REQUEST_TYPES = {"generate_until", "generate_logprobs", "loglikelihood", "loglikelihood_rolling"}


def _rss_mib() -> float:
    """Current resident set size of this process, MiB."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _maxrss_mib() -> float:
    """Peak resident set size of this process so far, MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def install(timings: dict) -> None:
    """Patch ``lm_eval.evaluator`` so its model request calls and ``evaluate()`` fill ``timings``."""
    import lm_eval.evaluator as ev
    from lm_eval.api.model import LM

    def timed_getattr(obj, name, *default):
        attr = getattr(obj, name, *default)
        if name not in REQUEST_TYPES or not isinstance(obj, LM) or not callable(attr):
            return attr

        def timed(*args, **kwargs):
            rec = {"type": name, "n": len(args[0]) if args else None,
                   "rss_before_mib": _rss_mib(), "maxrss_before_mib": _maxrss_mib()}
            t0, c0 = time.perf_counter(), time.process_time()
            result = attr(*args, **kwargs)
            rec.update(seconds=time.perf_counter() - t0, cpu_seconds=time.process_time() - c0,
                       maxrss_after_mib=_maxrss_mib())
            timings["requests"].append(rec)
            return result

        return timed

    # The evaluator calls getattr(lm, reqtype)(requests): a module-level name lookup, so shadowing
    # the builtin in its globals reaches exactly that call.
    ev.getattr = timed_getattr
    evaluate = ev.evaluate

    def timed_evaluate(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return evaluate(*args, **kwargs)
        finally:
            timings["evaluate_s"] = time.perf_counter() - t0

    ev.evaluate = timed_evaluate  # simple_evaluate calls evaluate() through the module's globals


def main() -> None:
    """Run lm_eval's ``__main__`` with the timers; write the timings even when it fails."""
    out = os.environ["TBD_SPEED_TIMINGS"]
    timings = {"requests": [], "evaluate_s": None}
    # The one sys.path edit of the benchmarks, and an emulation, not an import fix: `python -m`
    # puts the working directory first on sys.path, a script run puts its own folder there
    # (benchmarks/), which lm_eval must not see. This makes the timed process start as
    # `python -m lm_eval` would.
    sys.path[0] = os.getcwd()
    install(timings)
    sys.argv = ["lm_eval", *sys.argv[1:]]
    try:
        runpy.run_module("lm_eval", run_name="__main__", alter_sys=True)
    finally:
        with open(out, "w") as f:
            json.dump(timings, f)


if __name__ == "__main__":
    main()
