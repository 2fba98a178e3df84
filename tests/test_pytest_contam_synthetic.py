"""pytest --contam on small synthetic result folders: no model run and no ../shared/data, so
these run in seconds (the end-to-end tests on a real lm_eval run are in test_pytest_contam.py)."""

import json
import textwrap

import pytest

import lm_eval_tbd.report  # noqa: F401 - see below
from lm_eval_tbd.record import GenerationRecord

# In-process pytester runs drop the modules first imported inside them, and numpy cannot be
# imported twice in one process: the gates' modules (numpy, scipy, rich) are loaded here first.

RECORD = GenerationRecord(token_ids=[1], logprobs=[-0.5], finish_reason="length").to_json()


def write_results(root, task: str, scores) -> None:
    """An lm_eval --log_samples output folder holding ``task`` with these per-question TBD scores."""
    folder = root / "results" / "model"
    folder.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps({"doc_id": i, "doc": {"question": f"{task} question {i}", "id": f"{task}-{i}"},
                         "resps": [[RECORD]], "tbd": score}) for i, score in enumerate(scores)]
    (folder / f"samples_{task}_2026-01-01T00-00-00.000000.jsonl").write_text("\n".join(lines) + "\n")


def write_config(pytester, body: str) -> None:
    """pyproject.toml with a [tool.pytest_contam] table reading the folder of write_results."""
    pytester.makefile(".toml", pyproject='[tool.pytest_contam]\nresults = "results"\n' + textwrap.dedent(body))


@pytest.fixture
def two_tasks(pytester):
    """Results of tbd_a (TBD 0.5-0.8) and tbd_b (0.2-0.5) and a config that passes tbd_a and
    fails tbd_b."""
    write_results(pytester.path, "tbd_a", [0.5, 0.6, 0.7, 0.8])
    write_results(pytester.path, "tbd_b", [0.2, 0.3, 0.4, 0.5])
    write_config(pytester, """
        [tool.pytest_contam.benchmarks.tbd_a]
        score_cutoff = 0.45
        [tool.pytest_contam.benchmarks.tbd_b]
        score_cutoff = 0.45
        """)


def read_json(pytester, name="r.json") -> dict:
    return json.loads((pytester.path / name).read_text())


# ---- pytest-xdist: the controller writes the JSON from its workers' reports ----------------


def test_xdist_json_reflects_the_workers_gates(pytester, two_tasks):
    result = pytester.runpytest_subprocess("--contam", "-n", "2", "-k", "tbd_a", "--contam-json=r.json")
    result.assert_outcomes(passed=1)  # (the xdist controller does not count deselected items)
    report = read_json(pytester)
    assert report["passed"] is True and report["not_run"] == [] and list(report["benchmarks"]) == ["tbd_a"]
