"""pytest-contam: contamination gates for model-release CI (``pytest --contam``)."""
