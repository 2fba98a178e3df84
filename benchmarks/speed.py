"""Speed and memory of the TBD task against plain greedy generation, through the stock ``lm_eval`` CLI.

What it measures
----------------
On one model and one set of questions:

* **TBD vs plain generation, same token budget M (default 300).** The TBD task (requests of type
  ``generate_logprobs``: greedy generation that keeps each generated token's log-probability) is
  compared with a stock ``output_type: generate_until`` task that decodes greedily for the same
  ``max_gen_toks`` M. Target: TBD within 5% of plain generation in time and in peak memory, since
  the probabilities of the generated tokens are computed while generating anyway.
* **The saving from stopping at the scored length.** TBD at M (300) against TBD at the paper's
  1000 generated tokens.

How
---
* Fully offline. A 4-layer GPT-2 (tokenizer trained on the questions' text) is built locally with
  ``lm_eval_tbd.tiny_model``. It is randomly initialised with a small ``initializer_range`` so it
  does not emit end-of-sequence early: both tasks really generate M tokens. This is checked on
  every run: each TBD record must hold exactly M tokens with ``finish_reason == "length"``, and each
  plain generation must decode to the same text as the TBD generation of the same question at the
  same M (same model, same greedy decoding, same batching), so it too generated M tokens.
  Otherwise the script aborts.
* Every measured run is the real CLI in a fresh process::

      python -m lm_eval --model hf --model_args pretrained=DIR,dtype=float32 --device cpu
          --batch_size 8 --tasks TASK --include_path TASKDIR --apply_chat_template
          --log_samples --output_path RUNDIR

  The process is started as ``python -c SHIM <the same arguments>``, where ``SHIM`` runs the
  ``lm_eval`` package's ``__main__`` (exactly what ``python -m lm_eval`` runs) after adding two
  timers and nothing else: around ``lm_eval.evaluator.evaluate`` (request building, model calls,
  metrics) and around the evaluator's call of the model's request method (``generate_until`` or
  ``generate_logprobs``: generation only).
* Wall time: from process start to exit (includes imports, model load, writing results).
  Peak memory: the child's maximum RSS, from ``os.wait4`` on that one child (``ru_maxrss``).
  Generation time: wall and process CPU time of the model request call, from the shim (CPU time
  is the steadier figure when other work shares the machine). Each process runs torch on
  ``--threads`` CPU threads (default 1: thread oversubscription on a busy machine makes multi-threaded
  timings erratic). Also recorded: lm-eval's own
  ``total_evaluation_time_seconds`` from the results JSON (it starts before model loading, so it
  is not generation-only), and the RSS growth during the request call when the process's peak
  falls in it.
* One unmeasured warm-up run (plain task) fills the dataset and file caches; then the
  configurations run interleaved, ``for round in runs: for config in configs``, to spread drift
  over all of them. Reported: medians per configuration, ratios of medians, and the median of the
  per-round paired ratios.

Output: ``OUT/speed.json`` (every raw measurement, medians, ratios, settings, machine) and
``OUT/speed.md`` (tables), plus a rich table on the terminal.

    python benchmarks/speed.py                 # 32 questions, 5 rounds, M = 300 and 1000
    python benchmarks/speed.py --quick         # 8 questions, 2 rounds, M = 64 and 200 (~2 min)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib import metadata as importlib_metadata
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "math500.jsonl"
DEFAULT_OUT = REPO / "benchmarks" / "results"
TARGET_RATIO = 1.05  # TBD within 5% of plain generation

#: The model: 4-layer GPT-2, small init so that greedy decoding does not hit EOS.
MODEL_KWARGS = dict(n_layer=4, n_embd=256, n_head=4, n_positions=2048, initializer_range=0.02, seed=0)
VOCAB_SIZE = 512

#: Runs in the child process: the lm_eval CLI entry point with two timers (see the module docstring).
SHIM = r'''
import json, os, resource, runpy, sys, time
import lm_eval.evaluator as ev
from lm_eval.api.model import LM
_out = os.environ["TBD_SPEED_TIMINGS"]
_t = {"requests": [], "evaluate_s": None}
_REQ = {"generate_until", "generate_logprobs", "loglikelihood", "loglikelihood_rolling"}
def _rss_mib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
def _maxrss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
def _getattr(obj, name, *default):
    attr = getattr(obj, name, *default)
    if name in _REQ and isinstance(obj, LM) and callable(attr):
        def timed(*a, **k):
            rec = {"type": name, "n": len(a[0]) if a else None,
                   "rss_before_mib": _rss_mib(), "maxrss_before_mib": _maxrss_mib()}
            t0, c0 = time.perf_counter(), time.process_time()
            res = attr(*a, **k)
            rec["seconds"] = time.perf_counter() - t0
            rec["cpu_seconds"] = time.process_time() - c0
            rec["maxrss_after_mib"] = _maxrss_mib()
            _t["requests"].append(rec)
            return res
        return timed
    return attr
ev.getattr = _getattr  # the evaluator calls getattr(lm, reqtype)(requests)
_evaluate = ev.evaluate
def _timed_evaluate(*a, **k):
    t0 = time.perf_counter()
    try:
        return _evaluate(*a, **k)
    finally:
        _t["evaluate_s"] = time.perf_counter() - t0
ev.evaluate = _timed_evaluate  # simple_evaluate calls evaluate() through the module's globals
sys.argv = ["lm_eval", *sys.argv[1:]]
try:
    runpy.run_module("lm_eval", run_name="__main__", alter_sys=True)
finally:
    with open(_out, "w") as f:
        json.dump(_t, f)
'''


class BenchmarkError(RuntimeError):
    """A run failed or a check did not hold; the message says which and why."""


@dataclass(frozen=True)
class Config:
    """One measured configuration: a task at a token budget."""

    name: str  # e.g. "plain@300"
    kind: str  # "plain" or "tbd"
    max_tokens: int
    task: str  # lm-eval task name


# --------------------------------------------------------------------------- setup


def load_questions(path: Path, n: int) -> list[dict]:
    """The first ``n`` questions of a JSONL file (field ``question``), validated by the plugin's reader."""
    from lm_eval_tbd.data import read_questions_jsonl

    rows = read_questions_jsonl(path)
    if len(rows) < n:
        raise BenchmarkError(f"{path} holds {len(rows)} questions; {n} requested")
    return [{"id": r["id"], "question": r["question"]} for r in rows[:n]]


