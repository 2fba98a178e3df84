"""benchmarks.hf_cpu_profile: per-token figures and ratios from per-step measurements, by hand."""

import json

import pytest

from benchmarks import hf_cpu_profile as prof


def test_per_token_time_is_step_time_over_the_batch_and_ratios_are_to_vllm():
    rows = [{"method": "ours", "batch": 16, "repeat": 0, "width": 177, "step_s": [0.16, 0.16, 0.32]},
            {"method": "vllm", "batch": 16, "repeat": 0, "width": 177, "step_s": [0.08]},
            {"method": "vllm", "batch": 16, "repeat": 1, "width": 177, "step_s": [0.08]},
            {"method": "ours-ops", "batch": 16, "steps": 16, "ops": [{"name": "aten::mm", "share": 0.7, "calls": 3}]}]
    s = prof.summarise(rows)
    assert s["ours"]["16"]["ms_per_token"]["median"] == pytest.approx(10.0)  # 160 ms / 16
    assert s["vllm"]["16"]["ms_per_token"]["median"] == pytest.approx(5.0)
    assert s["ours"]["16"]["ratio_to_vllm"] == pytest.approx(2.0)
    assert "ours-ops" not in s
    settings = {"commands": ["python -m benchmarks.hf_cpu_profile"], "model": "m", "steps": 4, "repeats": 1,
                "prompts": "aime", "width": 177, "cpus": 2, "platform": "p", "torch": "t", "transformers": "x",
                "vllm": "v", "batches": [16], "methods": ["ours", "vllm", "ours-ops"]}
    text = prof.markdown(s, settings, rows)
    assert "| ours | 10.0 [10.0–15.0] ×2.00 |" in text and "| `aten::mm` | 70.0% | 3 |" in text


def test_analysis_needs_every_methods_measurements(tmp_path):
    (tmp_path / "ours.json").write_text(json.dumps([]))
    with pytest.raises(SystemExit, match="no measurements of vllm"):
        prof.read_runs(tmp_path, ["ours", "vllm"])
