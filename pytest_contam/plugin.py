"""pytest-contam hooks (registered through the ``pytest11`` entry point).

Without ``--contam`` the plugin only adds its options and the ``contam`` marker (and removes a
stale ``--contam-json`` file); it imports no model code (no torch, no lm-eval) either way until
a gate actually runs.
"""

from __future__ import annotations

import os
import shlex
import warnings
from pathlib import Path

import pytest

from lm_eval_tbd.core.gate import GateResult, evaluate, missing
from pytest_contam.config import ConfigError, ContamConfig, load_config
from pytest_contam.options import add_options
from pytest_contam.source import LmEvalRunError

# This module loads at every pytest start (the pytest11 entry point): what loads numpy and the
# rest of lm_eval_tbd (core.samples, .data, .outcomes, .scores, .options, .atomic, the lm_eval
# runner) is imported in the functions that need it, once a gate runs.

STATE = pytest.StashKey["ContamSession"]()
PROPERTY = "contam_gate"  # user property of a gate's report: its GateResult as JSON
CHECK_PROPERTY = "contam_check"  # user property of a hand-written contam check's reports: its benchmark
SELECTION = "contam_selection"  # an xdist worker's selected hand-written checks, sent to the controller
GATE_PREFIX = "contam::"  # node ids of the gates

# What missing or unusable results raise (no samples file, a malformed one, an undefined
# statistic, a failed lm_eval run): the gate fails with the reason. Anything else is a bug and
# surfaces as an ordinary test error with its traceback.
RESULTS_ERRORS = (OSError, ValueError, LmEvalRunError)


class ContamWarning(UserWarning):
    """A gate passed only because the configuration allows it (e.g. ``allow_confounded``)."""


class ContamGateFailure(Exception):
    """A benchmark's contamination gate failed; the message says why."""


class ContamSession:
    """Per-process state: the configuration and the (lazily located) results directory."""

    def __init__(self, cfg: ContamConfig) -> None:
        self.cfg = cfg
        self._results_dir: Path | None = None
        self._source_error: Exception | None = None
        self._base_dir: Path | None = None
        self._base_error: Exception | None = None

    def results_dir(self) -> Path:
        # A failed model run is remembered: the other gates fail with it instead of re-running.
        if self._source_error is not None:
            raise self._source_error
        if self._results_dir is None:
            from pytest_contam.source import results_dir

            try:
                self._results_dir = results_dir(self.cfg)
            except Exception as err:
                self._source_error = err
                raise
        return self._results_dir

    def run(self, task: str):
        """The per-question TBD scores of ``task`` (an ``lm_eval_tbd.core.runs.TaskRun``)."""
        from lm_eval_tbd.core.samples import load_run

        return load_run(self.results_dir(), task)

    def base_run(self, task: str):
        """The base model's run of ``task``, or None when the configuration gives no base model.
        A failed base-model run is remembered like the model's own."""
        if not (self.cfg.base_results is not None or self.cfg.base_model):
            return None
        if self._base_error is not None:
            raise self._base_error
        from lm_eval_tbd.core.samples import load_run
        from pytest_contam.source import base_results_dir

        try:
            if self._base_dir is None:
                self._base_dir = base_results_dir(self.cfg)
        except Exception as err:
            self._base_error = err
            raise
        try:
            return load_run(self._base_dir, task)
        except FileNotFoundError as err:
            raise FileNotFoundError(f"base model's run: {err}") from None


def pytest_addoption(parser, pluginmanager) -> None:
    add_options(parser)
    _remove_stale_json_early(pluginmanager)


def _given_json_path(args) -> str | None:
    """The last ``--contam-json`` value in a command line (as argparse would take it), or None."""
    value = None
    for i, arg in enumerate(args):
        if arg == "--":
            break
        if arg == "--contam-json" and i + 1 < len(args):
            value = args[i + 1]
        elif arg.startswith("--contam-json="):
            value = arg.split("=", 1)[1]
    return value


