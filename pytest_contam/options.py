"""Command-line options of the ``contam`` group."""

from __future__ import annotations

__all__ = ["add_options"]


#: option -> (metavar, type, help); each overrides its configuration key, None meaning "not given"
OPTIONS = {
    "--contam-config": ("PATH", str, "configuration file (default: [tool.pytest_contam] in the rootdir's pyproject.toml)"),
    "--contam-results": ("DIR", str,
                         "lm_eval --output_path directory written with --log_samples (overrides 'results'/'model')"),
    "--contam-model": ("NAME", str, "lm-eval model name to run the TBD tasks with (overrides 'model'/'results')"),
    "--contam-model-args": ("ARGS", str, "lm-eval model_args for --contam-model (overrides 'model_args')"),
    "--contam-json": ("PATH", str, "write the gate summary as JSON to PATH (atomically)"),
    "--contam-top": ("N", int, "suspicious questions listed per failing benchmark (overrides 'top')"),
}


def add_options(parser) -> None:
    group = parser.getgroup("contam", "contamination gates (pytest-contam)")
    group.addoption("--contam", action="store_true", default=False,
                    help="turn the configured contamination thresholds into test items")
    for option, (metavar, kind, text) in OPTIONS.items():
        group.addoption(option, metavar=metavar, type=kind, default=None, help=text)
