"""The backend-agreement benchmark's parts: one ``lm_eval`` run through the timing shim, the
question-by-question comparison of two backends' records, the timing summary, and the table.
``python -m benchmarks.backend_agreement`` parses its options and calls them."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks._speed_runs import SHIM  # the lm_eval entry point with a timer on the request call
from lm_eval_tbd.core.record import GenerationRecord, shared_prefix_length
from lm_eval_tbd.core.scores import tbd_score


def timed_run(cmd: list[str], out: Path) -> dict:
    """Run an ``lm_eval`` command line through the timing shim; return its wall and generation
    seconds. A failed run raises RuntimeError with the end of its stderr."""
    assert cmd[1:3] == ["-m", "lm_eval"], cmd
    out.mkdir(parents=True, exist_ok=True)
    timings = out / "timings.json"
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, str(SHIM), *cmd[3:]], capture_output=True, text=True,
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


#: Record fields that need the model's weights, compared where both records hold them: per
#: generated token (on the common prefix), and per question token.
GENERATED_FIELDS = ("vocab_logp_mean", "vocab_logp_std", "ref_logprobs")
QUESTION_FIELDS = ("question_logprobs", "question_logp_mean", "question_logp_std", "ref_question_logprobs")


def _weight_gaps(reference: GenerationRecord, other: GenerationRecord, n: int) -> dict:
    out = {}
    for name in GENERATED_FIELDS + QUESTION_FIELDS:
        a, b = getattr(reference, name), getattr(other, name)
        if a is None or b is None:
            continue
        if name in QUESTION_FIELDS and len(a) != len(b):
            raise ValueError(f"{name}: {len(a)} question tokens in one record, {len(b)} in the other")
        pairs = list(zip(a[:n], b[:n]) if name in GENERATED_FIELDS else zip(a, b))
        out[f"max_abs_d_{name}"] = max((abs(x - y) for x, y in pairs), default=0.0)
    return out


def compare(reference: GenerationRecord, other: GenerationRecord, tokenizer=None, max_tokens: int = 300) -> dict:
    """Agreement of one question's two records: common prefix length, log-prob gaps on it, TBD,
    and the largest gap of each weight-derived field both hold (``max_abs_d_<field>``)."""
    n = shared_prefix_length(reference, other, decode=tokenizer and (lambda i: tokenizer.decode([i])))
    gaps = [abs(x - y) for x, y in zip(reference.logprobs[:n], other.logprobs[:n])]
    return {**_weight_gaps(reference, other, n),
        "common_prefix": n, "n_reference": reference.n_tokens, "n_other": other.n_tokens,
        "max_abs_dlogp": max(gaps, default=0.0), "mean_abs_dlogp": statistics.fmean(gaps) if gaps else 0.0,
        "tbd_reference": tbd_score(reference.logprobs, max_tokens=max_tokens),
        "tbd_other": tbd_score(other.logprobs, max_tokens=max_tokens),
        "dtbd_common_prefix": abs(tbd_score(reference.logprobs[:n]) - tbd_score(other.logprobs[:n])),
    }


def run_rounds(args, out: Path, metadata: dict, hf_args: str) -> tuple[dict, dict]:
    """Both backends' runs, ``args.rounds`` times interleaved: the first round's questions of each
    (by id) and every run's times. A later round that generates other tokens is an error."""
    from lm_eval_tbd.core.samples import load_run
    from lm_eval_tbd.harness.runner import lm_eval_command

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
    return runs, times


def agreement(rows: dict) -> dict:
    """The summary of the per-question comparisons."""
    full = sum(r["common_prefix"] == min(r["n_reference"], r["n_other"]) for r in rows.values())
    return {
        "questions": len(rows), "identical_generations": full,
        "max_abs_dlogp": max(r["max_abs_dlogp"] for r in rows.values()),
        "mean_abs_dlogp": statistics.fmean(r["mean_abs_dlogp"] for r in rows.values()),
        "max_dtbd_common_prefix": max(r["dtbd_common_prefix"] for r in rows.values()),
        "mean_tbd_reference": statistics.fmean(r["tbd_reference"] for r in rows.values()),
        "mean_tbd_other": statistics.fmean(r["tbd_other"] for r in rows.values()),
        **{key: max(r[key] for r in rows.values() if key in r)
           for key in sorted({k for r in rows.values() for k in r if k.startswith("max_abs_d_")})},
    }


def print_agreement(args, rows: dict, summary: dict, timing: dict) -> None:
    """The per-question table, the summary and the time ratios, on the terminal."""
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
