"""lm_eval_tbd.backends.vllm_cpu: the vllm-cpu metadata alias (vLLM's CPU build seen as vllm). The
real engine runs in tests/integration/test_vllm_cpu.py."""


def test_vllm_cpu_answers_for_vllm_metadata(monkeypatch):
    """lm-eval's vLLM module reads importlib.metadata.version("vllm") at import; with vLLM installed
    as vllm-cpu the alias answers, with a "+cpu" tag as vLLM's own platform check spells it."""
    import importlib.metadata as md
    import sys

    from lm_eval_tbd.backends import vllm_cpu

    monkeypatch.setattr(sys, "meta_path", [f for f in sys.meta_path if not isinstance(f, vllm_cpu._AliasFinder)])
    try:
        cpu_version = md.version("vllm-cpu")
    except md.PackageNotFoundError:
        assert vllm_cpu.register_metadata_alias() is False  # nothing to alias
        return
    try:
        md.version("vllm")
        real_vllm = True
    except md.PackageNotFoundError:
        real_vllm = False
    assert vllm_cpu.register_metadata_alias() is not real_vllm
    if not real_vllm:
        assert md.version("vllm") == cpu_version + "+cpu"
        assert vllm_cpu.register_metadata_alias()  # once only
        assert sum(isinstance(f, vllm_cpu._AliasFinder) for f in sys.meta_path) == 1
        # a listing of every distribution does not show vllm-cpu twice
        assert sum(d.metadata["Name"] == "vllm-cpu" for d in md.distributions()) == 1
