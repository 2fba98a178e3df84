"""``[tool.pytest_contam]`` configuration: parsing and validation.

Every problem raises :class:`ConfigError` naming the key; the plugin turns it into a pytest usage
error (exit status 4).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

from lm_eval_tbd.core.gate import GateCriteria

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

# This module loads at every pytest start (the pytest11 entry point): what loads numpy and the
# rest of lm_eval_tbd (core.samples, .data, .outcomes, .scores, .options, .atomic, the lm_eval
# runner) is imported in the functions that need it, once a gate runs.

__all__ = ["ConfigError", "Threshold", "ContamConfig", "load_config", "parse_config"]

TOP_KEYS = {
    "results", "model", "model_args", "output", "apply_chat_template", "batch_size", "device",
    "limit", "data_dir", "metadata", "top", "benchmarks", "base_results", "base_model", "base_model_args",
}
BENCHMARK_KEYS = {"score_cutoff", "max_flagged_fraction", "reference", "score", "max_auc", "alpha",
                  "max_contaminated_fraction", "fdr", "combined_model", "min_generated_tokens", "max_text_auc",
                  "allow_confounded", "max_accuracy_gap", "accuracy_task"}
#: audit-mode keys about the shift between benchmark and reference (lm_eval_tbd.core.calibrated)
SHIFT_KEYS = ("min_generated_tokens", "max_text_auc", "allow_confounded")
CALIBRATED_KEYS = ("max_auc", "alpha", "max_contaminated_fraction")


class ConfigError(ValueError):
    """Invalid contamination-gate configuration; the message names the key."""


@dataclass(frozen=True)
class Threshold(GateCriteria):
    """Gate of one benchmark: :class:`~lm_eval_tbd.core.gate.GateCriteria` (its fields and their
    meaning) that must hold at least one limit that can fail."""

    def __post_init__(self) -> None:
        # A gate with no criterion has nothing that could fail: it would pass whatever the scores.
        calibrated = [k for k in CALIBRATED_KEYS if getattr(self, k) is not None]
        if self.score_cutoff is None and not (self.reference and calibrated) and self.max_accuracy_gap is None:
            raise ConfigError(f"benchmark {self.benchmark!r} needs score_cutoff or reference + one of "
                              f"{', '.join(CALIBRATED_KEYS)} or max_accuracy_gap: without one its gate could never fail")
        if (self.score == "combined") != (self.combined_model is not None):
            raise ConfigError(f"benchmark {self.benchmark!r}: score = \"combined\" and combined_model (a model "
                              "written by 'lm-eval-tbd combine fit') go together")


@dataclass(frozen=True)
class ContamConfig:
    source: str  # where the configuration came from, for messages
    benchmarks: tuple[Threshold, ...]
    results: Path | None = None
    model: str | None = None
    model_args: str = ""
    output: Path = Path(".pytest_contam")
    apply_chat_template: bool = True  # the TBD protocol prompts chat models with their template
    batch_size: str = "1"
    device: str | None = None
    limit: int | None = None
    data_dir: Path | None = None
    metadata: dict = field(default_factory=dict)
    top: int = 5
    # the base model's scores, for the base-difference calibration of audit mode: an lm_eval
    # output folder, or a model the gate runs with the run options above
    base_results: Path | None = None
    base_model: str | None = None
    base_model_args: str = ""

    def with_overrides(self, **overrides) -> ContamConfig:
        """CLI options override the file (None means "not given")."""
        given = {k: v for k, v in overrides.items() if v is not None}
        if "results" in given and "model" not in given:
            given["model"] = None  # --contam-results wins over a model spec in the file
        if given.get("model") and "results" not in given:
            given["results"] = None
        if given.get("top") is not None and given["top"] < 1:
            raise ConfigError(f"--contam-top must be >= 1, got {given['top']}")
        cfg = replace(self, **given)
        _check_source(cfg)
        return cfg


def _number(value, key: str, lo: float, hi: float, *, lo_open: bool = False, hi_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{key} must be a number, got {value!r}")
    ok = (lo < value if lo_open else lo <= value) and (value < hi if hi_open else value <= hi)
    if not ok:
        raise ConfigError(f"{key} must be in {'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}, got {value!r}")
    return float(value)


def _threshold(name: str, spec: dict, where: str, base_dir: Path | None = None) -> Threshold:
    from lm_eval_tbd.core.scores import SCORES

    bad = sorted(set(spec) - BENCHMARK_KEYS)
    if bad:
        raise ConfigError(f"unknown key {where}{bad[0]}; known: {sorted(BENCHMARK_KEYS)}")
    kw: dict = {}
    if "score_cutoff" in spec:
        kw["score_cutoff"] = _number(spec["score_cutoff"], f"{where}score_cutoff", 0.0, 1.0, lo_open=True)
    if "max_flagged_fraction" in spec:
        if "score_cutoff" not in spec:
            raise ConfigError(f"{where}max_flagged_fraction needs {where}score_cutoff")
        # 1.0 would make the gate unable to fail.
        kw["max_flagged_fraction"] = _number(spec["max_flagged_fraction"], f"{where}max_flagged_fraction", 0.0, 1.0,
                                             hi_open=True)
    for key in ("reference", "score"):
        if key in spec:
            kw[key] = _typed(spec, key, str, where)
    if kw.get("reference") == "":
        raise ConfigError(f"{where}reference must name a task, got an empty string")
    if kw.get("score", "tbd") not in SCORES:
        raise ConfigError(f"{where}score must be one of {sorted(SCORES)}, got {kw['score']!r}")
    for key in CALIBRATED_KEYS + ("fdr",):
        if key in spec:
            if "reference" not in spec:
                raise ConfigError(f"{where}{key} needs {where}reference (a clean reference task to calibrate against)")
            # max_auc / max_contaminated_fraction of 1.0 could never fail either.
            kw[key] = _number(spec[key], f"{where}{key}", 0.0, 1.0, lo_open=key in ("alpha", "fdr"),
                              hi_open=key in ("max_auc", "max_contaminated_fraction"))
    if "reference" in spec and not any(k in spec for k in CALIBRATED_KEYS):
        raise ConfigError(f"{where}reference needs at least one of {', '.join(CALIBRATED_KEYS)}")
    if kw.get("reference") == name:
        raise ConfigError(f"{where}reference must be another task than {name!r} itself")
    if "max_accuracy_gap" in spec:
        # 1.0 could never fail (a gap is at most 1).
        kw["max_accuracy_gap"] = _number(spec["max_accuracy_gap"], f"{where}max_accuracy_gap", 0.0, 1.0, hi_open=True)
    if "accuracy_task" in spec:
        from lm_eval_tbd.core.outcomes import parse_task_metric

        try:
            parse_task_metric(_typed(spec, "accuracy_task", str, where))
        except ValueError as err:
            raise ConfigError(f"{where}accuracy_task: {err}") from None
        kw["accuracy_task"] = spec["accuracy_task"]
    if "score_cutoff" not in kw and "reference" not in kw and "max_accuracy_gap" not in kw:
        raise ConfigError(f"{where.rstrip('.')} needs score_cutoff (flag questions whose TBD is below it) or reference + "
                          f"{' / '.join(CALIBRATED_KEYS)} (calibrated against a clean reference task) or max_accuracy_gap "
                          "(accuracy on the most seen-like quarter against the rest)")
    for key in SHIFT_KEYS:
        if key in spec and "reference" not in spec:
            raise ConfigError(f"{where}{key} needs {where}reference (it is a control of audit mode)")
    if "min_generated_tokens" in spec:
        kw["min_generated_tokens"] = _typed(spec, "min_generated_tokens", int, where)
        if kw["min_generated_tokens"] < 0:
            raise ConfigError(f"{where}min_generated_tokens must be >= 0 (0 keeps every question), "
                              f"got {kw['min_generated_tokens']}")
    if "max_text_auc" in spec:
        # 1.0 would let any pair of question sets through; 0.5 would call every pair confounded.
        kw["max_text_auc"] = _number(spec["max_text_auc"], f"{where}max_text_auc", 0.5, 1.0, lo_open=True, hi_open=True)
    if "allow_confounded" in spec:
        kw["allow_confounded"] = _typed(spec, "allow_confounded", bool, where)
    if "combined_model" in spec:
        if kw.get("score") != "combined":
            raise ConfigError(f"{where}combined_model needs {where}score = \"combined\"")
        if "reference" not in kw:
            raise ConfigError(f"{where}score = \"combined\" is compared against a reference task: set {where}reference")
        kw["combined_model"] = (base_dir or Path.cwd()) / _typed(spec, "combined_model", str, where)
    elif kw.get("score") == "combined":
        raise ConfigError(f"{where}score = \"combined\" needs {where}combined_model (written by 'lm-eval-tbd combine fit')")
    return Threshold(name, **kw)


def _typed(table: dict, key: str, kind, where: str):
    value = table[key]
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ConfigError(f"{where}{key} must be an integer, got {value!r}")
    if kind is not int and not isinstance(value, kind):
        raise ConfigError(f"{where}{key} must be {getattr(kind, '__name__', kind)}, got {value!r}")
    return value


def _check_source(cfg: ContamConfig) -> None:
    if cfg.results is None and not cfg.model:
        raise ConfigError(
            f"{cfg.source}: give either 'results' (an lm_eval --output_path directory written with "
            "--log_samples) or 'model' (+ 'model_args') to run the TBD tasks; or --contam-results DIR"
        )
    if cfg.results is not None and cfg.model:
        raise ConfigError(f"{cfg.source}: 'results' and 'model' are mutually exclusive")
    if cfg.base_results is not None and cfg.base_model:
        raise ConfigError(f"{cfg.source}: 'base_results' and 'base_model' are mutually exclusive")
    if cfg.base_model and not cfg.model:
        raise ConfigError(f"{cfg.source}: 'base_model' is run with the options of 'model'; with 'results', give "
                          "the base model's run as 'base_results' (an lm_eval --output_path of the same tasks)")
    if cfg.base_model_args and not cfg.base_model:
        raise ConfigError(f"{cfg.source}: 'base_model_args' needs 'base_model'")
    if (cfg.base_results is not None or cfg.base_model) and not any(t.reference for t in cfg.benchmarks):
        raise ConfigError(f"{cfg.source}: a base model's run calibrates audit mode; no benchmark sets a 'reference'")


def parse_config(table: dict, source: str, base_dir: Path, where: str = "tool.pytest_contam.") -> ContamConfig:
    """Validate the configuration table; relative paths are resolved from ``base_dir``. ``where``
    prefixes key names in messages ("" for the top level of a standalone file)."""
    if not isinstance(table, dict):
        raise ConfigError(f"{source}: [{where.rstrip('.')}] must be a table")
    unknown = sorted(set(table) - TOP_KEYS)
    if unknown:
        raise ConfigError(f"{source}: unknown key(s) {', '.join(f'{where}{k}' for k in unknown)}; known: {sorted(TOP_KEYS)}")

    benches = table.get("benchmarks")
    if not isinstance(benches, dict) or not benches:
        raise ConfigError(f"{source}: no benchmarks configured; add [{where}benchmarks.<task>] tables with score_cutoff")
    thresholds = []
    for name, spec in benches.items():
        bwhere = f"{where}benchmarks.{name}."
        if not isinstance(spec, dict):
            raise ConfigError(f"{source}: {bwhere.rstrip('.')} must be a table")
        try:
            thresholds.append(_threshold(name, spec, bwhere, base_dir))
        except ConfigError as err:
            raise ConfigError(f"{source}: {err}") from None

    try:
        kwargs = _run_options(table, where, base_dir)
    except ConfigError as err:
        raise ConfigError(f"{source}: {err}") from None
    return ContamConfig(source=source, benchmarks=tuple(thresholds), **kwargs)


#: keys that only matter when the gate runs the model itself
MODEL_RUN_KEYS = ("model_args", "apply_chat_template", "batch_size", "device", "limit", "data_dir", "metadata", "output")


def _run_options(table: dict, where: str, base_dir: Path) -> dict:
    if "results" in table:
        ignored = [k for k in MODEL_RUN_KEYS if k in table]
        if ignored:
            raise ConfigError(f"{where}{ignored[0]} has no effect with {where}results (scores are read, not "
                              "computed); set it on the lm_eval command that wrote the results")
    kwargs = {}
    for key, kind in (("model", str), ("model_args", str), ("apply_chat_template", bool), ("device", str),
                      ("metadata", dict), ("top", int), ("limit", int), ("base_model", str), ("base_model_args", str)):
        if key in table:
            kwargs[key] = _typed(table, key, kind, where)
    for key in ("results", "output", "data_dir", "base_results"):
        if key in table:
            kwargs[key] = base_dir / _typed(table, key, str, where)
    if "batch_size" in table:
        value = table["batch_size"]
        if not (isinstance(value, int) and not isinstance(value, bool) and value >= 1) and value != "auto":
            raise ConfigError(f"{where}batch_size must be an integer >= 1 or \"auto\", got {value!r}")
        kwargs["batch_size"] = str(value)
    if kwargs.get("top", 1) < 1 or (kwargs.get("limit") is not None and kwargs["limit"] < 1):
        raise ConfigError(f"{where}top and {where}limit must be >= 1")
    if "metadata" in kwargs:
        from lm_eval_tbd.core.options import options_from_metadata

        try:
            options_from_metadata(kwargs["metadata"], task="(gate)")
        except ValueError as err:
            raise ConfigError(f"{where}metadata: {err}") from None
    return kwargs


def load_config(path: Path, *, standalone: bool) -> ContamConfig:
    """Read ``path``: a pyproject.toml ([tool.pytest_contam]) or, when ``standalone``, a file whose
    top level (or [tool.pytest_contam] table) is the configuration."""
    if not path.is_file():
        raise ConfigError(f"contamination config not found: {path}")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: invalid TOML ({err})") from None
    table = data.get("tool", {}).get("pytest_contam")
    if table is not None:
        return parse_config(table, str(path), path.parent)
    if not standalone:
        raise ConfigError(f"{path}: no [tool.pytest_contam] table (or pass --contam-config PATH)")
    return parse_config(data, str(path), path.parent, where="")
