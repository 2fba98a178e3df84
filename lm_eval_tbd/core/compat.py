"""Whether two runs can be compared: the settings a run's samples were made with (model,
decoding, TBD options, chat template), read from lm-eval's results file, and the check that two
runs share them.

A benchmark audited against a reference task, the runs a combined detector is fitted on, and a
combined detector and the runs it is applied to must agree on everything that changes the
scores; the newest run of each task in one output folder need not (another ``--metadata``, an
interrupted run). :func:`check_compatible` raises :class:`IncompatibleRunsError` naming both runs
and every setting that differs, with both values.

lm-eval writes ``results_<stamp>.json`` beside ``samples_<task>_<stamp>.jsonl``; the settings
come from its ``config`` (model and model_args), its chat-template fields, and the task's
``configs[task]["metadata"]`` (the ``tbd_*`` options, defaults filled in). No lm-eval import.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import replace
from pathlib import Path

from lm_eval_tbd.core.scores import DEFAULT_ALPHA, DEFAULT_MAX_TOKENS, DEFAULT_TAU

__all__ = ["METADATA_DEFAULTS", "IncompatibleRunsError", "run_settings", "check_compatible", "differences",
           "check_settings", "generated_limit", "run_stamp", "results_path", "QUESTION_KEYS", "MODEL_KEYS"]

#: Every ``tbd_*`` metadata key the TBD tasks read, with its default (core/options.py parses
#: them; a default written out and one left out give the same settings).
METADATA_DEFAULTS = {
    "tbd_tau": DEFAULT_TAU,
    "tbd_alpha": DEFAULT_ALPHA,
    "tbd_max_tokens": DEFAULT_MAX_TOKENS,
    "tbd_input_scores": False,
    "tbd_ref_model": None,
    "tbd_data_file": None,
    "tbd_server_args": None,
    "tbd_decoding": "greedy",
    "tbd_samples": 1,
    "tbd_seed": 0,
}
#: Settings that say which questions or which run, not how they were scored: never compared.
QUESTION_KEYS = ("tbd_data_file", "timestamp")
#: Settings that name the model itself; they may differ between a student and its base model.
MODEL_KEYS = ("model_args",)

_FLOATS = ("tbd_tau", "tbd_alpha")
_INTS = ("tbd_max_tokens", "tbd_samples", "tbd_seed")


class IncompatibleRunsError(ValueError):
    """Two runs were made with settings that make their scores incomparable; the message names
    both runs and every differing setting with both values."""


def _normalised(key: str, value):
    """``value`` of metadata ``key`` in one canonical form, so 1 and 1.0, or "true" and True, compare
    equal. A value that does not parse is kept as it is (it then differs from any valid one)."""
    if value is None:
        return None
    try:
        if key in _FLOATS and not isinstance(value, bool):
            return float(value)
        if key in _INTS and not isinstance(value, bool) and float(value) == int(float(value)):
            return int(float(value))
    except (TypeError, ValueError, OverflowError):
        return value
    if key == "tbd_input_scores" and isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
        return value.lower() in ("true", "1")
    if key == "tbd_ref_model" and value == "":
        return None
    return value


def _model_args(value) -> dict | None:
    """lm-eval records model_args as a dict (0.4.9+) or as the command line's "k=v,k=v" string."""
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        pairs = (kv.partition("=") for kv in value.split(",") if kv.strip())
        return {k.strip(): v.strip() for k, _, v in pairs}
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items()}
    return {"": str(value)}


def _sha(text) -> str | None:
    return None if text is None else hashlib.sha256(str(text).encode("utf-8")).hexdigest()


def _stamp(samples_file: Path) -> str:
    # samples_<task>_<date>.jsonl; dates look like 2026-11-23T13-43-01.123456 (no underscores)
    return samples_file.stem.rsplit("_", 1)[-1]


def run_stamp(samples_file) -> str | None:
    """The date lm-eval gave the run in ``samples_<task>_<date>.jsonl`` (None for another file
    name, e.g. logged generations read by ``lm-eval-tbd score``)."""
    if samples_file is None:
        return None
    name = Path(samples_file).name
    if not (name.startswith("samples_") and name.endswith(".jsonl") and "_" in name[len("samples_"):]):
        return None
    return _stamp(Path(name))


def generated_limit(run) -> int | None:
    """The most tokens ``run`` could generate per question: its ``tbd_max_tokens`` as the results
    file records it, else (no readable results file) the length of its longest generation that
    stopped at the limit; None when unknown (every generation stopped at EOS)."""
    try:
        limit = run_settings(replace(run, params=None))["tbd_max_tokens"]
        if isinstance(limit, int):
            return limit
    except ValueError:
        pass
    cut = [r.n_tokens for q in run.questions for r in (q.records or (q.record,)) if r.finish_reason == "length"]
    return max(cut) if cut else None


def results_path(samples_file: str | Path) -> Path:
    """The ``results_<stamp>.json`` lm-eval wrote beside ``samples_file``."""
    samples_file = Path(samples_file)
    return samples_file.parent / f"results_{_stamp(samples_file)}.json"


