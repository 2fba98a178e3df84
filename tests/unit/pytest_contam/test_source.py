"""pytest_contam.source: the cache key of the gate's own model run covers everything that changes
the questions or the scores (no model is run here: only the key is computed)."""

import json
import os

import pytest

from pytest_contam.config import ContamConfig, Threshold
from pytest_contam.source import model_run_dir


@pytest.fixture
def spec(tmp_path, monkeypatch):
    """A model spec over tbd_jsonl with a question file named in metadata, run from tmp_path."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LM_EVAL_TBD_DATA_DIR", raising=False)
    model = tmp_path / "model"
    model.mkdir()
    (model / "model.safetensors").write_bytes(b"weights")
    (tmp_path / "q.jsonl").write_text(json.dumps({"question": "What is 2 + 2?"}) + "\n")
    return ContamConfig(source="pyproject.toml", benchmarks=(Threshold("tbd_jsonl", score_cutoff=0.1),), model="hf",
                        model_args=f"pretrained={model}", metadata={"tbd_data_file": "q.jsonl"},
                        output=tmp_path / "cache")


def _rewrite_keeping_size_and_time(path, text):
    st = path.stat()
    assert len(text.encode()) == st.st_size
    path.write_text(text)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_a_rewritten_question_file_is_a_new_run(spec, tmp_path):
    # rewriting q.jsonl with new questions passed on the cached run of the old ones
    before = model_run_dir(spec)
    assert model_run_dir(spec) == before  # the same files: the same run
    _rewrite_keeping_size_and_time(tmp_path / "q.jsonl", json.dumps({"question": "What is 3 + 5?"}) + "\n")
    assert model_run_dir(spec) != before


def test_the_data_directory_from_the_environment_is_covered(spec, tmp_path, monkeypatch):
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "aime24.jsonl").write_text(json.dumps({"question": f"Question of {name}?"}) + "\n")
    keys = set()
    for name in ("a", "b"):
        monkeypatch.setenv("LM_EVAL_TBD_DATA_DIR", str(tmp_path / name))
        keys.add(model_run_dir(spec))
    assert len(keys) == 2
    _rewrite_keeping_size_and_time(tmp_path / "b" / "aime24.jsonl", json.dumps({"question": "Question of c?"}) + "\n")
    assert model_run_dir(spec) not in keys


def test_the_data_dir_key_and_the_model_files_are_covered(spec, tmp_path):
    from dataclasses import replace

    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "aime25.jsonl").write_text(json.dumps({"question": "Q?"}) + "\n")
    with_dir = replace(spec, data_dir=tmp_path / "d")
    before = model_run_dir(with_dir)
    _rewrite_keeping_size_and_time(tmp_path / "d" / "aime25.jsonl", json.dumps({"question": "R?"}) + "\n")
    assert model_run_dir(with_dir) != before
    before = model_run_dir(spec)
    (tmp_path / "model" / "model.safetensors").write_bytes(b"retrained weights")  # retrained in place
    assert model_run_dir(spec) != before


def test_the_reference_models_files_are_covered(spec, tmp_path):
    from dataclasses import replace

    base = tmp_path / "base"
    base.mkdir()
    (base / "model.safetensors").write_bytes(b"base")
    with_ref = replace(spec, metadata={**spec.metadata, "tbd_ref_model": str(base)})
    before = model_run_dir(with_ref)
    (base / "model.safetensors").write_bytes(b"other base")
    assert model_run_dir(with_ref) != before