def _remove_stale_json_early(pluginmanager) -> None:
    """Remove the previous ``--contam-json`` file as soon as the plugin is registered: pytest
    parses every option (``--contam-top abc`` included) before any later hook runs, so a command
    line it refuses (exit status 4) would otherwise leave the previous verdict behind. Only the
    file is removed here; the full checks (a directory, an unwritable path) come in
    pytest_load_initial_conftests / pytest_configure."""
    config = pluginmanager.get_plugin("pytestconfig")
    if config is None or os.environ.get("PYTEST_XDIST_WORKER"):
        return
    args = list(config.invocation_params.args)
    try:
        args = shlex.split(os.environ.get("PYTEST_ADDOPTS", "")) + [*config.getini("addopts"), *args]
    except (ValueError, AttributeError):  # an unparsable PYTEST_ADDOPTS, or no ini file read yet
        pass
    given = _given_json_path(args)
    if not given:
        return
    path = Path(config.invocation_params.dir) / given
    try:
        if path.is_symlink() or path.is_file():
            path.unlink()
    except OSError:
        pass  # reported as a usage error by _checked_json_path


def _config_path(config) -> tuple[Path, bool]:
    given = config.getoption("contam_config")
    if given:
        if Path(given).is_dir():
            raise pytest.UsageError(f"pytest-contam: --contam-config {given}: is a directory; give the TOML file "
                                    "(top level, or a [tool.pytest_contam] table)")
        return Path(given).resolve(), True
    inipath = config.inipath
    if inipath is not None and inipath.name == "pyproject.toml":
        return inipath, False
    return config.rootpath / "pyproject.toml", False


def _checked_json_path(given: str) -> Path:
    """The --contam-json path, with the previous run's file removed; a usage error naming the
    option and path when no file can be written there.

    The old file goes first thing, so a run that ends early (a usage error, SIGTERM, a crash)
    leaves no file rather than the previous run's verdict.
    """
    path = Path(given).absolute()
    if path.is_dir():
        raise pytest.UsageError(f"pytest-contam: --contam-json {given}: is a directory; give the path of the JSON "
                                f"file to write, e.g. {Path(given) / 'contam.json'}")
    blocking = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        raise pytest.UsageError(f"pytest-contam: --contam-json {given}: {blocking} is a file, not a directory")
    try:
        path.unlink(missing_ok=True)
    except OSError as err:
        raise pytest.UsageError(f"pytest-contam: --contam-json {given}: cannot remove the previous report ({err})") from None
    return path


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config, parser, args) -> None:
    # The first hook that sees the options, before conftest files load: a conftest that fails to
    # import (exit status 4) must not leave the previous run's verdict behind either. xdist
    # workers leave the file to their controller (workerinput is not set yet at this point).
    given = getattr(early_config.known_args_namespace, "contam_json", None)
    if given and not os.environ.get("PYTEST_XDIST_WORKER"):
        _checked_json_path(given)


@pytest.hookimpl(tryfirst=True)  # before other plugins' configure can fail: no stale --contam-json survives
def pytest_configure(config) -> None:
    config.addinivalue_line(
        "markers", "contam(benchmark): a hand-written contamination test; runs only with --contam, and the "
        "`contam` fixture then returns that benchmark's per-question TBD scores",
    )
    # Again here: the plugin may have been registered after the hook above (pytest_plugins in a
    # conftest). Only the xdist controller writes the file.
    given = config.getoption("contam_json")
    json_path = _checked_json_path(given) if given and not _is_worker(config) else None
    if not config.getoption("contam"):
        return
    try:
        path, standalone = _config_path(config)
        cfg = load_config(path, standalone=standalone).with_overrides(
            results=Path(r).resolve() if (r := config.getoption("contam_results")) else None,
            model=config.getoption("contam_model"),
            model_args=config.getoption("contam_model_args"),
            top=config.getoption("contam_top"),
        )
    except ConfigError as err:
        raise pytest.UsageError(f"pytest-contam: {err}") from None
    except UnicodeDecodeError:
        from lm_eval_tbd.core.data import utf8_error_message

        raise pytest.UsageError(f"pytest-contam: {utf8_error_message(path)} (a TOML file is UTF-8)") from None
    except OSError as err:
        raise pytest.UsageError(f"pytest-contam: cannot read the contamination config {path}: {err}") from None
    config.stash[STATE] = ContamSession(cfg)
    config.pluginmanager.register(ContamReporter(config, json_path), "contam-reporter")


