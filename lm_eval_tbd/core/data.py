"""Question sets for the TBD tasks: the Hugging Face hub for users, a local directory offline.

Every loader returns rows ``{"id": str, "question": str, "label": int | None}`` (label 1 = seen /
member, 0 = unseen, None = unknown) and validates them: an empty question, an unknown field or a
bad label is an error naming the file (or hub dataset), the line and the field.

Offline, set ``LM_EVAL_TBD_DATA_DIR=DIR`` and the benchmark tasks read ``DIR/<file>`` instead of
the hub, with the layout of the project's shared data (``aime24.jsonl``, ``aime25.jsonl``,
``math500.jsonl``, ``gsm8k_test.jsonl``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lm_eval_tbd.core.errors import user_error
from lm_eval_tbd.core.record import loads_json

__all__ = ["Benchmark", "BENCHMARKS", "DATA_DIR_ENV", "load_benchmark", "load_jsonl", "read_question_lines",
           "read_questions_jsonl", "check_label", "train_test_split_indices", "numbered_lines", "iter_json_objects",
           "utf8_error_message"]

DATA_DIR_ENV = "LM_EVAL_TBD_DATA_DIR"

#: Fields a local question file may carry. Anything else is a typo until proven otherwise.
KNOWN_FIELDS = frozenset({"id", "question", "label", "answer", "solution", "subject", "level", "unique_id"})


@dataclass(frozen=True)
class Benchmark:
    """Where a benchmark's questions live: the hub dataset lm-eval's own task uses, and a local file."""

    name: str
    hub_path: str
    hub_name: str | None
    hub_split: str
    question_field: str
    id_field: str | None
    local_file: str


BENCHMARKS: dict[str, Benchmark] = {
    b.name: b
    for b in (
        Benchmark("aime24", "Maxwell-Jia/AIME_2024", None, "train", "Problem", "ID", "aime24.jsonl"),
        Benchmark("aime25", "math-ai/aime25", None, "test", "problem", "id", "aime25.jsonl"),
        Benchmark("math500", "HuggingFaceH4/MATH-500", None, "test", "problem", "unique_id", "math500.jsonl"),
        Benchmark("gsm8k", "openai/gsm8k", "main", "test", "question", None, "gsm8k_test.jsonl"),
    )
}


def check_label(value, where: str) -> int | None:
    """A question's label: 1 (seen/member), 0 (unseen) or None; else ValueError naming ``where``."""
    return _check_label(value, where)


