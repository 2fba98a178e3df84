"""The beyond-the-paper benchmark's helpers without a model: the overlap check that keeps s1K out
of the post-distillation data, the verdicts drawn from the figures, and the command it records."""

import json

import pytest

from benchmarks import beyond
from benchmarks._cli import command_line
from benchmarks.robustness import pipeline
from benchmarks.robustness.analysis import verdicts
from benchmarks.robustness.data import unrelated_items


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_unrelated_items_drop_every_overlap_with_s1k(tmp_path):
    s1k = [{"question": "Find all integers n such that n squared plus one divides n cubed plus seven exactly "
                        "when n is positive and odd", "solution": "s"}]
    _write(tmp_path / "math500.jsonl", [
        {"id": "same", "question": "FIND all integers n such that n squared plus one divides n cubed plus seven "
                                   "exactly when n is positive and odd!", "solution": "a"},  # same normalised text
        {"id": "run", "question": "Prove it: n squared plus one divides n cubed plus seven exactly when n is "
                                  "positive, and more", "solution": "b"},  # shares a run of 12 words
        {"id": "ok1", "question": "What is 2 + 3?", "solution": "5"},
    ])
    _write(tmp_path / "gsm8k_test.jsonl", [{"id": 7, "question": "Tom has 3 apples. How many?", "solution": "3"}])
    items, overlap = unrelated_items(tmp_path, s1k, 2, seed=0)
    assert overlap == {"candidates": 4, "same_text": 1, "shared_12_words": 1}
    assert sorted(r["id"] for r in items) == ["gsm8k_test-7", "math500-ok1"]
    assert unrelated_items(tmp_path, s1k, 2, seed=0)[0] == items  # seeded
    with pytest.raises(SystemExit, match="--post-items 3: only 2 unrelated items"):
        unrelated_items(tmp_path, s1k, 3, seed=0)


def _condition(tbd_auc, tpr5, others):
    scores = {"tbd": {"auc": tbd_auc, "tpr@5%fpr": tpr5}}
    vs = {}
    for name, (auc, tpr, lo, hi) in others.items():
        scores[name] = {"auc": auc, "tpr@5%fpr": tpr}
        vs[name] = {"difference": auc - tbd_auc, "ci": [lo, hi]}
    return {"scores": scores, "vs_tbd": vs}


def test_verdicts_name_what_beats_tbd_and_the_bar():
    s = {"conditions": {
        "real student, epoch 0, greedy": _condition(0.5, 0.05, {"q_min_k": (0.8, 0.3, 0.1, 0.5)}),  # null control
        "real student, epoch 5, greedy": _condition(0.55, 0.05, {"ref_logprob": (0.70, 0.20, 0.05, 0.25),
                                                                 "gen_entropy": (0.60, 0.05, 0.01, 0.10),
                                                                 "q_min_k": (0.58, 0.10, -0.1, 0.2)}),
        "real student, epoch 5, reworded questions": _condition(0.6, 0.1, {"ref_logprob": (0.5, 0.0, -0.2, -0.01)}),
    }}
    v = verdicts(s)
    assert len(v) == 3  # the base model is no student: no verdict line of its own
    assert v[0].startswith("real student, epoch 5, greedy: TBD AUC 0.550")
    assert "ref_logprob +0.150 [+0.050, +0.250], TPR@5% 0.200 (the bar: met)" in v[0]
    assert "gen_entropy +0.050" in v[0] and "(the bar: not met)" in v[0] and "q_min_k" not in v[0]
    assert v[1] == "gen_entropy loses to TBD with a CI excluding 0 on: no condition."
    assert v[2] == "ref_logprob loses to TBD with a CI excluding 0 on: real student, epoch 5, reworded questions."
    nothing = verdicts({"conditions": {"real student, epoch 5, greedy": _condition(0.5, 0.0, {})}})
    assert nothing[-1] == "Nothing beats greedy TBD on any real-student checkpoint: TBD stays the default."


def test_command_line_keeps_no_machine_paths():
    cmd = command_line(["--data-dir", "/home/me/data", "--out=/x/y", "--work", "/w", "--name", "a"],
                                    "beyond.py")
    assert cmd == "python benchmarks/beyond.py --data-dir data --name a"


def test_stem_with_a_path_separator_is_refused(capsys):
    with pytest.raises(SystemExit) as err:
        beyond.main(["--stem", "../beyond"])
    assert err.value.code == 2
    assert "--stem '../beyond': use letters, digits" in capsys.readouterr().err


def test_training_after_distillation_keeps_the_distillation_precision_on_the_same_device(monkeypatch):
    monkeypatch.setattr(pipeline, "train_dtype", lambda choice, device: f"auto-{device}")
    gpu_made = {"train_dtype": "bf16", "distillation": {"train_dtype": "bf16", "device": "cuda"}}
    assert pipeline.post_train_dtype(gpu_made, "cuda") == "bf16"
    # made on a GPU, trained further here on a CPU: what suits the CPU, not emulated bf16
    assert pipeline.post_train_dtype(gpu_made, "cpu") == "auto-cpu"
    # summaries from before the GPU option: their distillation ran on a CPU
    assert pipeline.post_train_dtype({"train_dtype": "fp32"}, "cpu") == "fp32"
    assert pipeline.post_train_dtype({"train_dtype": "fp32"}, "cuda") == "auto-cuda"
    assert pipeline.post_train_dtype({"distillation": {"train_dtype": "not recorded", "device": "cpu"}}, "cpu") == "auto-cpu"


def test_steps_ran_on_reads_the_new_steps_cache_files(tmp_path):
    (tmp_path / "reworded-5").mkdir()
    (tmp_path / "reworded-5" / "done.json").write_text(json.dumps({"seconds": 1, "device_name": "NVIDIA H200"}))
    (tmp_path / "post").mkdir()
    (tmp_path / "post" / "distil.json").write_text(json.dumps({"losses": [1.0], "seconds": 2}))
    assert pipeline.steps_ran_on(tmp_path, "5") == {"reworded-5": "NVIDIA H200", "post-training": "not recorded"}


def test_new_passes_take_the_real_student_runs_backend_and_sizes_unless_told(tmp_path):
    student = {"settings": {"n": 8, "max_tokens": 24, "answer_tokens": 32, "lr": 1e-4, "batch_size": 4, "eval_batch": 8,
                            "windows": [12, 24], "backend": "vllm", "train_dtype": "fp32"}}
    r = pipeline.Run(data_dir=tmp_path, out=tmp_path, work=tmp_path, real_student="rs", out_stem="b", command="c",
                     conditions=frozenset(), post_items=8, device="cpu", quick=True)
    p = pipeline.protocol(r, student)
    assert (p.backend, p.eval_batch, p.windows, p.train_dtype) == ("vllm", 8, (12, 24), "fp32")
    p = pipeline.protocol(pipeline.Run(**{**r.__dict__, "backend": "hf", "eval_batch": 3}), student)
    assert (p.backend, p.eval_batch) == ("hf", 3)
    del student["settings"]["backend"]  # a run from before the option: scored with hf
    assert pipeline.protocol(r, student).backend == "hf"
