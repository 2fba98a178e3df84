"""The real-student benchmark's device and precision choices, and its option checks, without a model."""

import json
import os

import pytest
import torch

from benchmarks import real_student
from benchmarks.protocol import FULL, QUICK, Protocol, default_backend
from benchmarks.student import cache, device, report, scoring
from benchmarks.student.distil import distil
from lm_eval_tbd.backends import cpu_allocator

HAS_CUDA = torch.cuda.is_available()


def test_auto_device_is_cuda_only_where_torch_sees_a_gpu():
    assert device.resolve_device("auto") == ("cuda" if HAS_CUDA else "cpu")
    assert device.resolve_device("cpu") == "cpu"


@pytest.mark.skipif(HAS_CUDA, reason="this machine has a CUDA GPU")
def test_cuda_without_a_gpu_is_an_error_naming_the_option():
    with pytest.raises(SystemExit, match="--device cuda: torch sees no CUDA GPU"):
        device.resolve_device("cuda")


def test_explicit_train_dtype_is_kept_on_any_device():
    for where in ("cpu", "cuda"):
        assert device.train_dtype("fp32", where) == "fp32"
        assert device.train_dtype("bf16", where) == "bf16"


def test_auto_train_dtype_on_cpu_follows_native_bf16():
    """Against the kernel's CPU flags (torch's capability string says AVX512 on a CPU with
    AVX512-BF16 too)."""
    from pathlib import Path

    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.is_file() or "flags" not in cpuinfo.read_text():
        pytest.skip("no /proc/cpuinfo flags to check against")
    flags = set(next(line for line in cpuinfo.read_text().splitlines() if line.startswith("flags")).split())
    native = bool(flags & {"avx512_bf16", "amx_bf16"})
    assert device.cpu_has_native_bf16() is native
    assert device.train_dtype("auto", "cpu") == ("bf16" if native else "fp32")


@pytest.mark.parametrize("option", ["--eval-batch", "--n", "--epochs", "--answer-tokens"])
def test_sizes_below_one_are_refused_naming_the_option(option, capsys):
    with pytest.raises(SystemExit) as err:
        real_student.main([option, "0"])
    assert err.value.code == 2
    assert f"{option} 0: must be at least 1" in capsys.readouterr().err


def test_reports_name_the_gpu_only_when_one_was_used():
    assert report.machine({"cpus": 2}) == "2 CPU cores"
    assert report.machine({"cpus": 2, "device": "cpu", "device_name": "2 CPU cores"}) == "2 CPU cores"
    assert (report.machine({"cpus": 16, "device": "cuda", "device_name": "NVIDIA H200"})
            == "one NVIDIA H200 GPU (16 CPU cores beside it)")


def test_reports_say_step_by_step_where_cached_steps_were_made():
    resumed = {"cpus": 2, "device": "cpu", "device_name": "2 CPU cores",
               "steps_ran_on": {"distillation": "NVIDIA H200", "greedy-0": "NVIDIA H200", "greedy-5": "not recorded",
                                "sample-5": "2 CPU cores"}}
    assert report.machine(resumed) == (
        "2 CPU cores for this invocation; cached steps: distillation, greedy-0 on NVIDIA H200; "
        "greedy-5 on an unrecorded machine; sample-5 on 2 CPU cores")
    assert report.machine({**resumed, "steps_ran_on": {"distillation": "2 CPU cores"}}) == "2 CPU cores"


def test_ran_on_names_the_machine_of_a_step(monkeypatch):
    assert device.ran_on("cpu") == {"device": "cpu", "device_name": f"{os.cpu_count()} CPU cores"}
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "NVIDIA H200")
    assert device.ran_on("cuda") == {"device": "cuda", "device_name": "NVIDIA H200"}


