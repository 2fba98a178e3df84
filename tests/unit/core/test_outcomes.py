"""lm_eval_tbd.core.outcomes (an ordinary task's correctness read back from lm-eval's samples, and
joined with a TBD task by question text) and lm_eval_tbd.core.accuracy's figures of a joined pair."""

import json

import pytest

from lm_eval_tbd.core.accuracy import folder_accuracy
from lm_eval_tbd.core.outcomes import (
    PairingError,
    find_ordinary_task,
    join_questions,
    load_outcomes,
    normalise_question,
    ordinary_candidates,
    pair_run,
    parse_task_metric,
)
from lm_eval_tbd.core.samples import load_run
from tests.helpers.ordinary import questions, write_ordinary, write_tbd

TBD = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]
CORRECT = [1, 1, 0, 1, 0, 0, 1, 0]


@pytest.fixture
def folder(tmp_path):
    d = tmp_path / "out" / "org__model"
    write_tbd(d, "tbd_aime24", questions(8), TBD, labels=[1, 1, 1, 1, 0, 0, 0, 0])
    return d


def test_normalise_question():
    assert normalise_question(" What  is\n2+2? ") == "what is 2+2?"
    assert normalise_question("Ｆｉｎｄ x") == "find x"  # NFKC: full-width letters


def test_parse_task_metric():
    assert parse_task_metric("gsm8k") == ("gsm8k", None)
    assert parse_task_metric("gsm8k:exact_match,strict-match") == ("gsm8k", "exact_match,strict-match")
    for bad in ("", ":exact_match", "gsm8k:"):
        with pytest.raises(ValueError, match="TASK:METRIC"):
            parse_task_metric(bad)


def test_candidates_by_name():
    assert ordinary_candidates("tbd_math500") == ("minerva_math500", "hendrycks_math500")
    assert ordinary_candidates("tbd_aime24") == ("aime24",)
    assert ordinary_candidates("tbd_mybench") == ("mybench",)
    assert ordinary_candidates("heldout") == ()


def test_load_outcomes_takes_the_first_numeric_metric_and_the_first_filter(folder):
    write_ordinary(folder, "gsm8k", questions(3), [[1, 0, 1], [1, 1, 1]], filters=("strict-match", "flexible-extract"))
    out = load_outcomes(folder, "gsm8k")
    assert (out.metric, out.filter, out.metric_key) == ("exact_match", "strict-match", "exact_match,strict-match")
    assert [o.value for o in out.outcomes] == [1.0, 0.0, 1.0]
    assert out.other_filters == ("flexible-extract",)
    flexible = load_outcomes(folder, "gsm8k", metric="exact_match,flexible-extract")
    assert [o.value for o in flexible.outcomes] == [1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="no filter 'loose' .*its filters: strict-match, flexible-extract"):
        load_outcomes(folder, "gsm8k", metric="exact_match,loose")
    with pytest.raises(ValueError, match="no metric 'f1'"):
        load_outcomes(folder, "gsm8k", metric="f1")


def test_load_outcomes_reads_the_question_under_the_tasks_own_field(folder):
    write_ordinary(folder, "aime24", questions(3), [1, 0, 1], field="Problem")  # lm-eval's aime24 doc
    assert [o.question for o in load_outcomes(folder, "aime24").outcomes] == questions(3)
    write_ordinary(folder, "odd", questions(3), [1, 0, 1], field="prompt_text")
    with pytest.raises(ValueError, match=r"odd_.*:1: the document has no question text under question, problem, "
                                         r"Question, Problem \(its fields: answer, prompt_text\)"):
        load_outcomes(folder, "odd")


def test_load_outcomes_refuses_what_is_not_a_number_or_twice_logged(folder):
    path = write_ordinary(folder, "bleu_task", questions(2), [1, 0], metric="bleu")
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    lines[0]["bleu"] = [["ref"], "pred"]  # lm-eval logs (reference, prediction) for corpus metrics
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    with pytest.raises(ValueError, match="logs no numeric metric per document"):
        load_outcomes(folder, "bleu_task")
    path.write_text("".join(json.dumps(x) + "\n" for x in lines[1:] * 2))
    with pytest.raises(ValueError, match="doc_id 1 is also the document of"):
        load_outcomes(folder, "bleu_task")


def test_a_tbd_task_is_not_an_ordinary_task(folder):
    with pytest.raises(PairingError, match="tbd_aime24 .* is a TBD task"):
        load_outcomes(folder, "tbd_aime24")


def test_join_is_by_normalised_text_not_doc_id(folder):
    texts = [q.upper().replace(" ", "  ") for q in questions(8)]
    write_ordinary(folder, "aime24", texts, CORRECT, order=[7, 6, 5, 4, 3, 2, 1, 0])
    run = load_run(folder, "tbd_aime24")
    j = join_questions(run, load_outcomes(folder, "aime24"))
    assert j.matched == 8 and not j.partial
    outcomes = load_outcomes(folder, "aime24").outcomes
    assert all(normalise_question(run.questions[i].question) == normalise_question(outcomes[k].question)
               for i, k in j.pairs)


def test_a_partial_match_is_counted(folder):
    write_ordinary(folder, "aime24", questions(5) + ["another question", "and another"], [1] * 7)
    j = join_questions(load_run(folder, "tbd_aime24"), load_outcomes(folder, "aime24"))
    assert (j.matched, j.n_tbd, j.n_task, j.partial) == (5, 8, 7, True)
    assert j.unmatched_tbd == ("tbd_aime24-5", "tbd_aime24-6", "tbd_aime24-7") and j.unmatched_task == (5, 6)
    assert j.describe() == "5 of 8 tbd_aime24 questions matched 5 of 7 aime24 documents by question text"


