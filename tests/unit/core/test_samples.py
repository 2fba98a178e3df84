"""lm_eval_tbd.core.samples: reading runs back from an lm_eval output folder (samples files
written here in lm-eval's layout: one folder per model, samples_<task>_<date>.jsonl)."""

import json

import pytest

from lm_eval_tbd.core.record import GenerationRecord


def _samples_file(folder, n: int = 4):
    folder.mkdir(parents=True)
    path = folder / "samples_tbd_aime24_2026-11-25T09-00-00.000001.jsonl"
    lines = []
    for i in range(n):
        record = GenerationRecord(token_ids=[1, 2], logprobs=[-0.1, -0.2], finish_reason="length")
        lines.append(json.dumps({"doc_id": i, "doc": {"id": f"q{i}", "question": f"question {i}"},
                                 "resps": [[record.to_json()]], "tbd": 0.5}))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_load_run_refuses_runs_of_several_models(tmp_path):
    from lm_eval_tbd.core.samples import load_run

    for model in ("modelA", "modelB"):
        _samples_file(tmp_path / model)
    with pytest.raises(ValueError, match="runs of task 'tbd_aime24' from several models"):
        load_run(tmp_path, "tbd_aime24")
    assert len(load_run(tmp_path / "modelA", "tbd_aime24").questions) == 4


def test_a_document_logged_twice_is_refused_naming_both_lines(tmp_path):
    # 3 duplicated lines were reported as 15 questions for 12 documents
    from lm_eval_tbd.core.samples import load_run

    path = _samples_file(tmp_path / "model")
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines + lines[1:2]) + "\n")
    with pytest.raises(ValueError, match=f"^{path}:5: doc_id 1 is also the document of line 2; lm-eval logs each "
                                         "document once"):
        load_run(tmp_path, "tbd_aime24")


def test_a_record_with_a_key_twice_is_refused(tmp_path):
    from lm_eval_tbd.core.samples import load_run

    path = _samples_file(tmp_path / "model", n=1)
    sample = json.loads(path.read_text())
    sample["resps"][0][0] = sample["resps"][0][0].replace('"logprobs":', '"logprobs": [-5.0], "logprobs":')
    path.write_text(json.dumps(sample) + "\n")
    with pytest.raises(ValueError, match=f"^{path}:1: not a TBD sample .*key 'logprobs' appears twice"):
        load_run(tmp_path, "tbd_aime24")


@pytest.mark.parametrize(("labels", "message"), [
    (["yes", "yes"], ":1: not a TBD sample .*doc: field 'label' must be 1 \\(seen/member\\) or 0 \\(unseen\\), got 'yes'"),
    ([1, None], ": 1 of 2 documents have a 'label' \\(first without: doc_id 1\\)"),
])
def test_labels_in_a_samples_file_are_checked(tmp_path, labels, message):
    # label "yes" ended the report in a numpy TypeError, labels on some rows in "int + NoneType"
    from lm_eval_tbd.core.samples import load_run

    path = _samples_file(tmp_path / "model", n=2)
    samples = [json.loads(line) for line in path.read_text().splitlines()]
    for sample, label in zip(samples, labels):
        sample["doc"]["label"] = label
    path.write_text("".join(json.dumps(s) + "\n" for s in samples))
    with pytest.raises(ValueError, match=f"^{path}{message}"):
        load_run(tmp_path, "tbd_aime24")
