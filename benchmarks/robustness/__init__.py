"""Beyond the paper on a real student (``python -m benchmarks.beyond`` runs it): every score, the
combined detector and two threats on the last checkpoint of a ``benchmarks.real_student`` run,
one job a module:

- ``data``: unrelated items for training after distillation, the questions reworded;
- ``analysis``: per-condition figures, each score's change under a threat, the verdicts;
- ``report``: the markdown;
- ``pipeline``: the conditions end to end, from the real-student run to the summary.
"""
