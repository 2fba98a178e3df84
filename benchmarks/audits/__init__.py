"""The shift benchmark's library (``python -m benchmarks.shift`` runs it), one job a module:

- ``sets``: the question sets, the leak students and the protocol they are distilled with;
- ``analysis``: every ordered pair of sets audited by every candidate method, and the tallies;
- ``report``: the markdown and the verdict heat-map;
- ``accuracy``: answers judged right or wrong, and what a leak did to the score (also read by
  ``benchmarks.inflation``).

The students are distilled and scored with the real-student library (``benchmarks.student``).
"""