def build_model(questions: list[dict], directory: Path, needed_positions: int) -> dict:
    """Train the tokenizer on the questions, build and save the GPT-2; return its description.

    Aborts when the longest chat-templated prompt plus ``needed_positions`` generated tokens does
    not fit in the model's positions."""
    from lm_eval_tbd.tiny_model import build_model as build, save_tiny_model, train_tokenizer

    tok = train_tokenizer([q["question"] for q in questions], vocab_size=VOCAB_SIZE)
    model = build(tok, **MODEL_KWARGS)
    save_tiny_model(model, tok, directory)
    prompt_lens = [
        len(tok(tok.apply_chat_template([{"role": "user", "content": q["question"]}], tokenize=False,
                                        add_generation_prompt=True), add_special_tokens=False)["input_ids"])
        for q in questions
    ]
    if max(prompt_lens) + needed_positions > MODEL_KWARGS["n_positions"]:
        raise BenchmarkError(f"longest prompt ({max(prompt_lens)} tokens) + {needed_positions} generated tokens "
                             f"exceeds the model's {MODEL_KWARGS['n_positions']} positions")
    return {
        **MODEL_KWARGS,
        "vocab_size": len(tok),
        "n_parameters": sum(p.numel() for p in model.parameters()),
        "prompt_tokens_min": min(prompt_lens),
        "prompt_tokens_max": max(prompt_lens),
        "prompt_tokens_mean": statistics.fmean(prompt_lens),
    }


