"""Command-line options of the ``contam`` group."""

from __future__ import annotations

__all__ = ["add_options"]


def add_options(parser) -> None:
    group = parser.getgroup("contam", "contamination gates (pytest-contam)")
    group.addoption("--contam", action="store_true", default=False,
                    help="turn the configured contamination thresholds into test items")
    group.addoption("--contam-config", metavar="PATH", default=None,
                    help="configuration file (default: [tool.pytest_contam] in the rootdir's pyproject.toml)")
    group.addoption("--contam-results", metavar="DIR", default=None,
                    help="lm_eval --output_path directory written with --log_samples (overrides 'results'/'model')")
    group.addoption("--contam-model", metavar="NAME", default=None,
                    help="lm-eval model name to run the TBD tasks with (overrides 'model'/'results')")
    group.addoption("--contam-model-args", metavar="ARGS", default=None,
                    help="lm-eval model_args for --contam-model (overrides 'model_args')")
    group.addoption("--contam-json", metavar="PATH", default=None,
                    help="write the gate summary as JSON to PATH (atomically)")
    group.addoption("--contam-top", metavar="N", type=int, default=None,
                    help="suspicious questions listed per failing benchmark (overrides 'top')")
