"""The real student's distillation into cached checkpoints: the base model fine-tuned on the
members (question -> reference solution truncated to ``answer_tokens`` tokens, in the model's own
chat template, loss on the response only) with the protocol's recipe. The training loop is the
demo's (``lm_eval_tbd.demo.distil``)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from benchmarks._cli import log
from benchmarks.protocol import Protocol
from benchmarks.student.device import ran_on


def distil(base_dir: Path, work: Path, members: list[dict], p: Protocol, seed: int,
           command: str | None = None, scored: dict[int, list[Path]] | None = None) -> dict[int, Path]:
    """Fine-tune the base model on the members; returns {epoch: checkpoint dir} (cached).
    ``distil.json`` records the losses, the time, the precision, the machine and ``command``.
    ``scored``: the pass folders scored on each epoch's checkpoint (default: ``greedy-E`` and
    ``sample-E`` in ``work``); a new distillation makes their cached results stale."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from lm_eval_tbd.demo.distil import chat_examples
    from lm_eval_tbd.demo.distil import distil as train

    ckpts = {e: work / f"epoch-{e}" for e in p.checkpoints}
    if all((d / "config.json").is_file() for d in ckpts.values()) and (work / "distil.json").is_file():
        log(f"distillation: checkpoints {sorted(ckpts)} already in {work.name}/")
        return ckpts
    # New checkpoints make the old record and the passes scored on the old ones stale.
    (work / "distil.json").unlink(missing_ok=True)
    if scored is None:
        scored = {e: [work / f"greedy-{e}", work / f"sample-{e}"] for e in ckpts}
    for e in ckpts:
        for folder in scored.get(e, []):
            if (folder / "done.json").is_file():
                log(f"distillation: {folder.name} was scored on an earlier epoch-{e}; it will be scored again")
                (folder / "done.json").unlink()
    tok = AutoTokenizer.from_pretrained(base_dir)
    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32).to(p.device)
    data = chat_examples(tok, members, p.answer_tokens)
    recipe = p.recipe(seed)
    log(f"distillation: {len(data)} members, {p.epochs} epochs x {recipe.steps_per_epoch(len(data))} steps (batch "
        f"{p.batch_size}), lr {p.lr}, {p.train_dtype} on {p.device}, warm-up {recipe.warmup_steps(len(data))} steps "
        f"then cosine; checkpoints after epochs {list(p.checkpoints)}")

    def save(loss, model) -> None:
        log(f"  epoch {loss.epoch}/{p.epochs}: response loss {loss.per_token:.4f} ({loss.seconds:.0f} s)")
        if loss.epoch in ckpts:
            tmp = ckpts[loss.epoch].with_name(ckpts[loss.epoch].name + ".tmp")
            model.save_pretrained(tmp)
            tok.save_pretrained(tmp)
            if ckpts[loss.epoch].exists():
                shutil.rmtree(ckpts[loss.epoch])
            tmp.rename(ckpts[loss.epoch])

    t_start = time.perf_counter()
    losses = train(model, data, recipe, pad_id=tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id,
                   device=p.device, bf16=p.train_dtype == "bf16", on_epoch=save)
    from lm_eval_tbd.core.atomic import write_json_atomic

    write_json_atomic(work / "distil.json", {"losses": [x.per_token for x in losses],
                                             "seconds": time.perf_counter() - t_start,
                                             "train_dtype": p.train_dtype, **ran_on(p.device),
                                             "checkpoints": sorted(ckpts), "command": command})
    return ckpts
