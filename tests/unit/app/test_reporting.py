"""``lm-eval-tbd report`` on lm-eval output folders built here: task discovery, audit mode
(--reference), plots (--plot) and figures as JSON (--json). No model, no shared data."""

from __future__ import annotations

import json
import math

import pytest

from lm_eval_tbd.app.cli import main
from lm_eval_tbd.core.record import GenerationRecord
from lm_eval_tbd.core.samples import find_tasks, load_run
from lm_eval_tbd.core.scores import TBDParams, score_record
from tests.helpers.runs import write_results

STAMP = "2026-01-01T00-00-00.000000"


def write_run(root, task, probs, labels=None, model="org__model", stamp=STAMP, metadata=None):
    """A samples file as lm-eval writes it with --log_samples: one line per question whose
    ``resps[0][0]`` is the generation record (each question generates the tokens of one row of
    ``probs``), with every score under the paper's parameters beside it; and the run's results
    file, with the task's ``metadata`` (tbd_* options)."""
    folder = root / model
    write_results(folder, task, stamp=stamp, metadata=metadata)
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for i, row in enumerate(probs):
        record = GenerationRecord(token_ids=list(range(len(row))), logprobs=[math.log(p) if p > 0 else -math.inf for p in row],
                                  finish_reason="length", text="x" * len(row))
        # One text template for every task: the text-only diagnostic sees sets drawn alike.
        doc = {"id": f"{task}-{i}", "question": f"question {i}"}
        if labels is not None:
            doc["label"] = labels[i]
        lines.append({"doc_id": i, "doc": doc, "resps": [[record.to_json()]], "filtered_resps": [record.to_json()],
                      **score_record(record, TBDParams())})
    (folder / f"samples_{task}_{stamp}.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    return root


def write_plain_run(root, task, model="org__model"):
    """An ordinary generate_until task's samples: text responses."""
    folder = root / model
    folder.mkdir(parents=True, exist_ok=True)
    line = {"doc_id": 0, "doc": {"question": "Q?"}, "resps": [["The answer is 4."]], "exact_match": 0.0}
    (folder / f"samples_{task}_{STAMP}.jsonl").write_text(json.dumps(line) + "\n")


SEEN = [[0.99, 0.98, 0.97]] * 4  # near-deterministic: low TBD
UNSEEN = [[0.6, 0.4, 0.5], [0.3, 0.7, 0.5], [0.5, 0.5, 0.5], [0.45, 0.55, 0.35]]


def test_tasks_are_found_by_content_not_by_name(tmp_path, capsys):
    # after `make-task my_heldout`, report said "no TBD samples" (it looked for names tbd*)
    write_run(tmp_path, "my_heldout", UNSEEN)
    write_run(tmp_path, "tbd_aime24", SEEN)
    # (aime25, not aime24: an aime24 beside tbd_aime24 would be joined with it for accuracy)
    write_plain_run(tmp_path, "aime25")
    write_plain_run(tmp_path, "tbd_looks_like_one")
    assert find_tasks(tmp_path) == ["my_heldout", "tbd_aime24"]
    assert main(["report", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "TBD contamination: my_heldout" in out and "TBD contamination: tbd_aime24" in out
    assert "aime25" not in out


def test_no_tbd_samples_is_still_an_error(tmp_path, capsys):
    write_plain_run(tmp_path, "aime24")
    assert main(["report", str(tmp_path)]) == 2
    assert "no TBD samples" in capsys.readouterr().out


def test_report_with_a_single_member(tmp_path, capsys):
    # scipy's "two or more observations" error ended the report
    write_run(tmp_path, "mine", SEEN[:1] + UNSEEN, labels=[1, 0, 0, 0, 0])
    assert main(["report", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "ROC AUC" in out and "1.000" in out and "No confidence intervals" in out


def test_samples_file_that_is_not_utf8_names_the_line(tmp_path, capsys):
    write_run(tmp_path, "mine", UNSEEN)
    path = next(tmp_path.rglob("samples_mine_*.jsonl"))
    path.write_bytes(path.read_bytes() + b'{"doc_id": 9, "doc": {"question": "\xff"}}\n')
    assert main(["report", str(tmp_path), "--task", "mine"]) == 2
    assert f"{path}:5: not valid UTF-8" in capsys.readouterr().err


# ---- audit mode: --reference ----

MEMBERS = SEEN + [[0.95, 0.9, 0.99]] * 6
HELDOUT = UNSEEN + [[0.5, 0.6, 0.4]] * 4
CLEAN = UNSEEN[::-1] + [[0.4, 0.6, 0.5]] * 4


def audit_folder(root):
    write_run(root, "members", MEMBERS)
    write_run(root, "heldout", HELDOUT)
    write_run(root, "clean", CLEAN)
    return root


def strict_json(path):
    return json.loads(path.read_text(), parse_constant=lambda c: pytest.fail(f"non-JSON constant {c} in {path}"))


def test_audit_mode_gives_the_gates_statistics_and_verdict(tmp_path, capsys):
    from lm_eval_tbd.core.stats import audit

    out = audit_folder(tmp_path / "out")
    # a contaminated task is a verdict, not an error: exit status 0
    assert main(["report", str(out), "--reference", "clean", "--max-auc", "0.7", "--significance", "0.01",
                 "--json", str(tmp_path / "r.json")]) == 0
    text = capsys.readouterr().out
    assert "Audit against reference clean" in text and "AUC against clean is 1.000, limit 0.700" in text
    figures = strict_json(tmp_path / "r.json")["audit"]
    assert figures["reference"] == "clean" and figures["fdr"] == 0.05 and figures["significance"] == 0.01
    assert set(figures["tasks"]) == {"members", "heldout"}  # the reference is not audited against itself
    members, heldout = figures["tasks"]["members"], figures["tasks"]["heldout"]
    assert members["verdict"] == "FAIL" and heldout["verdict"] == "PASS"
    assert [c["passed"] for c in members["checks"]] == [False, False]
    runs = {t: load_run(out, t) for t in ("members", "heldout", "clean")}
    for task, got in (("members", members), ("heldout", heldout)):
        want = audit(-runs[task].tbd_values(), -runs["clean"].tbd_values())  # decision value: -TBD
        assert got["audit"]["auc"] == want["auc"] and got["audit"]["p_value"] == want["p_value"]
        assert got["audit"]["contaminated_fraction"] == want["contaminated_fraction"]
    assert members["audit"]["auc"] == 1.0 and heldout["audit"]["auc"] == 0.5


def test_audit_without_thresholds_reports_figures_only(tmp_path, capsys):
    out = audit_folder(tmp_path / "out")
    assert main(["report", str(out), "--task", "members", "--reference", "clean", "--json", str(tmp_path / "r.json")]) == 0
    assert "none given" in capsys.readouterr().out
    members = strict_json(tmp_path / "r.json")["audit"]["tasks"]["members"]
    assert members["verdict"] == "no threshold" and members["checks"] == [] and members["audit"]["auc"] == 1.0


def test_undefined_audit_is_reported_not_raised(tmp_path, capsys):
    write_run(tmp_path, "members", MEMBERS)
    write_run(tmp_path, "tiny", CLEAN[:1])
    assert main(["report", str(tmp_path), "--reference", "tiny", "--max-auc", "0.6",
                 "--json", str(tmp_path / "r.json")]) == 0
    assert "audit undefined" in capsys.readouterr().out
    members = strict_json(tmp_path / "r.json")["audit"]["tasks"]["members"]
    assert members["verdict"] == "undefined" and "at least 2 benchmark and 2 reference scores" in members["reason"]


@pytest.mark.parametrize(("argv", "message"), [
    (["--max-auc", "0.6"], "--max-auc needs --reference TASK"),
    (["--fdr", "0.1", "--audit-score", "gen_min_k"], "--audit-score, --fdr needs --reference"),
    (["--reference", "clean", "--significance", "0"], "argument --significance: must be in (0, 1]"),
    (["--reference", "clean", "--max-auc", "1"], "argument --max-auc: must be in [0, 1)"),
    (["--reference", "clean", "--fdr", "nan"], "argument --fdr: must be a finite number"),
    (["--reference", "clean", "--audit-score", "typo"], "argument --audit-score: invalid choice"),
])
def test_audit_options_are_checked(tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as exit_:
        main(["report", str(tmp_path), *argv])
    assert exit_.value.code == 2 and message in capsys.readouterr().err


def test_missing_reference_task_is_an_error(tmp_path, capsys):
    write_run(tmp_path, "members", MEMBERS)
    assert main(["report", str(tmp_path), "--reference", "nowhere", "--max-auc", "0.6"]) == 2
    assert "no samples for task 'nowhere'" in capsys.readouterr().err


# ---- --json and --plot ----


def test_report_json_holds_summaries_and_the_score_comparison(tmp_path, capsys):
    write_run(tmp_path / "out", "labelled", SEEN + UNSEEN, labels=[1] * 4 + [0] * 4)
    write_run(tmp_path / "out", "plain", UNSEEN)
    path = tmp_path / "figures" / "r.json"
    assert main(["report", str(tmp_path / "out"), "--tau", "0.9", "--json", str(path)]) == 0
    figures = strict_json(path)
    assert figures["params"] == {"tau": 0.9, "alpha": 0.6, "max_tokens": 300}
    assert "audit" not in figures and "plots" not in figures
    labelled, plain = figures["tasks"]["labelled"], figures["tasks"]["plain"]
    assert labelled["summary"]["auc"] == 1.0 and labelled["summary"]["n"] == 8
    assert labelled["scores"]["tbd"]["auc"] == 1.0 and len(labelled["scores"]["tbd"]["auc_ci"]) == 2
    assert "scores" not in plain and "auc" not in plain["summary"]
    assert [p.name for p in path.parent.iterdir()] == ["r.json"]  # no temporary file left


def test_report_json_is_strict_with_infinite_scores(tmp_path):
    write_run(tmp_path, "labelled", [[0.0, 0.9]] + SEEN + UNSEEN, labels=[1] * 5 + [0] * 4)
    assert main(["report", str(tmp_path), "--json", str(tmp_path / "r.json")]) == 0
    figures = strict_json(tmp_path / "r.json")
    # mean log-prob -inf ranks lowest (least seen-like): one member of five below every non-member
    assert figures["tasks"]["labelled"]["scores"]["gen_mean_logprob"]["auc"] == pytest.approx(0.8)


def _is_png(path):
    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plots_per_task_roc_and_audit(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out = audit_folder(tmp_path / "out")
    write_run(out, "labelled", SEEN + UNSEEN, labels=[1] * 4 + [0] * 4)
    plots = tmp_path / "plots"
    assert main(["report", str(out), "--reference", "clean", "--plot", str(plots), "--json", str(tmp_path / "r.json")]) == 0
    names = sorted(p.name for p in plots.iterdir())
    assert names == ["clean_tbd.png", "heldout_tbd.png", "heldout_vs_clean.png", "labelled_roc.png", "labelled_tbd.png",
                     "labelled_vs_clean.png", "members_tbd.png", "members_vs_clean.png"]
    assert all(_is_png(plots / n) for n in names)  # every one whole: no temporary file left beside them
    assert sorted(strict_json(tmp_path / "r.json")["plots"]) == sorted(str(plots / n) for n in names)


def test_audit_plot_of_a_score_with_infinities(tmp_path):
    pytest.importorskip("matplotlib")
    from lm_eval_tbd.app.plots import plot_audit

    write_run(tmp_path, "a", [[0.0, 0.9]] + SEEN)
    write_run(tmp_path, "ref", CLEAN)
    path = plot_audit(load_run(tmp_path, "a"), load_run(tmp_path, "ref"), "gen_mean_logprob", tmp_path / "p")
    assert path.name == "a_vs_ref.png" and _is_png(path)


def test_plot_without_matplotlib_says_how_to_install(tmp_path, capsys, monkeypatch):
    import sys

    write_run(tmp_path, "members", MEMBERS)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    assert main(["report", str(tmp_path), "--plot", str(tmp_path / "plots")]) == 2
    captured = capsys.readouterr()
    assert "pip install 'lm-eval-tbd[plot]'" in captured.err and "Traceback" not in captured.err
    assert captured.out == "" and not (tmp_path / "plots").exists()  # refused before any work


# ---- runs that cannot be compared, which run is reported, re-scoring beyond what was logged ----

LATER = "2026-01-02T00-00-00.000000"


def test_audit_refuses_a_task_scored_with_other_options_than_the_reference(tmp_path, capsys):
    # tbd_aime24 scored with tau 0.5 and tbd_aime25 with the default: FAILed with AUC 1.000
    write_run(tmp_path, "tbd_aime24", CLEAN, metadata={"tbd_tau": 0.5})
    write_run(tmp_path, "tbd_aime25", CLEAN, stamp=LATER)
    assert main(["report", str(tmp_path), "--reference", "tbd_aime25", "--max-auc", "0.6"]) == 2
    captured = capsys.readouterr()
    err = " ".join(captured.err.split())
    assert "task tbd_aime24" in err and "reference tbd_aime25" in err and f"run {LATER}" in err
    assert "tbd_tau: 0.5 (task) vs 1.0 (reference)" in err
    assert "Audit against" not in captured.out and "TBD contamination" not in captured.out  # nothing half-reported
    # re-scored alike, they compare
    assert main(["report", str(tmp_path), "--reference", "tbd_aime25", "--max-auc", "0.6", "--tau", "0.5"]) == 0
    assert "Audit against reference tbd_aime25" in capsys.readouterr().out


def test_every_task_is_named_with_its_run_and_an_older_run_is_warned_about(tmp_path, capsys):
    # after SIGINT stopped lm_eval, the report showed the earlier run of a task with no hint
    write_run(tmp_path, "old", UNSEEN)
    write_run(tmp_path, "new", UNSEEN, stamp=LATER)
    assert main(["report", str(tmp_path), "--json", str(tmp_path / "r.json")]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert f"TBD contamination: old (run {STAMP})" in out and f"TBD contamination: new (run {LATER})" in out
    assert f"warning: old's newest run ({STAMP}) is older than new's ({LATER})" in out
    assert strict_json(tmp_path / "r.json")["tasks"]["old"]["run"] == STAMP


def test_rescoring_beyond_the_generated_tokens_is_refused(tmp_path, capsys):
    # --max-tokens 300 on a 16-token run gave no warning and recorded max_tokens 300
    write_run(tmp_path, "short", UNSEEN, metadata={"tbd_max_tokens": 3})
    assert main(["report", str(tmp_path), "--max-tokens", "300", "--json", str(tmp_path / "r.json")]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "--max-tokens 300: short" in err and "generated at most 3 tokens per question" in err
    assert not (tmp_path / "r.json").exists()
    assert main(["report", str(tmp_path), "--max-tokens", "3"]) == 0


def test_rescoring_beyond_the_generated_tokens_is_refused_without_a_results_file(tmp_path, capsys):
    write_run(tmp_path, "short", UNSEEN)
    next(tmp_path.rglob("results_*.json")).unlink()
    assert main(["report", str(tmp_path), "--max-tokens", "4"]) == 2  # each record stopped at the limit, 3
    assert "generated at most 3 tokens per question" in " ".join(capsys.readouterr().err.split())


@pytest.mark.parametrize("argv", [["--tau", "1e-300"], ["--alpha", "1e300"]])
def test_parameters_that_make_every_tbd_zero_are_refused(tmp_path, capsys, argv):
    write_run(tmp_path, "mine", UNSEEN)
    assert main(["report", str(tmp_path), *argv]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "mine: all 4 questions that generated tokens score TBD 0 under tau" in err and "--tau / --alpha" in err


def test_a_run_whose_every_tbd_is_zero_is_warned_about(tmp_path, capsys):
    write_run(tmp_path, "certain", [[1.0, 1.0]] * 3)
    assert main(["report", str(tmp_path)]) == 0
    assert "warning: certain: all 3 questions that generated tokens score TBD 0" in " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize(("option", "make", "message"), [
    ("--plot", "file", "--plot {p}: {p} is a file, not a folder for the PNGs"),
    ("--json", "dir", "--json {p}: is a directory; give the path of the JSON file to write"),
])
def test_an_output_path_that_cannot_be_written_is_refused_before_any_work(tmp_path, capsys, option, make, message):
    # "[Errno 17] File exists" at the end of the work
    write_run(tmp_path / "out", "mine", UNSEEN)
    p = tmp_path / "target"
    p.write_text("") if make == "file" else p.mkdir()
    assert main(["report", str(tmp_path / "out"), option, str(p)]) == 2
    captured = capsys.readouterr()
    assert message.format(p=p) in captured.err and captured.out == ""
