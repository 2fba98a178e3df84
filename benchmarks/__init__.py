"""The benchmarks: a small library and thin entry points, run as modules from the repository root.

Entry points (``python -m benchmarks.NAME --help``): ``real_student``, ``beyond``, ``shift``,
``inflation``, ``detection``, ``speed``, ``backend_agreement``. Each parses its options and calls
the library:

- ``protocol``: the real-student protocol (:class:`benchmarks.protocol.Protocol`);
- ``student``: the real student's split, distillation, scoring, cache, analysis and report;
- ``robustness``: what ``beyond`` adds on a real student (rewording, training after distillation);
- ``audits``: the shift benchmark's sets, audits and report, and the answer checks of ``inflation``;
- ``toy``: the detection benchmark's small GPT-2 along a memorisation curve;
- ``_speed_setup``, ``_speed_runs``, ``_speed_report``, ``_stats``, ``_speed_shim``: the speed
  benchmark's parts; ``_agreement``: the backend-agreement benchmark's;
- ``_cli``: shared command-line helpers (glibc's allocator settings for CPU runs are the package's
  ``lm_eval_tbd.backends.cpu_allocator``).

The distillation loop itself is the package's (``lm_eval_tbd.demo.distil``). Results are written
to ``benchmarks/results`` (docs/benchmarks.md says which command made which).
"""