def test_a_set_that_does_not_match_is_an_error_naming_both_tasks(folder):
    write_ordinary(folder, "aime25", questions(8, prefix="How many") , [1] * 8)
    with pytest.raises(PairingError, match=r"mismatched pairing: tbd_aime24 and aime25 do not hold the same "
                                           r"questions: 0 of 8 tbd_aime24 questions matched 0 of 8 aime25"):
        join_questions(load_run(folder, "tbd_aime24"), load_outcomes(folder, "aime25"))
    # a few shared questions are not enough: below half of the smaller set
    write_ordinary(folder, "aime25", questions(3) + questions(5, prefix="How many"), [1] * 8)
    with pytest.raises(PairingError, match="3 of 8 tbd_aime24 questions matched 3 of 8 aime25"):
        join_questions(load_run(folder, "tbd_aime24"), load_outcomes(folder, "aime25"))


def test_repeated_questions_pair_in_order(tmp_path):
    d = tmp_path / "m"
    write_tbd(d, "tbd_x", ["same?", "same?", "other?"], [0.1, 0.2, 0.3])
    write_ordinary(d, "x", ["same?", "other?", "same?"], [1, 0, 0])
    j = join_questions(load_run(d, "tbd_x"), load_outcomes(d, "x"))
    assert j.pairs == ((0, 0), (1, 2), (2, 1))


def test_find_ordinary_task_by_name_and_ambiguity(tmp_path):
    d = tmp_path / "m"
    write_tbd(d, "tbd_math500", questions(4), [0.1] * 4)
    assert find_ordinary_task(d, "tbd_math500") is None
    write_ordinary(d, "minerva_math500", questions(4), [1] * 4, field="problem")
    assert find_ordinary_task(d, "tbd_math500") == "minerva_math500"
    write_ordinary(d, "hendrycks_math500", questions(4), [1] * 4, field="problem")
    with pytest.raises(PairingError, match="ambiguous pairing: tbd_math500 could be joined with minerva_math500 or "
                                           "hendrycks_math500.*--accuracy tbd_math500=minerva_math500"):
        find_ordinary_task(d, "tbd_math500")


def test_pair_run_notes_another_run_and_a_base_folder_without_the_task(folder, tmp_path):
    write_ordinary(folder, "aime24", questions(8), CORRECT, stamp="2026-02-02T00-00-00.000000")
    base = tmp_path / "base" / "org__base"
    base.mkdir(parents=True)
    paired = pair_run(load_run(folder, "tbd_aime24"), base_path=base.parent)
    assert paired.outcomes.task == "aime24" and paired.join.matched == 8
    assert "aime24's newest run (2026-02-02T00-00-00.000000) is not tbd_aime24's" in paired.other_run
    assert paired.base_outcomes is None and "holds no run of aime24" in paired.base_note
    with pytest.raises(PairingError, match="tbd_aime24 paired with gsm8k, but no samples for task 'gsm8k'"):
        pair_run(load_run(folder, "tbd_aime24"), "gsm8k")


def test_folder_accuracy_by_hand(folder, tmp_path):
    write_ordinary(folder, "aime24", questions(8), CORRECT)
    base = tmp_path / "base" / "org__base"
    write_ordinary(base, "aime24", questions(8), [1, 0, 0, 1, 0, 0, 1, 0])
    fig = folder_accuracy(folder.parent, "tbd_aime24", base_path=base.parent)
    assert (fig["task"], fig["metric"], fig["score"], fig["n"]) == ("aime24", "exact_match,none", "tbd", 8)
    assert fig["accuracy"] == 0.5
    s = fig["seen_like"]
    assert (s["accuracy_group"], s["n_group"]) == (1.0, 2) and s["accuracy_rest"] == pytest.approx(2 / 6)
    assert fig["rank_correlation"]["rho"] == pytest.approx(16 / (42 * 32) ** 0.5)
    m = fig["members"]  # labels: q0-q3 members
    assert (m["accuracy_group"], m["accuracy_rest"], m["source"]) == (0.75, 0.25, "labels")
    assert fig["inflation"]["inflation"] == pytest.approx(0.5) and fig["inflation"]["n_without_base"] == 0
    assert [b["accuracy"] for b in fig["by_bin"]] == [0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 1.0, 1.0]
    assert fig["notes"] == []
    # member ids given by hand replace the labels (e.g. the questions put into the training set)
    given = folder_accuracy(folder.parent, "tbd_aime24", "aime24", member_ids=["tbd_aime24-6"])
    assert given["members"]["accuracy_group"] == 1.0 and given["members"]["source"] == "member ids given"


def test_flagged_questions_against_the_unflagged_leave_out_the_excluded(folder):
    from lm_eval_tbd.core.accuracy import accuracy_figures

    write_ordinary(folder, "aime24", questions(8), CORRECT)
    run = load_run(folder, "tbd_aime24")
    outcomes = load_outcomes(folder, "aime24")
    fig = accuracy_figures(run, outcomes, join_questions(run, outcomes), flagged_ids=["tbd_aime24-0", "tbd_aime24-3"],
                           excluded_ids=["tbd_aime24-7"], flagged_by="test")
    # flagged q0, q3 both right; unflagged q1, q2, q4, q5, q6: 2 of 5
    f = fig["flagged"]
    assert (f["accuracy_group"], f["accuracy_rest"], f["n_excluded"]) == (1.0, 0.4, 1)
    assert f["gap"] == pytest.approx(0.6)