def test_cuda_choices_follow_what_torch_reports(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert device.resolve_device("auto") == device.resolve_device("cuda") == "cuda"
    for major, dtype in ((7, "fp32"), (8, "bf16"), (9, "bf16")):  # V100/T4 emulate bf16; Ampere on has it
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a, m=major: (m, 0))
        assert device.train_dtype("auto", "cuda") == dtype
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert device.resolve_device("auto") == "cpu"
    with pytest.raises(SystemExit, match="--device cuda: torch sees no CUDA GPU"):
        device.resolve_device("cuda")


@pytest.mark.parametrize(("args", "message"), [
    (["--samples", "-1"], "--samples -1: must be 0 (no sampled pass) or more"),
    (["--lr", "0"], "--lr 0.0: must be above 0"),
    (["--checkpoints", "0,5"], "--checkpoints 0,5: epochs start at 1"),
    (["--checkpoints", "1,two"], "--checkpoints '1,two': comma-separated whole epochs"),
])
def test_bad_protocol_options_are_refused_naming_the_option(args, message, capsys):
    with pytest.raises(SystemExit) as err:
        real_student.main(args)
    assert err.value.code == 2
    assert message in capsys.readouterr().err


def test_distillation_made_elsewhere_is_named_with_its_command():
    s = {"command": "python benchmarks/real_student.py --checkpoints 5",
         "settings": {"distillation": {"command": "python benchmarks/real_student.py --checkpoints 1,2,3,5 --device cuda",
                                       "checkpoints": [1, 2, 3, 5], "losses": [1.5, 0.25], "train_dtype": "bf16",
                                       "device_name": "NVIDIA H200"}}}
    assert report.distillation_lines(s) == [
        "The checkpoints come from an earlier invocation, `python benchmarks/real_student.py --checkpoints 1,2,3,5 "
        "--device cuda` (checkpoints after epochs 1, 2, 3, 5; bf16 on NVIDIA H200); this one scored or analysed "
        "them. Response loss by epoch: 1.500, 0.250.", ""]
    same = {**s, "settings": {"distillation": {**s["settings"]["distillation"], "command": s["command"]}}}
    assert report.distillation_lines(same) == ["Response loss by epoch: 1.500, 0.250.", ""]
    assert report.distillation_lines({"command": "c", "settings": {}}) == []


@pytest.mark.parametrize("explicit", [False, True])
def test_a_new_distillation_drops_the_passes_scored_on_old_checkpoints(tmp_path, explicit):
    # No cached checkpoints: distil starts anew, so the results scored on the old epoch-1 go stale
    # before it loads anything (the missing base model then stops it).
    work = tmp_path / "work"
    stale = {name: work / name / "done.json" for name in ("greedy-1", "sample-1", "greedy-post-1", "greedy-2")}
    for f in stale.values():
        f.parent.mkdir(parents=True)
        f.write_text("{}")
    (work / "distil.json").write_text("{}")
    scored = {1: [work / "greedy-post-1"]} if explicit else None
    with pytest.raises(OSError):
        distil(tmp_path / "no-base", work, [], Protocol(checkpoints=(1,)), seed=0, scored=scored)
    assert not (work / "distil.json").exists()
    gone = {"greedy-post-1"} if explicit else {"greedy-1", "sample-1"}
    assert {name for name, f in stale.items() if not f.exists()} == gone


def test_scoring_environment_carries_the_allocator_settings_on_cpu_only():
    cpu, cuda = scoring.lm_eval_env("cpu"), scoring.lm_eval_env("cuda")
    assert cpu["HF_HUB_OFFLINE"] == cuda["HF_HUB_OFFLINE"] == "1"
    if cpu_allocator._glibc():
        assert "MALLOC_MMAP_THRESHOLD_" in cpu
    assert "MALLOC_MMAP_THRESHOLD_" not in cuda or "MALLOC_MMAP_THRESHOLD_" in os.environ


def _protocol(tmp_path, **cfg):
    data = tmp_path / "s1k.jsonl"
    if not data.exists():
        data.write_text('{"id": 1, "question": "q", "solution": "s"}\n')
    return cache.protocol_record(FULL.replace(**cfg), data=data, split_seed=42, base=None)


