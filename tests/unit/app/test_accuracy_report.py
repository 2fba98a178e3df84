"""lm-eval-tbd report's accuracy section (lm_eval_tbd.app.accuracy_report) on small lm-eval output
folders: the pairing (by name, by --accuracy; ambiguous or mismatched pairings exit non-zero naming
both tasks), the figures in the terminal, --json and --plot, and with audit mode the flagged
questions and the base model's inflation. The real lm_eval run is tests/integration/test_accuracy_e2e.py."""

import json

import pytest

from lm_eval_tbd.app.cli import main
from tests.helpers.ordinary import questions, write_ordinary, write_tbd

TBD = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]
CORRECT = [1, 1, 0, 1, 0, 0, 1, 0]
BASE = [1, 0, 0, 1, 0, 0, 1, 0]


@pytest.fixture
def out(tmp_path):
    """tbd_aime24 (labelled: q0-q3 members) beside aime24, whose doc holds the question under
    'Problem' as lm-eval's aime24 does, in another order."""
    folder = tmp_path / "out" / "org__model"
    write_tbd(folder, "tbd_aime24", questions(8), TBD, labels=[1, 1, 1, 1, 0, 0, 0, 0])
    write_ordinary(folder, "aime24", questions(8), CORRECT, field="Problem", order=[3, 1, 2, 0, 7, 5, 6, 4])
    return tmp_path / "out"


def read(path):
    return json.loads(path.read_text())


