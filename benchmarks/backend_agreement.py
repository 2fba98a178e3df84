"""Do two lm-eval backends give the same TBD scores on the same model?

Runs the stock ``lm_eval`` CLI twice on the same TBD task, once with ``--model hf`` (the
reference) and once with another backend (``vllm`` on a GPU machine, or ``local-completions``
against a server), then compares question by question: how many leading generated tokens agree,
the per-token log-prob differences on them, and TBD on that common prefix and overall.

    # vLLM on a GPU machine, tensor- and data-parallel settings passed as lm-eval takes them:
    python benchmarks/backend_agreement.py --model-path /models/student \\
        --other vllm --other-args "pretrained=/models/student,dtype=float32,tensor_parallel_size=1" --limit 30
    # an OpenAI-compatible server already serving the same weights:
    python benchmarks/backend_agreement.py --model-path DIR --other local-completions \\
        --other-args "base_url=http://127.0.0.1:8000/v1/completions,model=m,tokenizer_backend=huggingface,tokenizer=DIR,tokenized_requests=False" \\
        --metadata '{"tbd_server_args": {"repeat_penalty": 1.0}}'

Writes ``<out>/agreement.json`` (atomically) and prints a table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lm_eval_tbd.atomic import write_json_atomic  # noqa: E402
from lm_eval_tbd.record import GenerationRecord, shared_prefix_length  # noqa: E402
from lm_eval_tbd.results import load_run  # noqa: E402
from lm_eval_tbd.runner import lm_eval_command, run_lm_eval  # noqa: E402
from lm_eval_tbd.scores import tbd_score  # noqa: E402


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
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "work_agreement"))
    args = parser.parse_args(argv)

    out = Path(args.out)
    metadata = {"tbd_max_tokens": args.max_tokens, **json.loads(args.metadata)}
    hf_args = ",".join(x for x in (f"pretrained={args.model_path}", "dtype=float32", args.hf_args) if x)
    runs = {}
    # Separate folders even when the other backend is hf too (e.g. hf with other model_args).
    for name, model, model_args, device in (("reference", "hf", hf_args, args.device),
                                             ("other", args.other, args.other_args, None)):
        run_lm_eval(lm_eval_command(model, [args.task], out / name, model_args=model_args, device=device,
                                    batch_size="1", limit=args.limit, metadata=metadata))
        runs[name] = {q.question_id: q for q in load_run(out / name, args.task).questions}

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
    write_json_atomic(out / "agreement.json", {"reference": "hf", "other": args.other, "task": args.task,
                                               "summary": summary, "questions": rows})
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