def test_a_work_folder_records_its_protocol_and_accepts_the_same_one(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    cache.check_protocol(work, _protocol(tmp_path))
    assert json.loads((work / "protocol.json").read_text())["lr"] == FULL.lr
    cache.check_protocol(work, _protocol(tmp_path))  # the same protocol: the cache is reused


def test_a_work_folder_of_another_protocol_is_refused_naming_what_differs(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    cache.check_protocol(work, _protocol(tmp_path, lr=1e-4))
    (work / "epoch-5").mkdir()  # a cached checkpoint
    with pytest.raises(SystemExit, match=r"\(epoch-5\) were made with lr 0.0001; this run asks for lr 0.0003\. Give another"):
        cache.check_protocol(work, _protocol(tmp_path, lr=3e-4))
    (tmp_path / "s1k.jsonl").write_text('{"id": 2, "question": "q", "solution": "s"}\n')
    with pytest.raises(SystemExit, match=r"made with data_sha256 [0-9a-f]{16}; this run asks for data_sha256"):
        cache.check_protocol(work, _protocol(tmp_path, lr=1e-4))


def test_a_folder_with_no_cached_step_takes_the_new_protocol(tmp_path):
    """A first run that failed before caching anything does not lock the folder to its options."""
    cache.check_protocol(tmp_path, _protocol(tmp_path, lr=1e-4))
    cache.check_protocol(tmp_path, _protocol(tmp_path, lr=3e-4))
    assert json.loads((tmp_path / "protocol.json").read_text())["lr"] == 3e-4


def test_cached_steps_without_a_protocol_record_are_refused(tmp_path):
    (tmp_path / "greedy-0").mkdir()
    (tmp_path / "greedy-0" / "done.json").write_text('{"seconds": 1}')
    with pytest.raises(SystemExit, match=r"cached steps \(greedy-0\) but no protocol.json.*save this as"):
        cache.check_protocol(tmp_path, _protocol(tmp_path))
    assert not (tmp_path / "protocol.json").exists()


def test_the_protocol_names_the_base_folder_and_the_data_by_content(tmp_path):
    base = tmp_path / "my-base"
    base.mkdir()
    (base / "config.json").write_text('{"model_type": "llama"}')
    a = cache.protocol_record(FULL, data=base / "config.json", split_seed=42, base=base)
    assert a["base"].startswith("my-base (config.json sha256 ") and str(tmp_path) not in json.dumps(a)
    copy = tmp_path / "elsewhere.json"
    copy.write_text('{"model_type": "llama"}')
    assert cache.protocol_record(FULL, data=copy, split_seed=42, base=base) == a
    with pytest.raises(SystemExit, match="--base .*: no config.json there"):
        cache.protocol_record(FULL, data=copy, split_seed=42, base=tmp_path / "nothing")


def test_a_cached_pass_is_reused_only_with_the_same_options(tmp_path, monkeypatch):
    """score() reruns lm_eval (here our subprocess wrapper, replaced to record the call) when the
    pass was cached with other task options or cache key; a record from before options were kept
    is trusted."""
    import lm_eval_tbd.harness.runner as runner

    calls = []
    monkeypatch.setattr(runner, "run_lm_eval", lambda cmd, **kw: calls.append(cmd))
    out, cfg = tmp_path / "sample-5", Protocol(eval_batch=2, device="cpu", backend="hf")
    sampled = scoring.sampled_metadata(2, 0, ref_model=True)
    out.mkdir()
    (out / "done.json").write_text('{"seconds": 7.0}')  # an old record: no options
    assert scoring.score(tmp_path / "m", tmp_path / "t", out, cfg, metadata=sampled) == 7.0 and not calls
    (out / "done.json").write_text(json.dumps({"seconds": 7.0, "metadata": sampled, "key": None}))
    (out / "old_samples.jsonl").write_text("{}")
    assert scoring.score(tmp_path / "m", tmp_path / "t", out, cfg, metadata=sampled) == 7.0 and not calls
    scoring.score(tmp_path / "m", tmp_path / "t", out, cfg, metadata=scoring.sampled_metadata(3, 0, True))
    assert len(calls) == 1 and not (out / "old_samples.jsonl").exists()  # the stale outputs are gone
    assert json.loads((out / "done.json").read_text())["metadata"]["tbd_samples"] == 3
    scoring.score(tmp_path / "m", tmp_path / "t", out, cfg, metadata=scoring.sampled_metadata(3, 0, True),
                       cache_key={"reword_seed": 1})
    assert len(calls) == 2


@pytest.mark.parametrize("text, why", [('{"seconds": ', "Expecting value"), ("[1]", "not a JSON object")])
def test_an_unreadable_cache_record_is_named(tmp_path, text, why):
    (tmp_path / "done.json").write_text(text)
    with pytest.raises(SystemExit, match=f"done.json: unreadable cache record \\({why}"):
        cache.read_record(tmp_path / "done.json")


@pytest.mark.parametrize("text", ["{", "null"])
def test_an_unreadable_protocol_record_is_named(tmp_path, text):
    (tmp_path / "protocol.json").write_text(text)
    with pytest.raises(SystemExit, match="protocol.json: unreadable cache record .*; delete it, or the folder, to start"):
        cache.check_protocol(tmp_path, _protocol(tmp_path))


def test_the_protocol_records_its_settings_in_the_summarys_order():
    settings = QUICK.replace(backend="hf").settings()
    assert list(settings) == ["n", "answer_tokens", "epochs", "checkpoints", "lr", "batch_size", "max_tokens", "samples",
                              "eval_batch", "windows", "device", "train_dtype", "backend", "weight_scores"]
    assert settings["checkpoints"] == [1] and settings["backend"] == "hf"
    assert {k: getattr(QUICK, k) for k in Protocol.CACHE_KEYS} == {
        "n": 8, "answer_tokens": 32, "epochs": 1, "lr": 1e-4, "batch_size": 4, "max_tokens": 24}


@pytest.mark.parametrize(("argv", "backend"), [([], default_backend()), (["--backend", "hf"], "hf"),
                                               (["--backend", "vllm"], "vllm")])
def test_the_backend_option_reaches_the_protocol(argv, backend):
    ap = real_student.parser()
    p = real_student.protocol(ap.parse_args(["--quick", "--device", "cpu", *argv]), ap)
    assert p.backend == backend and p.n == QUICK.n and p.device == "cpu"


def test_epochs_and_checkpoints_options_shape_the_protocol():
    ap = real_student.parser()
    p = real_student.protocol(ap.parse_args(["--epochs", "4", "--device", "cpu"]), ap)
    assert (p.epochs, p.checkpoints) == (4, (1, 2, 3, 4))
    p = real_student.protocol(ap.parse_args(["--checkpoints", "2,7", "--device", "cpu"]), ap)
    assert (p.epochs, p.checkpoints) == (7, (2, 7))


def test_the_report_names_the_backend_it_scored_with():
    from benchmarks.student.report import markdown

    w = {"auc": 0.5, "auc_ci": [0.4, 0.6], "tpr@1%fpr": 0.0, "tpr@5%fpr": 0.1, "tpr@5%fpr_ci": [0.0, 0.2]}
    s = {"command": "c", "seconds": 60, "timings": {"distil_s": 30, "score_s": 30, "analysis_s": 3,
                                                    "pass_s": {"greedy-0": 30}},
         "settings": {**QUICK.replace(backend="vllm").settings(), "cpus": 2, "base": "b", "n_params": 1e6, "seed": 0},
         "checkpoints": {"0": {"memorisation": {"memorised_share": 0, "mean_prefix_members": 0,
                                                "mean_prefix_nonmembers": 0},
                               "greedy": {"scores": {"tbd": w}, "tbd_windows": {"12": w, "24": w}},
                               "paired": {}, "gates": {k: {"passed": True, "auc": None}
                                                       for k in ("rs_members", "rs_nonmembers_b")}}}}
    md = markdown(s, "x")
    assert "`lm_eval --model vllm --apply_chat_template`; no pass with `tbd_input_scores` or a reference" in md
    s["checkpoints"]["5"] = {**s["checkpoints"]["0"], "greedy": {"scores": {"tbd": w, "ref_tbd": w},
                                                                 "tbd_windows": {"12": w, "24": w}}}
    assert "the greedy passes of epoch 5 with `tbd_input_scores`" in markdown(s, "x")
    assert "Time by step (min): distillation 0.5; scoring passes: greedy-0 0.5; analysis 0.1." in md
    assert "end to end" not in md  # no wall time recorded
    s["timings"].update(invocation_wall_s=120, steps_cached=[])
    assert "This invocation, end to end with every step made in it: 2.0 min." in markdown(s, "x")
    s["timings"]["steps_cached"] = ["distillation"]
    assert "This invocation: 2.0 min, with distillation cached from earlier ones." in markdown(s, "x")
    s["checkpoints"]["0"]["greedy"]["scores"]["q_mean_logprob"] = w
    assert "every greedy pass with `tbd_input_scores`" in markdown(s, "x")


def test_weight_scores_go_to_the_ends_unless_every_checkpoint_is_asked():
    assert [QUICK.with_weight_scores(e, "5") for e in ("0", "1", "3", "5")] == [True, False, False, True]
    assert all(QUICK.replace(weight_scores="every").with_weight_scores(e, "5") for e in ("0", "1", "5"))
    with pytest.raises(ValueError, match="weight_scores 'some'"):
        QUICK.replace(weight_scores="some")
    args = real_student.parser().parse_args(["--weight-scores", "every"])
    assert real_student.protocol(args, real_student.parser()).weight_scores == "every"


def test_the_sampled_pass_asks_for_no_question_side_and_the_reference_only_when_told():
    assert scoring.sampled_metadata(2, 0, ref_model=False) == {
        "tbd_decoding": "sample", "tbd_samples": 2, "tbd_seed": 0, "tbd_input_scores": False, "tbd_ref_model": ""}
    assert "tbd_ref_model" not in scoring.sampled_metadata(2, 0, ref_model=True)
    assert scoring.GENERATION_ONLY == {"tbd_input_scores": False, "tbd_ref_model": ""}


def test_vllm_scoring_passes_run_eager_in_float32(tmp_path):
    model, args, batch = scoring.model_spec("vllm", tmp_path, QUICK)
    assert (model, batch) == ("vllm", "auto") and "enforce_eager=True" in args and "dtype=float32" in args
    assert "enable_chunked_prefill=False" in args
    assert "enforce_eager" not in scoring.model_spec("hf", tmp_path, QUICK)[1]


def test_a_cached_pass_with_more_scores_answers_a_request_for_fewer():
    full, sampled = None, scoring.sampled_metadata(2, 0, ref_model=False)
    assert scoring.covers(full, scoring.GENERATION_ONLY)  # the task files' options: both on
    assert not scoring.covers(scoring.GENERATION_ONLY, full)
    assert scoring.covers({"tbd_input_scores": True}, {"tbd_input_scores": "false"})
    # the sampled pass of earlier protocols (question side on, reference model on or off)
    old = {"tbd_decoding": "sample", "tbd_samples": 2, "tbd_seed": 0}
    assert scoring.covers(old, sampled) and scoring.covers({**old, "tbd_ref_model": ""}, sampled)
    assert not scoring.covers({**old, "tbd_ref_model": ""}, scoring.sampled_metadata(2, 0, ref_model=True))
    assert not scoring.covers({**old, "tbd_seed": 1}, sampled) and not scoring.covers(old, {**sampled, "tbd_samples": 3})
    assert not scoring.covers({"tbd_ref_model": "a"}, {"tbd_ref_model": "b"})