class ContamCollector(pytest.Collector):
    def collect(self):
        return [ContamItem.from_parent(self, name=t.benchmark, threshold=t)
                for t in self.config.stash[STATE].cfg.benchmarks]


class ContamItem(pytest.Item):
    def __init__(self, *, threshold, **kwargs) -> None:
        super().__init__(**kwargs)
        self.threshold = threshold
        self.add_marker("contam")

    def runtest(self) -> None:
        state = self.config.stash[STATE]
        t = self.threshold
        try:
            run = state.run(t.benchmark)
            reference = state.run(t.reference) if t.reference else None
            base = state.base_run(t.benchmark) if t.reference else None
            base_reference = state.base_run(t.reference) if base is not None else None
            result = evaluate(t, run, top=state.cfg.top, reference=reference, base=base, base_reference=base_reference,
                              accuracy=True)
        except RESULTS_ERRORS as err:  # no verdict from the results is a failed gate, never a pass
            result = missing(t, f"no usable results: {_reason(err)}")
        self.user_properties.append((PROPERTY, result.to_json()))
        for text in result.warnings:
            warnings.warn(ContamWarning(text), stacklevel=1)
        if not result.passed:
            raise ContamGateFailure(result.message())

    def repr_failure(self, excinfo, style=None):
        if excinfo.errisinstance(ContamGateFailure):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style=style)

    def _traceback_filter(self, excinfo):
        # A bug in the gate: show its traceback from runtest on, as pytest does for test functions
        # (pytest's runner and pluggy frames say nothing about it). pytest calls this without
        # --fulltrace; the default would keep every frame.
        return excinfo.traceback.cut(path=__file__).filter(excinfo)

    def reportinfo(self):
        return self.config.stash[STATE].cfg.source, None, f"contamination gate {self.name}"


def _reason(err: Exception) -> str:
    """The message of an expected results error, with its type where the message alone is unclear."""
    if isinstance(err, (FileNotFoundError, ValueError, LmEvalRunError)):
        return str(err)
    return f"{type(err).__name__}: {err}"


def _check_benchmark(item) -> str | None:
    """The benchmark of a hand-written ``@pytest.mark.contam("task")`` check (None without one)."""
    marker = item.get_closest_marker("contam")
    return marker.args[0] if marker.args else None


@pytest.hookimpl(tryfirst=True)  # before -k/-m deselection, so gates can be selected like tests
def pytest_collection_modifyitems(session, config, items) -> None:
    if STATE not in config.stash:
        for item in items:
            if item.get_closest_marker("contam"):
                item.add_marker(pytest.mark.skip(reason="contamination checks run with --contam"))
        return
    # Reports carry user properties, also from xdist workers: the reporter tells hand-written
    # checks' outcomes from other tests' by this one.
    for item in items:
        if item.get_closest_marker("contam"):
            item.user_properties.append((CHECK_PROPERTY, _check_benchmark(item)))
    # The session's nodeid is "", so give the collector its own: gates become "contam::<task>".
    items.extend(ContamCollector.from_parent(session, name="contam", nodeid="contam").collect())


@pytest.fixture
def contam(request):
    """Per-question TBD scores: with ``@pytest.mark.contam("task")`` that task's run
    (``lm_eval_tbd.core.runs.TaskRun``), otherwise the session object, whose ``run(task)`` loads one."""
    state = request.config.stash.get(STATE, None)
    if state is None:
        pytest.skip("contamination checks run with --contam")
    marker = request.node.get_closest_marker("contam")
    if marker is not None and marker.args:
        return state.run(marker.args[0])
    return state


