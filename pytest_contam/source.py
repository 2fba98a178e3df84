"""Where the gate's scores come from: an existing lm-eval output directory, or the TBD tasks run
through the real ``lm_eval`` command once per session (and cached) from a model spec."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from dataclasses import replace
from importlib.metadata import version
from pathlib import Path

from pytest_contam.config import ContamConfig

# This module loads at every pytest start (the pytest11 entry point): what loads numpy and the
# rest of lm_eval_tbd (core.samples, .data, .outcomes, .scores, .options, .atomic, the lm_eval
# runner) is imported in the functions that need it, once a gate runs.

__all__ = ["LmEvalRunError", "results_dir", "model_run_dir"]


class LmEvalRunError(RuntimeError):
    """The gate's own ``lm_eval`` run failed; the message gives its exit status and log."""


def tasks_to_run(cfg: ContamConfig) -> list[str]:
    """The configured benchmarks, the reference tasks they are calibrated against and the ordinary
    tasks their accuracy is read from (``accuracy_task``, or with ``max_accuracy_gap`` the task
    that pairs by name, e.g. aime24 for tbd_aime24)."""
    names = {t.benchmark for t in cfg.benchmarks} | {t.reference for t in cfg.benchmarks if t.reference}
    return sorted(names | {task for t in cfg.benchmarks if (task := _ordinary_task(t))})


def _ordinary_task(threshold) -> str | None:
    from lm_eval_tbd.core.outcomes import ordinary_candidates, parse_task_metric

    if threshold.accuracy_task:
        return parse_task_metric(threshold.accuracy_task)[0]
    if threshold.max_accuracy_gap is not None:
        return next(iter(ordinary_candidates(threshold.benchmark)), None)
    return None


def _fingerprint(path: Path) -> list:
    """(relative name, size, mtime) of a local file or of every file under a directory, so that
    weights changed in place give a new cache key (hashing gigabytes of weights would cost more
    than the run)."""
    if path.is_file():
        st = path.stat()
        return [[path.name, st.st_size, st.st_mtime_ns]]
    if path.is_dir():
        return [[str(f.relative_to(path)), f.stat().st_size, f.stat().st_mtime_ns]
                for f in sorted(path.rglob("*")) if f.is_file()]
    return []


def _content(path: Path) -> list:
    """(name, sha256) of a question file, or of every question file (``*.jsonl``) at the top of a
    data directory, which is where the tasks read them: a file rewritten with new questions gives
    a new key even with its old size and modification time."""
    files = [path] if path.is_file() else sorted(path.glob("*.jsonl")) if path.is_dir() else []
    out = []
    for f in files:
        digest = hashlib.sha256()
        with f.open("rb") as stream:
            for block in iter(lambda: stream.read(1 << 20), b""):
                digest.update(block)
        out.append([f.name, digest.hexdigest()])
    return out


def _data_dir(cfg: ContamConfig) -> Path | None:
    """The data directory the tasks will read: ``data_dir``, else LM_EVAL_TBD_DATA_DIR inherited
    from this process's environment."""
    from lm_eval_tbd.core.data import DATA_DIR_ENV

    if cfg.data_dir:
        return Path(cfg.data_dir)
    inherited = os.environ.get(DATA_DIR_ENV)
    return Path(inherited).absolute() if inherited else None


def model_run_dir(cfg: ContamConfig) -> Path:
    """The cache directory of this model spec: the same spec, the same local model files (size
    and modification time), the same question files (their content: ``tbd_data_file`` resolved as
    lm_eval will, from the current directory; every question file of the data directory, given
    by ``data_dir`` or inherited from LM_EVAL_TBD_DATA_DIR), the same ``tbd_ref_model`` files and
    the same package versions reuse the same results."""
    local = [v for v in (kv.split("=", 1)[-1] for kv in cfg.model_args.split(",") if "=" in kv) if Path(v).exists()]
    metadata = cfg.metadata or {}
    data_file = metadata.get("tbd_data_file")
    data_file = Path(data_file).absolute() if isinstance(data_file, str) and data_file else None
    ref_model = metadata.get("tbd_ref_model")
    ref_model = Path(ref_model) if isinstance(ref_model, str) and ref_model and Path(ref_model).exists() else None
    data_dir = _data_dir(cfg)
    spec = {
        "model": cfg.model, "model_args": cfg.model_args, "tasks": tasks_to_run(cfg),
        "apply_chat_template": cfg.apply_chat_template, "limit": cfg.limit, "metadata": cfg.metadata,
        "data_dir": str(data_dir) if data_dir else None,
        "files": [_fingerprint(Path(p)) for p in local] + ([_fingerprint(ref_model)] if ref_model else []),
        "questions": {"tbd_data_file": [str(data_file), _content(data_file)] if data_file else None,
                      "data_dir": _content(data_dir) if data_dir else None},
        "versions": [version("lm-eval-tbd"), version("lm_eval")],
    }
    key = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]
    return cfg.output / f"run-{key}"


def _complete(run_dir: Path, tasks) -> bool:
    return (run_dir / "DONE").is_file() and all(any(run_dir.rglob(f"samples_{t}_*.jsonl")) for t in tasks)


def _run_lm_eval(cfg: ContamConfig, run_dir: Path) -> None:
    from lm_eval_tbd.core.atomic import write_text_atomic
    from lm_eval_tbd.harness.runner import lm_eval_command, run_lm_eval

    cmd = lm_eval_command(cfg.model, tasks_to_run(cfg), run_dir, model_args=cfg.model_args, device=cfg.device,
                          apply_chat_template=cfg.apply_chat_template, batch_size=cfg.batch_size, limit=cfg.limit,
                          metadata=cfg.metadata)
    env = dict(os.environ)
    if cfg.data_dir:
        env["LM_EVAL_TBD_DATA_DIR"] = str(cfg.data_dir)
    proc = run_lm_eval(cmd, env=env, check=False)
    write_text_atomic(run_dir / "lm_eval.log", proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise LmEvalRunError(f"lm_eval failed with exit status {proc.returncode} (log: {run_dir / 'lm_eval.log'}):\n{proc.stderr[-2000:]}")
    write_text_atomic(run_dir / "DONE", " ".join(cmd) + "\n")


def results_dir(cfg: ContamConfig) -> Path:
    """The lm-eval output directory to read scores from, running the model first if needed.

    Model runs happen once per spec: an exclusive file lock makes concurrent pytest-xdist workers
    wait for the first one and then reuse its results.
    """
    if cfg.results is not None:
        return cfg.results
    run_dir = model_run_dir(cfg)
    run_dir.mkdir(parents=True, exist_ok=True)
    tasks = tasks_to_run(cfg)
    with open(run_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _complete(run_dir, tasks):
            _run_lm_eval(cfg, run_dir)
    return run_dir


def base_results_dir(cfg: ContamConfig) -> Path | None:
    """The base model's lm-eval output directory (``base_results``, or ``base_model`` run like
    ``model``, on the same tasks with the same options, and cached the same way); None when the
    configuration gives no base model."""
    if cfg.base_results is not None:
        return cfg.base_results
    if not cfg.base_model:
        return None
    return results_dir(replace(cfg, model=cfg.base_model, model_args=cfg.base_model_args, results=None,
                               base_model=None, base_model_args=""))
