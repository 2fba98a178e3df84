"""The application layer: the ``lm-eval-tbd`` command line, the terminal report, audit reports
and plots. It reads runs through :mod:`lm_eval_tbd.core` and never touches a model."""