def _is_worker(config) -> bool:
    return hasattr(config, "workerinput")


_SEVERITY = ("passed", "skipped", "failed", "error")


def _outcome(report) -> str | None:
    """A report's outcome for a hand-written check: "passed", "skipped", "failed" (in the test)
    or "error" (in setup or teardown); None for other outcomes (e.g. a rerun plugin's)."""
    if report.failed:
        return "failed" if report.when == "call" else "error"
    if report.skipped:
        return "skipped"
    return "passed" if report.passed else None


class ContamReporter:
    """Registered with --contam only: collects gate results and hand-written checks' outcomes
    from reports (in the pytest-xdist controller too, where workers' reports arrive), then prints
    and writes the summary once."""

    def __init__(self, config, json_path: Path | None) -> None:
        self.config = config
        self.json_path = json_path
        self.results: list[GateResult] = []
        self.selected: set[str] = set()  # gates left after -k/-m selection
        self.selected_checks: dict[str, str | None] = {}  # hand-written checks left: node id -> benchmark
        self.check_outcomes: dict[str, str] = {}  # node id -> worst outcome of its reports

    def pytest_collection_finish(self, session) -> None:
        # In-process runs and xdist workers; the xdist controller collects nothing (see below).
        self.selected = {item.name for item in session.items if isinstance(item, ContamItem)}
        self.selected_checks = {item.nodeid: _check_benchmark(item) for item in session.items
                                if not isinstance(item, ContamItem) and item.get_closest_marker("contam")}
        if _is_worker(self.config):
            self.config.workeroutput[SELECTION] = {"checks": self.selected_checks}

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node, ids) -> None:
        # xdist controller: each worker collects (and deselects) the same items and sends their ids.
        self.selected |= {nodeid[len(GATE_PREFIX):] for nodeid in ids if nodeid.startswith(GATE_PREFIX)}

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node, error) -> None:
        # xdist controller: node ids alone do not show which tests are contam checks; a worker that
        # finished tells (any one does: they all collect the same items).
        selection = getattr(node, "workeroutput", {}).get(SELECTION)
        if selection:
            self.selected_checks.update(selection["checks"])

    def pytest_runtest_logreport(self, report) -> None:
        for key, value in report.user_properties:
            if key == PROPERTY and report.when == "call":
                self.results.append(GateResult.from_json(value))
            elif key == CHECK_PROPERTY and (outcome := _outcome(report)) is not None:
                self.selected_checks.setdefault(report.nodeid, value)
                previous = self.check_outcomes.get(report.nodeid, "passed")
                self.check_outcomes[report.nodeid] = max(previous, outcome, key=_SEVERITY.index)

    def checks(self) -> dict[str, dict]:
        """The selected hand-written checks: node id -> {"benchmark", "outcome"} (outcome None
        when the check never reported, e.g. in an interrupted run)."""
        return {nodeid: {"benchmark": benchmark, "outcome": self.check_outcomes.get(nodeid)}
                for nodeid, benchmark in self.selected_checks.items()}

    def pytest_report_collectionfinish(self, config, start_path, items):
        names = [t.benchmark for t in config.stash[STATE].cfg.benchmarks]
        return f"contamination gates: {len(names)} configured ({', '.join(names)}) from {config.stash[STATE].cfg.source}"

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if _is_worker(self.config) or not self.results:
            return
        from pytest_contam.report import summary_table_text

        terminalreporter.write_sep("=", "contamination gates")
        terminalreporter.write(summary_table_text(self.results, width=terminalreporter._tw.fullwidth,
                                                  markup=terminalreporter.hasmarkup))

    def pytest_sessionfinish(self, session) -> None:
        if self.json_path is not None:  # never set in xdist workers
            from lm_eval_tbd.core.atomic import write_json_atomic
            from pytest_contam.report import summary_json

            write_json_atomic(self.json_path, summary_json(self.results, sorted(self.selected), self.checks()))