def write_plain_task(name: str, data_file: Path, task_dir: Path, max_tokens: int) -> Path:
    """A stock ``generate_until`` task over ``data_file``: greedy, no stop strings (HFLM still adds
    EOS), ``max_gen_toks`` tokens, and a trivial metric."""
    from lm_eval_tbd.atomic import write_text_atomic

    text = "\n".join([
        f"task: {name}",
        "dataset_path: json",
        "dataset_kwargs:",
        "  data_files:",
        f"    test: {json.dumps(str(data_file.resolve()))}",
        "test_split: test",
        "output_type: generate_until",
        'doc_to_text: "{{question}}"',
        'doc_to_target: ""',
        "num_fewshot: 0",
        "generation_kwargs:",
        "  until: []",
        "  do_sample: false",
        f"  max_gen_toks: {int(max_tokens)}",
        "metric_list:",
        "  - metric: exact_match",
        "    aggregation: mean",
        "    higher_is_better: true",
        "metadata:",
        "  version: 1.0",
    ]) + "\n"
    return write_text_atomic(task_dir / f"{name}.yaml", text)


def make_configs(m: int, m_long: int, data_file: Path, task_dir: Path) -> list[Config]:
    """Write the task YAMLs and return the configurations: plain@M, tbd@M, tbd@M_long."""
    from lm_eval_tbd.custom_tasks import write_jsonl_task

    configs = [
        Config(f"plain@{m}", "plain", m, f"speed_plain_{m}"),
        Config(f"tbd@{m}", "tbd", m, f"speed_tbd_{m}"),
        Config(f"tbd@{m_long}", "tbd", m_long, f"speed_tbd_{m_long}"),
    ]
    for c in configs:
        if c.kind == "plain":
            write_plain_task(c.task, data_file, task_dir, c.max_tokens)
        else:
            write_jsonl_task(c.task, data_file, task_dir, tbd_max_tokens=c.max_tokens)
    return configs


# --------------------------------------------------------------------------- one run