def test_report_joins_by_name_and_gives_the_figures(out, tmp_path, capsys):
    assert main(["report", str(out), "--json", str(tmp_path / "r.json"), "--plot", str(tmp_path / "plots")]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "Accuracy against seen-likeness: tbd_aime24 joined with aime24 (exact_match,none); 8 questions" in text
    assert "The 2 questions tbd calls most seen-like are answered right 100.0% of the time, the other 6 33.3%" in text
    fig = read(tmp_path / "r.json")["accuracy"]["tbd_aime24"]
    assert fig["match"] == {"matched": 8, "n_tbd": 8, "n_task": 8, "unmatched_tbd": [], "unmatched_task": []}
    assert fig["accuracy"] == 0.5 and fig["seen_like"]["gap"] == pytest.approx(1 - 2 / 6)
    assert fig["members"]["gap"] == 0.5
    assert fig["rank_correlation"]["rho"] == pytest.approx(16 / (42 * 32) ** 0.5)
    assert "inflation" not in fig and "flagged" not in fig
    png = tmp_path / "plots" / "tbd_aime24_accuracy.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert str(png) in read(tmp_path / "r.json")["plots"]


def test_accuracy_option_pairs_by_hand_with_a_metric(out, tmp_path, capsys):
    folder = out / "org__model"
    write_ordinary(folder, "my_eval", questions(8), [[0] * 8, CORRECT], filters=("strict", "flexible"))
    argv = ["report", str(out), "--json", str(tmp_path / "r.json"), "--accuracy", "tbd_aime24=my_eval:exact_match,flexible"]
    assert main(argv) == 0
    fig = read(tmp_path / "r.json")["accuracy"]["tbd_aime24"]
    assert (fig["task"], fig["metric"], fig["accuracy"]) == ("my_eval", "exact_match,flexible", 0.5)
    assert fig["notes"] == []  # the filter was chosen, so no note about the other one
    assert main(["report", str(out), "--json", str(tmp_path / "r.json"), "--accuracy", "tbd_aime24=my_eval"]) == 0
    fig = read(tmp_path / "r.json")["accuracy"]["tbd_aime24"]
    assert fig["metric"] == "exact_match,strict" and fig["accuracy"] == 0.0
    assert "my_eval logs filters strict, flexible; used strict" in fig["notes"][0]
    assert fig["rank_correlation"] == {"undefined": "correctness are the same for all 8 questions (0): no rank order "
                                                    "to correlate"}


def test_a_partial_match_is_reported_with_counts(out, tmp_path, capsys):
    write_ordinary(out / "org__model", "aime24", questions(6), CORRECT[:6])
    assert main(["report", str(out), "--json", str(tmp_path / "r.json")]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "note: partial match: 6 of 8 tbd_aime24 questions matched 6 of 6 aime24 documents by question text" in text
    assert read(tmp_path / "r.json")["accuracy"]["tbd_aime24"]["n"] == 6


def test_a_mismatched_pairing_exits_non_zero_naming_both_tasks(out, capsys):
    write_ordinary(out / "org__model", "aime25", questions(8, prefix="How many"), CORRECT)
    assert main(["report", str(out), "--accuracy", "tbd_aime24=aime25"]) == 2
    captured = capsys.readouterr()
    assert "mismatched pairing: tbd_aime24 and aime25 do not hold the same questions" in captured.err
    assert captured.out == ""  # refused before anything was printed


def test_an_ambiguous_pairing_exits_non_zero_naming_the_tasks(tmp_path, capsys):
    folder = tmp_path / "out" / "m"
    write_tbd(folder, "tbd_math500", questions(8), TBD)
    for task in ("minerva_math500", "hendrycks_math500"):
        write_ordinary(folder, task, questions(8), CORRECT, field="problem")
    assert main(["report", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "ambiguous pairing: tbd_math500 could be joined with minerva_math500 or hendrycks_math500" in err
    assert main(["report", str(tmp_path / "out"), "--accuracy", "tbd_math500=hendrycks_math500"]) == 0


@pytest.mark.parametrize("argv, message", [
    (["--accuracy", "tbd_aime24=aime24", "--accuracy", "tbd_aime24=other"],
     "ambiguous pairing: tbd_aime24 is paired with both aime24 and other"),
    (["--accuracy", "tbd_aime24"], r"expected TBD_TASK=TASK\[:METRIC\]"),
    (["--accuracy", "tbd_aime25=aime24"], "tbd_aime25 is not a reported TBD task"),
    (["--accuracy", "tbd_aime24=tbd_aime24"], "tbd_aime24 (.*) is a TBD task"),
    (["--accuracy", "tbd_aime24=gsm8k"], "tbd_aime24 paired with gsm8k, but no samples for task 'gsm8k'"),
])
def test_bad_accuracy_options_are_errors(out, capsys, argv, message):
    import re

    assert main(["report", str(out), *argv]) == 2
    assert re.search(message, capsys.readouterr().err)


def test_audit_mode_adds_the_flagged_questions_and_the_base_models_inflation(tmp_path, capsys):
    student, base = tmp_path / "out" / "m", tmp_path / "base" / "b"
    reference = questions(8, prefix="How many")
    write_tbd(student, "tbd_aime24", questions(8), TBD)
    write_tbd(student, "tbd_aime25", reference, [0.9] * 8)
    write_ordinary(student, "aime24", questions(8), CORRECT)
    write_tbd(base, "tbd_aime24", questions(8), [0.5] * 8)
    write_tbd(base, "tbd_aime25", reference, [0.5] * 8)
    write_ordinary(base, "aime24", questions(8), BASE)
    argv = ["report", str(tmp_path / "out"), "--reference", "tbd_aime25", "--base", str(tmp_path / "base"),
            "--json", str(tmp_path / "r.json")]
    assert main(argv) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "the excess, +50.0 points" in text and "is the estimated inflation" in text
    fig = read(tmp_path / "r.json")["accuracy"]["tbd_aime24"]
    assert fig["inflation"]["inflation"] == pytest.approx(0.5) and fig["inflation"]["base_gap"] == pytest.approx(0.5 - 2 / 6)
    assert fig["flagged"]["flagged_by"] == "Benjamini-Hochberg at FDR 0.05 against tbd_aime25"
    # 8 reference questions: no p-value below 1/9, so nothing is flagged at FDR 0.05
    assert fig["flagged"]["undefined"] == "no question of the 8 was flagged"
    # the reference task has no ordinary task beside it: no figures for it
    assert set(read(tmp_path / "r.json")["accuracy"]) == {"tbd_aime24"}


def test_a_score_the_task_did_not_log_leaves_its_accuracy_undefined_not_the_report(tmp_path, capsys):
    student = tmp_path / "out" / "m"
    write_tbd(student, "tbd_aime24", questions(8), TBD)
    write_tbd(student, "tbd_aime25", questions(8, prefix="How many"), [0.9] * 8)
    write_ordinary(student, "aime24", questions(8), CORRECT)
    argv = ["report", str(tmp_path / "out"), "--reference", "tbd_aime25", "--audit-score", "gen_min_k",
            "--json", str(tmp_path / "r.json")]
    assert main(argv) == 0
    assert "accuracy of aime24 against tbd_aime24: undefined: score 'gen_min_k' was not logged" in \
        " ".join(capsys.readouterr().out.split())
    assert "gen_min_k" in read(tmp_path / "r.json")["accuracy"]["tbd_aime24"]["error"]
