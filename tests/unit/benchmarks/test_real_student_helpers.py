"""The real-student benchmark's device and precision choices, and its option checks, without a model."""

import sys

import pytest
import torch

from tests.helpers import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))  # the benchmark scripts import their helpers by name

import real_student  # noqa: E402

HAS_CUDA = torch.cuda.is_available()


def test_auto_device_is_cuda_only_where_torch_sees_a_gpu():
    assert real_student.resolve_device("auto") == ("cuda" if HAS_CUDA else "cpu")
    assert real_student.resolve_device("cpu") == "cpu"


@pytest.mark.skipif(HAS_CUDA, reason="this machine has a CUDA GPU")
def test_cuda_without_a_gpu_is_an_error_naming_the_option():
    with pytest.raises(SystemExit, match="--device cuda: torch sees no CUDA GPU"):
        real_student.resolve_device("cuda")


def test_explicit_train_dtype_is_kept_on_any_device():
    for device in ("cpu", "cuda"):
        assert real_student.train_dtype("fp32", device) == "fp32"
        assert real_student.train_dtype("bf16", device) == "bf16"


def test_auto_train_dtype_on_cpu_follows_native_bf16():
    native = any(x in torch.backends.cpu.get_cpu_capability() for x in ("BF16", "AMX"))
    assert real_student.train_dtype("auto", "cpu") == ("bf16" if native else "fp32")


@pytest.mark.parametrize("option", ["--eval-batch", "--n", "--epochs", "--answer-tokens"])
def test_sizes_below_one_are_refused_naming_the_option(option, capsys):
    with pytest.raises(SystemExit) as err:
        real_student.main([option, "0"])
    assert err.value.code == 2
    assert f"{option} 0: must be at least 1" in capsys.readouterr().err


def test_reports_name_the_gpu_only_when_one_was_used():
    assert real_student._machine({"cpus": 2}) == "2 CPU cores"
    assert real_student._machine({"cpus": 2, "device": "cpu", "device_name": "cpu"}) == "2 CPU cores"
    assert (real_student._machine({"cpus": 16, "device": "cuda", "device_name": "NVIDIA H200"})
            == "one NVIDIA H200 GPU (16 CPU cores beside it)")
    # a run resumed here from steps cached on a GPU machine says so; unrecorded steps add nothing
    resumed = {"cpus": 2, "device": "cpu", "device_name": "2 CPU cores",
               "steps_ran_on": {"distillation": "NVIDIA H200", "greedy-0": "NVIDIA H200", "greedy-5": "not recorded"}}
    assert real_student._machine(resumed) == "NVIDIA H200 for the cached distillation and scoring, 2 CPU cores for the analysis"
    assert real_student._machine({**resumed, "steps_ran_on": {"distillation": "2 CPU cores"}}) == "2 CPU cores"


def test_ran_on_names_the_machine_of_a_step():
    assert real_student.ran_on("cpu") == {"device": "cpu", "device_name": f"{real_student.os.cpu_count()} CPU cores"}