def child_env(work: Path, threads: int | None) -> dict:
    """Environment of every child: offline, quiet, caches inside the work directory, and (unless
    ``threads`` is None) a fixed number of CPU threads for torch."""
    env = dict(os.environ)
    if threads is not None:
        env.update({"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)})
    env.update({
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_DATASETS_CACHE": str(work / "hf_datasets_cache"),
        "TOKENIZERS_PARALLELISM": "false",
        "PYTHONUNBUFFERED": "1",
    })
    return env


def lm_eval_args(config: Config, model_dir: Path, task_dir: Path, run_dir: Path, batch_size: int) -> list[str]:
    """The CLI arguments, as for ``python -m lm_eval``."""
    return [
        "--model", "hf",
        "--model_args", f"pretrained={model_dir},dtype=float32",
        "--device", "cpu",
        "--batch_size", str(batch_size),
        "--tasks", config.task,
        "--include_path", str(task_dir),
        "--apply_chat_template",
        "--log_samples",
        "--output_path", str(run_dir),
    ]


def run_once(config: Config, args: list[str], run_dir: Path, env: dict) -> dict:
    """Run the CLI once in a fresh process; return wall time, the child's peak RSS and the shim's timers.

    ``os.wait4`` returns the resource usage of this one child (and of any process it waited for),
    so the peak RSS is that of this run alone."""
    run_dir.mkdir(parents=True, exist_ok=True)
    timings_file = run_dir / "timings.json"
    env = {**env, "TBD_SPEED_TIMINGS": str(timings_file)}
    cmd = [sys.executable, "-c", SHIM, *args]
    with open(run_dir / "stdout.txt", "wb") as out, open(run_dir / "stderr.txt", "wb") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, cwd=run_dir)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        tail = (run_dir / "stderr.txt").read_text(errors="replace").splitlines()[-30:]
        raise BenchmarkError(f"{config.name}: lm_eval exited with status {proc.returncode}; last stderr lines:\n"
                             + "\n".join(tail) + f"\n(full logs in {run_dir})")
    if not timings_file.is_file():
        raise BenchmarkError(f"{config.name}: the timing shim wrote no timings ({run_dir})")
    timings = json.loads(timings_file.read_text())
    requests = [r for r in timings["requests"] if r["n"]]
    if len(requests) != 1 or timings["evaluate_s"] is None:
        raise BenchmarkError(f"{config.name}: expected one model request call and one evaluate() call, got "
                             f"{timings} ({run_dir})")
    req = requests[0]
    expected_type = "generate_until" if config.kind == "plain" else "generate_logprobs"
    if req["type"] != expected_type:
        raise BenchmarkError(f"{config.name}: the model answered {req['type']!r} requests, expected {expected_type!r}")
    results_file = _one(run_dir.rglob("results_*.json"), f"{config.name}: results JSON", run_dir)
    results = json.loads(results_file.read_text())
    lm_total = results.get("total_evaluation_time_seconds")
    # The request call's own peak is known only when the process's peak falls inside it.
    peak_in_requests = req["maxrss_after_mib"] > req["maxrss_before_mib"]
    return {
        "wall_s": wall,
        "peak_rss_mib": usage.ru_maxrss / 1024,  # Linux: KiB
        "generation_s": req["seconds"],
        "generation_cpu_s": req["cpu_seconds"],
        "evaluate_s": timings["evaluate_s"],
        "lm_eval_total_evaluation_time_s": float(lm_total) if lm_total is not None else None,
        "user_cpu_s": usage.ru_utime,
        "sys_cpu_s": usage.ru_stime,
        "requests_rss_growth_mib": req["maxrss_after_mib"] - req["rss_before_mib"] if peak_in_requests else None,
        "n_requests": req["n"],
        "results": results.get("results", {}).get(config.task),
    }


def _one(paths, what: str, where: Path) -> Path:
    found = sorted(paths)
    if len(found) != 1:
        raise BenchmarkError(f"{what}: expected one file, found {len(found)} in {where}")
    return found[0]


def read_generations(config: Config, run_dir: Path, n_questions: int) -> dict[int, dict]:
    """Per doc id: the generated text, and for TBD the token count and finish reason, from the samples."""
    from lm_eval_tbd.record import GenerationRecord

    samples = _one(run_dir.rglob(f"samples_{config.task}_*.jsonl"), f"{config.name}: samples file", run_dir)
    out = {}
    for line in samples.read_text().splitlines():
        if not line.strip():
            continue
        s = json.loads(line)
        resp = s["resps"][0][0]
        if config.kind == "tbd":
            rec = GenerationRecord.from_json(resp)
            out[s["doc_id"]] = {"text": rec.text, "n_tokens": rec.n_tokens, "finish_reason": rec.finish_reason}
        else:
            out[s["doc_id"]] = {"text": resp}
    if len(out) != n_questions:
        raise BenchmarkError(f"{config.name}: {len(out)} samples for {n_questions} questions ({samples})")
    return out


def check_tbd_lengths(config: Config, gens: dict[int, dict]) -> None:
    """Every TBD record must hold exactly M tokens, ended by the length limit (no early EOS)."""
    bad = {d: (g["n_tokens"], g["finish_reason"]) for d, g in gens.items()
           if g["n_tokens"] != config.max_tokens or g["finish_reason"] != "length"}
    if bad:
        raise BenchmarkError(
            f"{config.name}: {len(bad)} of {len(gens)} questions did not generate exactly {config.max_tokens} tokens "
            f"(doc id: (n_tokens, finish_reason)) {dict(list(bad.items())[:5])}. The comparison needs a model that "
            "does not stop early; change MODEL_KWARGS (e.g. the seed or initializer_range).")


def check_plain_matches(plain: Config, gens: dict[int, dict], tbd_gens: dict[int, dict]) -> None:
    """The plain task's generations must equal the TBD ones at the same M (which hold exactly M
    tokens), so the plain task generated M tokens too."""
    diff = [d for d in gens if gens[d]["text"] != tbd_gens[d]["text"]]
    if diff:
        d = diff[0]
        raise BenchmarkError(
            f"{plain.name}: {len(diff)} of {len(gens)} generations differ from the TBD task's at the same budget, so "
            f"the plain task may not have generated {plain.max_tokens} tokens (e.g. a stop sequence fired). "
            f"First, doc {d}: plain {gens[d]['text'][-80:]!r} vs TBD {tbd_gens[d]['text'][-80:]!r}")


# --------------------------------------------------------------------------- summary


def _median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def _ratio(a, b):
    return a / b if a is not None and b else None


METRICS = ("wall_s", "generation_s", "generation_cpu_s", "evaluate_s", "peak_rss_mib", "requests_rss_growth_mib",
           "lm_eval_total_evaluation_time_s", "user_cpu_s")


def summarise(configs: list[Config], runs: list[dict]) -> dict:
    """Medians per configuration; TBD/plain ratios at M and tbd@M / tbd@M_long savings, both as
    ratios of medians and as medians of per-round paired ratios."""
    plain, tbd, tbd_long = configs
    medians = {c.name: {m: _median([r[m] for r in runs if r["config"] == c.name]) for m in METRICS} for c in configs}

    def paired(a: Config, b: Config, metric: str):
        by_round = {}
        for r in runs:
            by_round.setdefault(r["round"], {})[r["config"]] = r[metric]
        return _median([_ratio(v.get(a.name), v.get(b.name)) for v in by_round.values()])

    def compare(a: Config, b: Config) -> dict:
        return {m: {"ratio_of_medians": _ratio(medians[a.name][m], medians[b.name][m]),
                    "median_paired_ratio": paired(a, b, m)}
                for m in ("wall_s", "generation_s", "generation_cpu_s", "evaluate_s", "peak_rss_mib")}

    tbd_vs_plain = compare(tbd, plain)
    saving = compare(tbd, tbd_long)
    for v in saving.values():
        v["saving"] = 1 - v["ratio_of_medians"] if v["ratio_of_medians"] is not None else None
    verdict = {m: (tbd_vs_plain[m]["ratio_of_medians"] <= TARGET_RATIO
                   if tbd_vs_plain[m]["ratio_of_medians"] is not None else None)
               for m in ("wall_s", "generation_s", "generation_cpu_s", "peak_rss_mib")}
    return {"medians": medians, "tbd_vs_plain": {"numerator": tbd.name, "denominator": plain.name, **tbd_vs_plain},
            "scored_length_saving": {"numerator": tbd.name, "denominator": tbd_long.name, **saving},
            "within_target": {"target_ratio": TARGET_RATIO, **verdict}}


def _f(x, fmt="{:.2f}"):
    return "n/a" if x is None else fmt.format(x)


def table_rows(configs: list[Config], summary: dict) -> list[list[str]]:
    """Rows of the main table: config, medians, and ratios against plain@M."""
    plain = configs[0].name
    med = summary["medians"]
    rows = []
    for c in configs:
        m = med[c.name]
        rows.append([
            c.name, _f(m["wall_s"]), _f(m["generation_s"]), _f(m["generation_cpu_s"]), _f(m["peak_rss_mib"], "{:.0f}"),
            *(_f(_ratio(m[k], med[plain][k]), "{:.3f}")
              for k in ("wall_s", "generation_s", "generation_cpu_s", "peak_rss_mib")),
        ])
    return rows


HEADERS = ["config", "wall s", "gen s", "gen CPU s", "peak RSS MiB", "wall ×", "gen ×", "gen CPU ×", "RSS ×"]


def saving_rows(summary: dict) -> list[list[str]]:
    """Rows of the saving table: tbd@M against tbd@M_long."""
    s = summary["scored_length_saving"]
    names = {"wall_s": "wall time", "generation_s": "generation time", "generation_cpu_s": "generation CPU time",
             "evaluate_s": "evaluate() time", "peak_rss_mib": "peak RSS"}
    return [[names[m], _f(s[m]["ratio_of_medians"], "{:.3f}"), _f(s[m]["median_paired_ratio"], "{:.3f}"),
             _f(None if s[m]["saving"] is None else 100 * s[m]["saving"], "{:.1f}%")] for m in names]


def write_markdown(path: Path, configs: list[Config], summary: dict, settings: dict) -> None:
    """``speed.md``: settings, the main table, the verdict and the scored-length saving."""
    from lm_eval_tbd.atomic import write_text_atomic

    plain, tbd, tbd_long = configs
    vs = summary["tbd_vs_plain"]
    ok = summary["within_target"]

    def md(headers, rows):
        return "\n".join(["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers),
                          *("| " + " | ".join(r) + " |" for r in rows)])

    lines = [
        "# TBD speed and memory vs plain greedy generation",
        "",
        f"Model: GPT-2, {settings['model']['n_layer']} layers, d={settings['model']['n_embd']}, "
        f"{settings['model']['n_parameters']:,} parameters, float32, CPU. {settings['questions']} questions "
        f"from `{settings['data']}`, batch size {settings['batch_size']}, {settings['runs']} interleaved rounds "
        f"(+1 warm-up), every question generated exactly M tokens in every run (checked). "
        f"Machine: {settings['machine']['cpu_count']} CPUs, torch {settings['machine']['torch']}, "
        f"transformers {settings['machine']['transformers']}, lm_eval {settings['machine']['lm_eval']}.",
        "",
        "Medians. *wall*: the whole `lm_eval` process (imports, model load, evaluation, writing results); "
        "*gen*: wall time of the model's request call (`generate_until` / `generate_logprobs`); *gen CPU*: "
        "the process's CPU time during that call (less sensitive to other load on the machine); *peak RSS*: "
        f"the process's maximum resident set. *×*: ratio of medians to {plain.name}. "
        f"torch threads per process: {settings['threads']}.",
        "",
        md(HEADERS, table_rows(configs, summary)),
        "",
        f"**{tbd.name} vs {plain.name}** (target ≤ {TARGET_RATIO:.2f}): "
        f"wall {_f(vs['wall_s']['ratio_of_medians'], '{:.3f}')} "
        f"(paired {_f(vs['wall_s']['median_paired_ratio'], '{:.3f}')}, {'met' if ok['wall_s'] else 'NOT met'}), "
        f"generation {_f(vs['generation_s']['ratio_of_medians'], '{:.3f}')} "
        f"(paired {_f(vs['generation_s']['median_paired_ratio'], '{:.3f}')}, "
        f"{'met' if ok['generation_s'] else 'NOT met'}), "
        f"generation CPU {_f(vs['generation_cpu_s']['ratio_of_medians'], '{:.3f}')} "
        f"(paired {_f(vs['generation_cpu_s']['median_paired_ratio'], '{:.3f}')}, "
        f"{'met' if ok['generation_cpu_s'] else 'NOT met'}), "
        f"peak RSS {_f(vs['peak_rss_mib']['ratio_of_medians'], '{:.3f}')} "
        f"({'met' if ok['peak_rss_mib'] else 'NOT met'}).",
        "",
        f"## Stopping at the scored length: {tbd.name} vs {tbd_long.name}",
        "",
        md(["", f"{tbd.name} / {tbd_long.name}", "median paired ratio", "saving"], saving_rows(summary)),
        "",
        "Raw measurements: `speed.json`.",
        "",
    ]
    write_text_atomic(path, "\n".join(lines))


def print_tables(configs: list[Config], summary: dict) -> None:
    """The rich tables on the terminal."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if console.width < 110:
        console = Console(width=110)
    t = Table(title="TBD vs plain greedy generation (medians)", caption=f"×: ratio of medians to {configs[0].name}")
    for h in HEADERS:
        t.add_column(h, justify="left" if h == "config" else "right", no_wrap=True)
    for row in table_rows(configs, summary):
        t.add_row(*row)
    console.print(t)
    s = Table(title=f"Stopping at the scored length: {configs[1].name} vs {configs[2].name}")
    for h in ["", "ratio of medians", "median paired ratio", "saving"]:
        s.add_column(h, justify="left" if not h else "right")
    for row in saving_rows(summary):
        s.add_row(*row)
    console.print(s)
    ok = summary["within_target"]
    console.print(f"TBD within {100 * (TARGET_RATIO - 1):.0f}% of plain generation: "
                  + ", ".join(f"{k} {'yes' if v else 'NO'}" for k, v in ok.items() if k != "target_ratio"))


def machine_info() -> dict:
    """CPU count and the versions that matter."""
    def version(pkg):
        try:
            return importlib_metadata.version(pkg)
        except importlib_metadata.PackageNotFoundError:
            return None

    return {
        "cpu_count": os.cpu_count(),
        "cpus_available": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "platform": platform.platform(),
        "processor": platform.machine(),
        "python": platform.python_version(),
        **{p: version(p) for p in ("torch", "transformers", "lm_eval", "datasets", "lm_eval_tbd")},
    }


# --------------------------------------------------------------------------- main


def shown_path(path: Path) -> str:
    """``path`` as recorded in results: relative to the repository when it lies beside or inside
    it (e.g. ``../shared/data/math500.jsonl``), else its file name alone."""
    path = Path(path).resolve()
    try:
        return os.path.relpath(path, REPO) if path.is_relative_to(REPO.parent) else path.name
    except ValueError:
        return path.name


def run_benchmark(*, data: Path, n_questions: int, runs: int, m: int, m_long: int, batch_size: int, out: Path,
                  threads: int | None = 1, keep_workdir: bool = False) -> dict:
    """Build everything in a temporary work directory, run warm-up + interleaved rounds, check the
    token counts, write ``speed.json`` and ``speed.md`` under ``out``; return the JSON object."""
    from lm_eval_tbd.atomic import write_json_atomic, write_text_atomic

    if runs < 1 or n_questions < 1 or not 0 < m < m_long:
        raise BenchmarkError("need runs >= 1, questions >= 1 and 0 < M < M_long")
    work = Path(tempfile.mkdtemp(prefix="tbd_speed_"))
    ok = False
    try:
        questions = load_questions(data, n_questions)
        data_file = work / "questions.jsonl"
        write_text_atomic(data_file, "".join(json.dumps(q) + "\n" for q in questions))
        model_dir, task_dir = work / "model", work / "tasks"
        model = build_model(questions, model_dir, m_long)
        configs = make_configs(m, m_long, data_file, task_dir)
        env = child_env(work, threads)
        plain, tbd, _ = configs

        def args_for(c: Config, d: Path) -> list[str]:
            return lm_eval_args(c, model_dir, task_dir, d, batch_size)

        print(f"work dir {work}; model {model['n_parameters']:,} parameters; {n_questions} questions; "
              f"configs {[c.name for c in configs]}; {runs} rounds + 1 warm-up", flush=True)
        t = time.perf_counter()
        warm_dir = work / "runs" / "warmup"
        warm = run_once(plain, args_for(plain, warm_dir), warm_dir, env)
        print(f"  warm-up {plain.name}: {warm['wall_s']:.1f} s", flush=True)

        measurements, reference = [], {}  # reference: TBD generations per M, from the first TBD run
        for r in range(runs):
            round_gens = {}
            for c in configs:
                run_dir = work / "runs" / f"r{r}_{c.name.replace('@', '_')}"
                res = run_once(c, args_for(c, run_dir), run_dir, env)
                gens = read_generations(c, run_dir, n_questions)
                if c.kind == "tbd":
                    check_tbd_lengths(c, gens)
                    reference.setdefault(c.max_tokens, gens)
                round_gens[c.name] = gens
                res.pop("results", None)
                measurements.append({"round": r, "config": c.name, **res})
                print(f"  round {r + 1}/{runs} {c.name:>10}: wall {res['wall_s']:.2f} s, generation "
                      f"{res['generation_s']:.2f} s ({res['generation_cpu_s']:.2f} s CPU), "
                      f"peak RSS {res['peak_rss_mib']:.0f} MiB", flush=True)
            check_plain_matches(plain, round_gens[plain.name], reference[plain.max_tokens])
        warm_gens = read_generations(plain, warm_dir, n_questions)
        check_plain_matches(plain, warm_gens, reference[plain.max_tokens])

        summary = summarise(configs, measurements)
        settings = {
            "data": shown_path(data), "questions": n_questions, "runs": runs, "warmup_runs": 1, "batch_size": batch_size,
            "threads": threads if threads is not None else "torch default",
            "max_tokens": m, "max_tokens_long": m_long, "model": model, "dtype": "float32", "device": "cpu",
            # The work dir is temporary: shown as WORK, so no machine's path is recorded.
            "command": ["python", "-m", "lm_eval",
                        *(a.replace(str(work), "WORK") for a in args_for(plain, Path("RUNDIR")))],
            "command_note": "each run is `python -c SHIM ARGS`: SHIM runs lm_eval.__main__ (what `python -m lm_eval` "
                            "runs) with timers around evaluator.evaluate and the model's request call",
            "configs": [c.__dict__ for c in configs],
            "tokens_checked": "every TBD record has n_tokens == M and finish_reason 'length'; every plain "
                              "generation equals the TBD generation at the same M",
            "machine": machine_info(),
            "benchmark_seconds": time.perf_counter() - t,
        }
        result = {"settings": settings, "summary": summary, "warmup": {"config": plain.name, **warm},
                  "measurements": measurements}
        result["warmup"].pop("results", None)
        out.mkdir(parents=True, exist_ok=True)
        write_json_atomic(out / "speed.json", result)
        write_markdown(out / "speed.md", configs, summary, settings)
        print_tables(configs, summary)
        print(f"wrote {out / 'speed.json'} and {out / 'speed.md'}")
        ok = True
        return result
    finally:
        if ok and not keep_workdir:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"work dir kept: {work}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python benchmarks/speed.py [--quick] [--runs N] [--questions N] [--out DIR] [--data FILE]``."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="smoke-test settings: 8 questions, 2 rounds, M = 64 and 200 (explicit flags still win)")
    p.add_argument("--runs", type=int, help="interleaved measured rounds (default 5; quick 2)")
    p.add_argument("--questions", type=int, help="questions from the data file (default 32; quick 8)")
    p.add_argument("--max-tokens", type=int, help="M, the scored length (default 300; quick 64)")
    p.add_argument("--max-tokens-long", type=int, help="the paper's generation length (default 1000; quick 200)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help=f"JSONL with a 'question' field (default {DEFAULT_DATA})")
    p.add_argument("--threads", type=int, default=1,
                   help="CPU threads per lm_eval process (OMP_NUM_THREADS; default 1, steadier on a shared "
                        "machine; 0 = torch's default)")
    p.add_argument("--keep-workdir", action="store_true", help="keep the model, tasks and lm_eval outputs")
    a = p.parse_args(argv)
    defaults = dict(runs=2, questions=8, max_tokens=64, max_tokens_long=200) if a.quick else \
        dict(runs=5, questions=32, max_tokens=300, max_tokens_long=1000)
    for k, v in defaults.items():
        if getattr(a, k) is None:
            setattr(a, k, v)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    try:
        run_benchmark(data=a.data, n_questions=a.questions, runs=a.runs, m=a.max_tokens, m_long=a.max_tokens_long,
                      batch_size=a.batch_size, out=a.out, threads=a.threads or None, keep_workdir=a.keep_workdir)
    except BenchmarkError as err:
        print(f"speed benchmark failed: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
