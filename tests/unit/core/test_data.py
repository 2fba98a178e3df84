"""The generation record's JSON round trip and the question loaders' error messages."""

import json
import math

import pytest

from lm_eval_tbd.core.data import BENCHMARKS, DATA_DIR_ENV, load_benchmark, load_jsonl, read_questions_jsonl
from lm_eval_tbd.core.record import GenerationRecord


def test_record_round_trip_keeps_minus_infinity():
    rec = GenerationRecord(token_ids=[5, 1], logprobs=[-math.inf, -0.25], finish_reason="eos", text="x")
    back = GenerationRecord.from_json(rec.to_json())
    assert back == rec
    # the form lm-eval logs: a list holding the JSON string
    assert GenerationRecord.from_json([rec.to_json()]) == rec


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"token_ids": [1], "logprobs": [], "finish_reason": "eos"}, "1 token ids but 0"),
        ({"token_ids": [1], "logprobs": [float("nan")], "finish_reason": "eos"}, "NaN log-probability"),
        ({"token_ids": [], "logprobs": [], "finish_reason": "stop"}, "finish_reason"),
    ],
)
def test_record_rejects_inconsistent_content(kwargs, message):
    with pytest.raises(ValueError, match=message):
        GenerationRecord(**kwargs)


def test_record_from_plain_text_is_a_clear_error():
    with pytest.raises(ValueError, match="not a generation record"):
        GenerationRecord.from_json("The answer is 42")
    with pytest.raises(TypeError, match="generate_logprobs"):
        GenerationRecord.from_json(3.5)


def write(path, *rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def test_reads_ids_labels_and_order(tmp_path):
    rows = read_questions_jsonl(write(tmp_path / "q.jsonl", {"id": 7, "question": "A?", "label": 1}, {"question": "B?", "label": 0}))
    assert rows == [{"id": "7", "question": "A?", "label": 1}, {"id": "1", "question": "B?", "label": 0}]


@pytest.mark.parametrize(
    "row, message",
    [
        ({"question": "   "}, r"q.jsonl:2: field 'question' is empty"),
        ({"id": 3}, r"q.jsonl:2: missing or non-string field 'question'"),
        ({"question": "B?", "lable": 1}, r"q.jsonl:2: unknown field\(s\) \['lable'\]"),
        ({"question": "B?", "label": 2}, r"q.jsonl:2: field 'label' must be 1"),
        ("{not json", r"q.jsonl:2: invalid JSON"),
    ],
)
def test_bad_rows_name_file_line_and_field(tmp_path, row, message):
    path = write(tmp_path / "q.jsonl", {"question": "A?"}, row)
    with pytest.raises(ValueError, match=message):
        read_questions_jsonl(path)


def test_labels_for_some_rows_only_is_an_error(tmp_path):
    path = write(tmp_path / "q.jsonl", {"question": "A?", "label": 1}, {"question": "B?"})
    with pytest.raises(ValueError, match="1 of 2 questions have a 'label'"):
        read_questions_jsonl(path)


def test_missing_file_and_unknown_benchmark(tmp_path, monkeypatch):
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"aime24.jsonl.*LM_EVAL_TBD_DATA_DIR"):
        load_benchmark("aime24")
    with pytest.raises(KeyError, match="unknown benchmark 'aime26'"):
        load_benchmark("aime26")
    with pytest.raises(ValueError, match="tbd_data_file"):
        load_jsonl()


def test_shared_data_layout_loads_every_benchmark(benchmark_data):
    sizes = {name: len(load_benchmark(name, benchmark_data)) for name in BENCHMARKS}
    assert sizes == {"aime24": 30, "aime25": 30, "math500": 120, "gsm8k": 240}  # the synthetic layout
    assert all(r["label"] is None for r in load_benchmark("aime24", benchmark_data))


def test_jsonl_task_loader_builds_a_dataset(tmp_path):
    ds = load_jsonl(tbd_data_file=str(write(tmp_path / "q.jsonl", {"question": "A?", "label": 1}, {"question": "B?", "label": 0})))
    assert ds["test"]["label"] == [1, 0]


def test_load_run_refuses_runs_of_several_models(main_run, tmp_path):
    import shutil

    from lm_eval_tbd.core.samples import load_run

    out, _ = main_run
    (samples,) = sorted(out.rglob("samples_tbd_aime24_*.jsonl"))
    for model in ("modelA", "modelB"):
        (tmp_path / model).mkdir()
        shutil.copy(samples, tmp_path / model / samples.name)
    with pytest.raises(ValueError, match="runs of task 'tbd_aime24' from several models"):
        load_run(tmp_path, "tbd_aime24")
    assert len(load_run(tmp_path / "modelA", "tbd_aime24").questions) == 4


def test_duplicate_ids_name_the_file_both_lines_and_the_id(tmp_path):
    path = write(tmp_path / "q.jsonl", {"id": "a", "question": "A?"}, {"id": "b", "question": "B?"},
                 {"id": "a", "question": "A again?"})
    with pytest.raises(ValueError, match=r"q.jsonl:3: id 'a' is also the id of line 1; question ids must be unique"):
        read_questions_jsonl(path)
    # a row without an id is numbered by position, which can collide with an explicit id
    path = write(tmp_path / "q2.jsonl", {"id": "1", "question": "A?"}, {"question": "B?"})
    with pytest.raises(ValueError, match=r"q2.jsonl:2: id '1' is also the id of line 1"):
        read_questions_jsonl(path)
