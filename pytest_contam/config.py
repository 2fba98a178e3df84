"""``[tool.pytest_contam]`` configuration: parsing and validation.

Every problem raises :class:`ConfigError` naming the key; the plugin turns it into a pytest usage
error (exit status 4).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["ConfigError", "Threshold", "ContamConfig", "load_config", "parse_config"]

TOP_KEYS = {
    "results", "model", "model_args", "output", "apply_chat_template", "batch_size", "device",
    "limit", "data_dir", "metadata", "top", "benchmarks",
}
BENCHMARK_KEYS = {"score_cutoff", "max_flagged_fraction"}
# Calibrated thresholds against a clean reference set come with the statistics issue.
RESERVED_BENCHMARK_KEYS = {"reference", "max_auc", "alpha", "max_contaminated_fraction"}


class ConfigError(ValueError):
    """Invalid contamination-gate configuration; the message names the key."""


@dataclass(frozen=True)
class Threshold:
    """Gate of one benchmark: a question is flagged when its TBD < ``score_cutoff`` (lower = more
    seen-like); the benchmark fails when the flagged fraction exceeds ``max_flagged_fraction``."""

    benchmark: str
    score_cutoff: float
    max_flagged_fraction: float = 0.0


@dataclass(frozen=True)
class ContamConfig:
    source: str  # where the configuration came from, for messages
    benchmarks: tuple[Threshold, ...]
    results: Path | None = None
    model: str | None = None
    model_args: str = ""
    output: Path = Path(".pytest_contam")
    apply_chat_template: bool = False
    batch_size: str = "1"
    device: str | None = None
    limit: int | None = None
    data_dir: Path | None = None
    metadata: dict = field(default_factory=dict)
    top: int = 5

    def with_overrides(self, **overrides) -> "ContamConfig":
        """CLI options override the file (None means "not given")."""
        given = {k: v for k, v in overrides.items() if v is not None}
        if "results" in given and "model" not in given:
            given["model"] = None  # --contam-results wins over a model spec in the file
        if given.get("model") and "results" not in given:
            given["results"] = None
        cfg = replace(self, **given)
        _check_source(cfg)
        return cfg


def _number(value, key: str, lo: float, hi: float, *, lo_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{key} must be a number, got {value!r}")
    ok = (lo < value if lo_open else lo <= value) and value <= hi
    if not ok:
        raise ConfigError(f"{key} must be in {'(' if lo_open else '['}{lo}, {hi}], got {value!r}")
    return float(value)


def _typed(table: dict, key: str, kind, where: str):
    value = table[key]
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ConfigError(f"{where}.{key} must be an integer, got {value!r}")
    if kind is not int and not isinstance(value, kind):
        raise ConfigError(f"{where}.{key} must be {getattr(kind, '__name__', kind)}, got {value!r}")
    return value


def _check_source(cfg: ContamConfig) -> None:
    if cfg.results is None and not cfg.model:
        raise ConfigError(
            f"{cfg.source}: give either 'results' (an lm_eval --output_path directory written with "
            "--log_samples) or 'model' (+ 'model_args') to run the TBD tasks; or --contam-results DIR"
        )
    if cfg.results is not None and cfg.model:
        raise ConfigError(f"{cfg.source}: 'results' and 'model' are mutually exclusive")


def parse_config(table: dict, source: str, base_dir: Path) -> ContamConfig:
    """Validate the ``[tool.pytest_contam]`` table; relative paths are resolved from ``base_dir``."""
    where = "tool.pytest_contam"
    if not isinstance(table, dict):
        raise ConfigError(f"{source}: [{where}] must be a table")
    unknown = sorted(set(table) - TOP_KEYS)
    if unknown:
        raise ConfigError(f"{source}: unknown key(s) {', '.join(f'{where}.{k}' for k in unknown)}; known: {sorted(TOP_KEYS)}")
    benches = table.get("benchmarks")
    if not isinstance(benches, dict) or not benches:
        raise ConfigError(f"{source}: no benchmarks configured; add [{where}.benchmarks.<task>] tables with score_cutoff")
    thresholds = []
    for name, spec in benches.items():
        bwhere = f"{where}.benchmarks.{name}"
        if not isinstance(spec, dict):
            raise ConfigError(f"{source}: {bwhere} must be a table")
        reserved = sorted(set(spec) & RESERVED_BENCHMARK_KEYS)
        if reserved:
            raise ConfigError(f"{source}: {bwhere}.{reserved[0]}: calibrated thresholds against a reference set are not supported yet")
        bad = sorted(set(spec) - BENCHMARK_KEYS)
        if bad:
            raise ConfigError(f"{source}: unknown key {bwhere}.{bad[0]}; known: {sorted(BENCHMARK_KEYS)}")
        if "score_cutoff" not in spec:
            raise ConfigError(f"{source}: {bwhere}.score_cutoff is required (flag questions whose TBD is below it)")
        try:
            cutoff = _number(spec["score_cutoff"], f"{bwhere}.score_cutoff", 0.0, 1.0, lo_open=True)
            frac = _number(spec.get("max_flagged_fraction", 0.0), f"{bwhere}.max_flagged_fraction", 0.0, 1.0)
        except ConfigError as err:
            raise ConfigError(f"{source}: {err}") from None
        thresholds.append(Threshold(name, cutoff, frac))

    kwargs = {}
    for key, kind in (("model", str), ("model_args", str), ("apply_chat_template", bool), ("device", str),
                      ("metadata", dict), ("top", int), ("limit", int)):
        if key in table:
            kwargs[key] = _typed(table, key, kind, where)
    for key in ("results", "output", "data_dir"):
        if key in table:
            kwargs[key] = base_dir / _typed(table, key, str, where)
    if "batch_size" in table:
        value = table["batch_size"]
        if not (isinstance(value, int) and not isinstance(value, bool) and value >= 1) and value != "auto":
            raise ConfigError(f"{source}: {where}.batch_size must be an integer >= 1 or \"auto\", got {value!r}")
        kwargs["batch_size"] = str(value)
    if kwargs.get("top", 1) < 1 or (kwargs.get("limit") is not None and kwargs["limit"] < 1):
        raise ConfigError(f"{source}: {where}.top and {where}.limit must be >= 1")
    cfg = ContamConfig(source=source, benchmarks=tuple(thresholds), **kwargs)
    return cfg


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
    if table is None:
        if not standalone:
            raise ConfigError(f"{path}: no [tool.pytest_contam] table (or pass --contam-config PATH)")
        table = data
    return parse_config(table, str(path), path.parent)
