"""The speed benchmark's runs: each configuration's ``lm_eval`` command in a fresh process started
through the timing shim (``benchmarks/_speed_shim.py``), the warm-up and the interleaved rounds
with every equal-work check, and the results written. ``python -m benchmarks.speed`` parses its
options and calls :func:`run_benchmark`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from benchmarks._speed_report import (
    check_equal_work,
    check_generations,
    machine_info,
    markdown,
    print_tables,
    read_generations,
    summarise,
    work_done,
)
from benchmarks._speed_setup import BenchmarkError, Config, load_questions, make_configs, prepare_model, shown_path
from lm_eval_tbd.backends import cpu_allocator
from lm_eval_tbd.backends.cpu_allocator import allocator_env

#: the lm_eval entry point with timers (run as a script: see its module text)
SHIM = Path(__file__).resolve().parent / "_speed_shim.py"


def child_env(work: Path, threads: int | None) -> dict:
    """Offline, quiet, caches in the work dir, and ``threads`` torch threads (None: torch's default).
    The hf backend's own allocator settings are off, so TBD and plain runs share glibc's defaults
    (``tbd_malloc`` sets them through the environment)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "HF_DATASETS_CACHE": str(work / "hf_datasets_cache"), "TOKENIZERS_PARALLELISM": "false",
           "PYTHONUNBUFFERED": "1", cpu_allocator.ENV: "0"}
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