def run_settings(run) -> dict:
    """The settings ``run`` (a :class:`~lm_eval_tbd.core.runs.TaskRun`) was made with: ``model``,
    ``model_args`` (a dict), ``chat_template`` (the template's sha256, None when prompts were not
    templated), ``fewshot_as_multiturn`` and ``system_instruction`` (sha256) when recorded, every
    ``tbd_*`` option of the task (defaults filled in) and ``timestamp`` (the run's stamp).

    A run re-scored here (``run.params`` set) reports the TBD parameters its scores now have:
    ``tbd_tau`` and ``tbd_alpha`` as given, ``tbd_max_tokens`` the smaller of the given and the
    generated limit (the records hold no more tokens).

    Raises ValueError naming the file when the run has no samples file, or its results file is
    missing, unreadable, or has no configuration for the task.
    """
    if run.samples_file is None:
        raise ValueError(f"run {run.task}: no samples file, so the settings it was made with are unknown")
    samples_file = Path(run.samples_file)
    path = results_path(samples_file)
    where = f"{path} (the results of {samples_file.name})"
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{where}: not found; lm_eval writes it beside the samples file, and without it the "
                         "settings the run was made with are unknown") from None
    except UnicodeDecodeError:
        raise ValueError(f"{where}: not valid UTF-8") from None
    except (OSError, ValueError) as err:
        raise ValueError(f"{where}: not a readable lm-eval results file ({err})") from None
    if not isinstance(results, dict):
        raise ValueError(f"{where}: not an lm-eval results file (a JSON object)")
    configs = results.get("configs")
    task_config = configs.get(run.task) if isinstance(configs, dict) else None
    if not isinstance(task_config, dict):
        raise ValueError(f"{where}: no configuration of task {run.task!r} under 'configs'")
    metadata = task_config.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise ValueError(f"{where}: configs.{run.task}.metadata is not an object")
    config = results.get("config") if isinstance(results.get("config"), dict) else {}
    template = results.get("chat_template_sha") or _sha(results.get("chat_template"))
    settings = {"model": config.get("model"), "model_args": _model_args(config.get("model_args")),
                "chat_template": template}
    if "fewshot_as_multiturn" in results:
        settings["fewshot_as_multiturn"] = results["fewshot_as_multiturn"]
    if "system_instruction_sha" in results or "system_instruction" in results:
        settings["system_instruction"] = results.get("system_instruction_sha") or _sha(results.get("system_instruction"))
    options = {key: _normalised(key, metadata.get(key, default)) for key, default in METADATA_DEFAULTS.items()}
    options.update({key: value for key, value in metadata.items() if key.startswith("tbd_") and key not in options})
    params = getattr(run, "params", None)
    if params is not None:
        options["tbd_tau"], options["tbd_alpha"] = float(params.tau), float(params.alpha)
        generated = options["tbd_max_tokens"]
        options["tbd_max_tokens"] = min(params.max_tokens, generated) if isinstance(generated, int) else params.max_tokens
    settings.update(options)
    settings["timestamp"] = _stamp(samples_file)
    return settings


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    return a == b


def differences(a: dict, b: dict, *, same_model: bool = True, ignore: tuple = ()) -> list[tuple[str, object, object]]:
    """``(setting, value in a, value in b)`` for every compared setting of two
    :func:`run_settings` dicts that differs. ``same_model=False`` leaves the model itself
    (``model_args``) and the chat template's text uncompared, but not whether one was used."""
    skip = set(QUESTION_KEYS) | set(ignore) | (set(MODEL_KEYS) if not same_model else set())
    out = []
    for key in sorted(set(a) | set(b), key=lambda k: (k.startswith("tbd_"), k)):
        if key in skip:
            continue
        va, vb = a.get(key), b.get(key)
        if key == "chat_template" and not same_model:
            va, vb = va is not None, vb is not None
            key = "chat template applied"
        if not _same(va, vb):
            out.append((key, va, vb))
    return out


def _describe(role: str, run, settings: dict | None) -> str:
    stamp = f", run {settings['timestamp']}" if settings and settings.get("timestamp") else ""
    return f"{role} {run.task} ({run.samples_file}{stamp})"


def check_settings(a: dict, b: dict, *, described_a: str, described_b: str, role_a: str, role_b: str,
                   same_model: bool = True, ignore: tuple = ()) -> None:
    """:func:`check_compatible` for two :func:`run_settings` dicts already read (e.g. those a
    combined model recorded): ``described_a`` / ``described_b`` name them in the message."""
    diff = differences(a, b, same_model=same_model, ignore=ignore)
    if diff:
        lines = [f"  {key}: {va!r} ({role_a}) vs {vb!r} ({role_b})" for key, va, vb in diff]
        raise IncompatibleRunsError(
            f"{described_a} and {described_b} were made with different settings, so their scores are not "
            "comparable:\n" + "\n".join(lines)
            + "\nscore both in one lm_eval run (or with the same model, --metadata and chat template)")


def check_compatible(a, b, *, role_a: str, role_b: str, same_model: bool = True, ignore: tuple = ()) -> None:
    """Raise :class:`IncompatibleRunsError` unless runs ``a`` and ``b`` (TaskRuns) were made with
    the same model, decoding, ``tbd_*`` options and chat template (:func:`run_settings`; the
    question file and the run's time are not compared).

    ``role_a`` / ``role_b`` name the runs' parts in the message ("benchmark", "reference", ...).
    ``same_model=False``: the model itself may differ (a student against its base model), but
    the backend, decoding, ``tbd_*`` options and the use of a chat template must not. ``ignore``:
    setting names left uncompared. A run whose settings cannot be read (no results file) raises
    :class:`IncompatibleRunsError` too, naming it.
    """
    try:
        sa = run_settings(a)
        sb = run_settings(b)
    except ValueError as err:
        raise IncompatibleRunsError(f"cannot check that {role_a} {a.task} and {role_b} {b.task} were made with the "
                                    f"same settings: {err}") from None
    check_settings(sa, sb, described_a=_describe(role_a, a, sa), described_b=_describe(role_b, b, sb),
                   role_a=role_a, role_b=role_b, same_model=same_model, ignore=ignore)
