"""The core: the generation record, the scores, the statistics, question data, the run model and
the readers of logged runs. Plain Python, numpy, scipy and scikit-learn: no torch, no lm-eval,
so every module here can be used (and tested) without a model or the harness."""
