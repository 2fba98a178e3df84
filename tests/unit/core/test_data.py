"""lm_eval_tbd.core.data: the question loaders' error messages, the benchmark layout, and the
paper's train/test split."""

import json

import pytest

from lm_eval_tbd.core.data import (
    BENCHMARKS,
    DATA_DIR_ENV,
    load_benchmark,
    load_jsonl,
    read_questions_jsonl,
    train_test_split_indices,
)


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


def test_duplicate_ids_name_the_file_both_lines_and_the_id(tmp_path):
    path = write(tmp_path / "q.jsonl", {"id": "a", "question": "A?"}, {"id": "b", "question": "B?"},
                 {"id": "a", "question": "A again?"})
    with pytest.raises(ValueError, match=r"q.jsonl:3: id 'a' is also the id of line 1; question ids must be unique"):
        read_questions_jsonl(path)
    # a row without an id is numbered by position, which can collide with an explicit id
    path = write(tmp_path / "q2.jsonl", {"id": "1", "question": "A?"}, {"question": "B?"})
    with pytest.raises(ValueError, match=r"q2.jsonl:2: id '1' is also the id of line 1"):
        read_questions_jsonl(path)


def test_train_test_split_equals_datasets_and_the_papers_numpy_permutation():
    import datasets
    import numpy as np

    train, test = train_test_split_indices(1000)
    perm = np.random.default_rng(42).permutation(1000)
    assert test == perm[:200].tolist() and train == perm[200:].tolist()
    ds = datasets.Dataset.from_dict({"i": list(range(1000))}).train_test_split(train_size=0.8, seed=42, shuffle=True)
    assert ds["train"]["i"] == train and ds["test"]["i"] == test
    assert sorted(train + test) == list(range(1000))
    # an odd size: floor(0.8 * 7) = 5 train rows, 2 test rows
    tr, te = train_test_split_indices(7, seed=3)
    ds = datasets.Dataset.from_dict({"i": list(range(7))}).train_test_split(train_size=0.8, seed=3, shuffle=True)
    assert (tr, te) == (ds["train"]["i"], ds["test"]["i"])
    with pytest.raises(ValueError):
        train_test_split_indices(1)


def test_a_key_twice_on_one_line_is_refused(tmp_path):
    path = write(tmp_path / "q.jsonl", '{"question": "A?", "label": 1, "label": 0}')
    with pytest.raises(ValueError, match=f"^{path}:1: key 'label' appears twice in one object"):
        read_questions_jsonl(path)


@pytest.mark.parametrize("qid", [["a"], {"k": 1}, True, 1.5])
def test_an_id_that_is_not_a_string_or_integer_is_refused(tmp_path, qid):
    # ["a"] became the id "['a']" and true the id "True", joining with nothing meant
    path = write(tmp_path / "q.jsonl", {"id": qid, "question": "A?"})
    with pytest.raises(ValueError, match=f"^{path}:1: field 'id' must be a string or an integer"):
        read_questions_jsonl(path)


def test_a_directory_is_not_a_question_file(tmp_path):
    # it was "question file not found"
    with pytest.raises(IsADirectoryError, match=f"question file {tmp_path}: is a directory"):
        read_questions_jsonl(tmp_path)