def _check_label(value, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or value in (0, 1):
        return int(value)
    raise ValueError(f"{where}: field 'label' must be 1 (seen/member) or 0 (unseen), got {value!r}")


def _normalise(raw: dict, *, question_field: str, id_field: str | None, index: int, where: str) -> dict:
    question = raw.get(question_field)
    if not isinstance(question, str):
        raise ValueError(f"{where}: missing or non-string field '{question_field}'")
    if not question.strip():
        raise ValueError(f"{where}: field '{question_field}' is empty; TBD needs a question to prompt with")
    qid = raw.get(id_field) if id_field else None
    if qid is not None and (isinstance(qid, bool) or not isinstance(qid, (str, int))):
        # str() would make ["a"] "['a']" and true "True": ids that join with nothing meant
        raise ValueError(f"{where}: field '{id_field}' must be a string or an integer, got {qid!r}")
    return {
        "id": str(qid if qid is not None else index),
        "question": question,
        "label": _check_label(raw.get("label"), where),
    }


def numbered_lines(path: str | os.PathLike):
    """``(where, line)`` for each non-blank line of a text file, read as it goes; ``where`` is
    ``"FILE:LINE"``. A line that is not UTF-8 raises ValueError naming it."""
    try:
        with Path(path).open(encoding="utf-8") as f:
            for lineno, line in enumerate(f, start=1):
                if line.strip():
                    yield f"{path}:{lineno}", line
    except UnicodeDecodeError:
        raise ValueError(utf8_error_message(path)) from None


def iter_json_objects(path: Path):
    """``(where, object)`` for each non-blank line of a JSON Lines file; ``where`` is
    ``"FILE:LINE"``. A line that is not a JSON object, or not UTF-8, raises ValueError naming it."""
    for where, line in numbered_lines(path):
        try:
            obj = loads_json(line)
        except json.JSONDecodeError as err:
            raise ValueError(f"{where}: invalid JSON ({err.msg})") from None
        except ValueError as err:  # a key twice
            raise ValueError(f"{where}: {err}") from None
        if not isinstance(obj, dict):
            raise ValueError(f"{where}: expected a JSON object per line, got {type(obj).__name__}")
        yield where, obj


def utf8_error_message(path: str | os.PathLike) -> str:
    """Where ``path`` stops being UTF-8: ``"FILE:LINE: not valid UTF-8 (byte 0x.. at column C,
    byte offset B of the file)"``. The text reader decodes in blocks, so its own error gives an
    offset within a block; the file is read again line by line (only once it has failed) to name
    the line."""
    offset = 0
    with Path(path).open("rb") as f:
        for lineno, raw in enumerate(f, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as err:
                return (f"{path}:{lineno}: not valid UTF-8 (byte 0x{raw[err.start]:02x} at column {err.start + 1}, "
                        f"byte offset {offset + err.start} of the file); save the file as UTF-8")
            offset += len(raw)
    return f"{path}: not valid UTF-8; save the file as UTF-8"


def read_questions_jsonl(path: str | os.PathLike) -> list[dict]:
    """Read a JSON Lines question file: ``question`` required, ``id`` and ``label`` optional.

    Returns normalised rows in file order. Raises FileNotFoundError or ValueError naming the file,
    the line number and the offending field. Labels must be given for all rows or for none, and
    ids must be unique (a row without one is numbered by its position, so it may collide too).
    """
    return [row for _, row in read_question_lines(path)]


def read_question_lines(path: str | os.PathLike) -> list[tuple[str, dict]]:
    """:func:`read_questions_jsonl` with each row's ``"FILE:LINE"``, for messages that must name
    where a row came from."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"question file {path}: is a directory; give a JSON Lines file of questions")
    if not path.is_file():
        raise FileNotFoundError(
            f"question file not found: {path}"
            + (f" (set {DATA_DIR_ENV} to a directory holding it)" if DATA_DIR_ENV in os.environ else "")
        )
    rows, first_line = [], {}
    for where, raw in iter_json_objects(path):
        unknown = set(raw) - KNOWN_FIELDS
        if unknown:
            raise ValueError(f"{where}: unknown field(s) {sorted(unknown)}; known fields are {sorted(KNOWN_FIELDS)}")
        row = _normalise(raw, question_field="question", id_field="id", index=len(rows), where=where)
        # A repeated id would make every join on id (labels from --questions, lm-eval's doc ids)
        # silently keep one of the rows.
        if row["id"] in first_line:
            first = first_line[row["id"]].rsplit(":", 1)[1]
            raise ValueError(f"{where}: id {row['id']!r} is also the id of line {first}; question ids must be unique")
        first_line[row["id"]] = where
        rows.append((where, row))
    if not rows:
        raise ValueError(f"{path}: no questions")
    _check_labels_all_or_none([row for _, row in rows], str(path))
    return rows


def _check_labels_all_or_none(rows: list[dict], where: str) -> None:
    labelled = sum(r["label"] is not None for r in rows)
    if 0 < labelled < len(rows):
        first = next(i for i, r in enumerate(rows) if r["label"] is None)
        raise ValueError(
            f"{where}: {labelled} of {len(rows)} questions have a 'label' (first without: row {first + 1}); "
            "give a label to every question or to none"
        )


def _to_dataset_dict(rows: list[dict]):
    # Deferred here and in load_benchmark: Hugging Face datasets (seconds to import) is needed only
    # by lm-eval's task loading and the hub.
    import datasets

    # An all-None column would get type null; keep a stable schema for lm-eval's doc iteration.
    features = datasets.Features(
        {"id": datasets.Value("string"), "question": datasets.Value("string"), "label": datasets.Value("int64")}
    )
    return datasets.DatasetDict({"test": datasets.Dataset.from_list(rows, features=features)})


def load_benchmark(name: str, data_dir: str | os.PathLike | None = None) -> list[dict]:
    """Rows of benchmark ``name`` from ``data_dir`` (default: ``$LM_EVAL_TBD_DATA_DIR``) or the hub."""
    if name not in BENCHMARKS:
        raise KeyError(f"unknown benchmark {name!r}; known: {sorted(BENCHMARKS)}")
    bench = BENCHMARKS[name]
    data_dir = data_dir if data_dir is not None else os.environ.get(DATA_DIR_ENV)
    if data_dir:
        return read_questions_jsonl(Path(data_dir) / bench.local_file)
    import datasets

    ds = datasets.load_dataset(bench.hub_path, bench.hub_name, split=bench.hub_split)
    where = f"hub dataset {bench.hub_path} ({bench.hub_split})"
    rows = [
        _normalise(raw, question_field=bench.question_field, id_field=bench.id_field, index=i, where=f"{where} row {i}")
        for i, raw in enumerate(ds)
    ]
    return rows


def train_test_split_indices(n_rows: int, *, train_size: float = 0.8, seed: int = 42) -> tuple[list[int], list[int]]:
    """Row indices ``(train, test)`` of the split that ``datasets.Dataset.train_test_split(
    train_size=train_size, seed=seed, shuffle=True)`` draws, computed with numpy alone.

    That method permutes the rows with ``numpy.random.default_rng(seed).permutation(n_rows)`` and
    takes the first ``n_test`` of the permutation as the test split and the next ``n_train`` as
    the train split, with ``n_train = floor(train_size * n_rows)`` and ``n_test`` the rest. The
    TBD paper's S1 protocol uses it on s1K: train = the distillation data (members), test = the
    never-seen questions (non-members).

    Example: ``train, test = train_test_split_indices(1000)`` gives 800 member and 200
    non-member row indices; the paper evaluates ``train[:200]`` against ``test``.
    """
    if n_rows < 2 or not 0.0 < train_size < 1.0:
        raise ValueError(f"train_test_split_indices: need n_rows >= 2 and 0 < train_size < 1, "
                         f"got {n_rows} and {train_size}")
    n_train = int(np.floor(train_size * n_rows))
    n_test = n_rows - n_train
    if n_train == 0 or n_test == 0:
        raise ValueError(f"train_test_split_indices: train_size {train_size} of {n_rows} rows leaves a split empty")
    perm = np.random.default_rng(seed).permutation(n_rows)
    return perm[n_test:n_test + n_train].tolist(), perm[:n_test].tolist()


# ---- custom_dataset entry points for the task YAMLs -------------------------------------------
# lm-eval calls these with the task's metadata (which includes --metadata and the model_args) as
# keyword arguments, and expects a DatasetDict.


def _benchmark_loader(name: str):
    def load(**_metadata):
        try:
            rows = load_benchmark(name)
        except (OSError, ValueError) as err:  # the user's data: one line, not lm-eval's traceback
            raise user_error(err) from None
        return _to_dataset_dict(rows)

    load.__name__ = f"load_{name}"
    return load


load_aime24 = _benchmark_loader("aime24")
load_aime25 = _benchmark_loader("aime25")
load_math500 = _benchmark_loader("math500")
load_gsm8k = _benchmark_loader("gsm8k")


def load_jsonl(tbd_data_file: str | None = None, **_metadata):
    """The ``tbd_jsonl`` task's data: ``--metadata '{"tbd_data_file": "questions.jsonl"}'``."""
    if not tbd_data_file:
        raise user_error(ValueError(
            "task tbd_jsonl needs a question file: pass --metadata '{\"tbd_data_file\": \"PATH.jsonl\"}' "
            "(JSON Lines with a 'question' field and optional 'id' and 'label')"
        ))
    if not isinstance(tbd_data_file, (str, os.PathLike)):
        raise user_error(ValueError(f"metadata 'tbd_data_file' must be the path of a JSON Lines question file, "
                                    f"got {tbd_data_file!r}"))
    try:
        rows = read_questions_jsonl(tbd_data_file)
    except (OSError, ValueError) as err:
        raise user_error(err) from None
    return _to_dataset_dict(rows)
