"""The real student's scoring passes: the stock lm_eval CLI on the TBD tasks, through hf or vLLM,
cached per pass folder; and the passes read back as one labelled run."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from benchmarks._cli import log
from benchmarks.protocol import Protocol
from benchmarks.student.cache import read_record
from benchmarks.student.device import ran_on
from benchmarks.student.split import TASKS

#: vLLM-CPU's context for the scoring passes: the longest s1K prompt plus M = 300 fits, and the
#: KV cache it reserves (VLLM_CPU_KVCACHE_SPACE) stays small.
VLLM_MAX_MODEL_LEN = 4096


def lm_eval_env(device: str) -> dict[str, str]:
    """The scoring subprocess's environment: offline; on CPU, with the glibc allocator settings of
    ``lm_eval_tbd.backends.cpu_allocator``."""
    from lm_eval_tbd.harness.runner import offline_env

    env = offline_env()
    if device != "cpu":
        return env
    from lm_eval_tbd.backends.cpu_allocator import allocator_env

    return allocator_env(env)


def vllm_env(env: dict[str, str]) -> dict[str, str]:
    """vLLM-CPU's settings for a scoring subprocess: a KV cache of 4 GiB, and every core for the
    compute threads. By default vLLM-CPU reserves one core for its front end and binds its OpenMP
    threads to the others, which on 2 cores leaves a single compute thread."""
    cores = os.cpu_count() or 1
    defaults = {"VLLM_CPU_KVCACHE_SPACE": "4", "VLLM_CPU_OMP_THREADS_BIND": f"0-{cores - 1}" if cores > 1 else "0",
                "VLLM_CPU_NUM_OF_RESERVED_CPU": "0"}
    return {**{k: v for k, v in defaults.items() if k not in env}, **env}


def model_spec(backend: str, model_dir: Path, p: Protocol) -> tuple[str, str, str]:
    """``(lm_eval --model, --model_args, --batch_size)`` of a scoring pass on ``backend``: float32
    either way; vLLM takes every request at once and batches them itself, in eager mode (its
    graph compilation costs more start-up time than it saves on one pass of these sizes:
    docs/benchmarks.md, Run time) and without chunked prefill, which seeded sampling on vLLM's
    CPU build cannot survive (``lm_eval_tbd.backends.vllm.check_seeded_sampling``)."""
    if backend == "hf":
        return "hf", f"pretrained={model_dir},dtype=float32", str(p.eval_batch)
    if backend == "vllm":
        return ("vllm", f"pretrained={model_dir},dtype=float32,max_model_len={VLLM_MAX_MODEL_LEN},enforce_eager=True,"
                "enable_chunked_prefill=False", "auto")
    raise SystemExit(f"--backend {backend!r}: choose vllm or hf")


#: ``lm_eval --metadata`` of a pass scored from the generation alone: no question-side scores and no
#: reference model (on vLLM, no teacher-forced pass: see Protocol.weight_scores).
GENERATION_ONLY = {"tbd_input_scores": False, "tbd_ref_model": ""}


def sampled_metadata(samples: int, seed: int, ref_model: bool) -> dict:
    """The sampled pass's ``lm_eval --metadata`` (task options). No question-side scores: they do
    not depend on the decoding, and the greedy pass of the same checkpoint has them."""
    metadata = {"tbd_decoding": "sample", "tbd_samples": samples, "tbd_seed": seed, "tbd_input_scores": False}
    if not ref_model:
        metadata["tbd_ref_model"] = ""  # --metadata overrides the task's own; empty = no reference model
    return metadata


def covers(made: dict | None, asked: dict | None) -> bool:
    """Whether a pass scored with ``made`` (its ``--metadata``; None: the task files' own options,
    input scores on and the base model as reference) answers a request for ``asked``: the same
    options, except that a pass with question-side scores or a reference model also answers a
    request without them (the extra scores are kept, not recomputed away)."""
    made, asked = dict(made or {}), dict(asked or {})
    made_q = str(made.pop("tbd_input_scores", True)).lower() not in ("false", "0")
    asked_q = str(asked.pop("tbd_input_scores", True)).lower() not in ("false", "0")
    made_ref, asked_ref = made.pop("tbd_ref_model", None), asked.pop("tbd_ref_model", None)
    return made == asked and (made_q or not asked_q) and (asked_ref == "" or made_ref == asked_ref)


def score(model_dir: Path, task_dir: Path, out: Path, p: Protocol, metadata: dict | None = None,
          tasks: tuple[str, ...] = TASKS, cache_key: dict | None = None) -> float:
    """Run the stock lm_eval CLI on ``tasks`` with ``--model p.backend`` (cached: skipped when
    ``out`` holds a finished run made with the same ``cache_key`` and backend, what else the pass
    depends on, and ``metadata`` or more scores: :func:`covers`). Returns seconds."""
    from lm_eval_tbd.harness.runner import lm_eval_command, run_lm_eval

    backend = p.backend
    done = out / "done.json"
    if done.is_file():
        record = read_record(done)
        # A pass cached before its options were recorded is trusted; otherwise they must match.
        made = {"metadata": record.get("metadata", metadata), "key": record.get("key", cache_key),
                "backend": record.get("backend", "hf")}
        if made["key"] == cache_key and made["backend"] == backend and covers(made["metadata"], metadata):
            return record["seconds"]
        log(f"  {out.name}: cached with {made}, asked for {metadata}, {cache_key} on {backend}: scoring again")
        shutil.rmtree(out)
    model, model_args, batch = model_spec(backend, model_dir, p)
    cmd = lm_eval_command(model, tasks, out, model_args=model_args, device=p.device if backend == "hf" else None,
                          include_path=task_dir, batch_size=batch, metadata=metadata)
    log(f"  $ lm_eval {' '.join(cmd[3:])}")
    env = lm_eval_env(p.device)
    if backend == "vllm":
        env = vllm_env(env)
    t0 = time.perf_counter()
    try:  # lm_eval's own progress bars go to the terminal
        run_lm_eval(cmd, env=env, capture=False)
    except RuntimeError as err:
        raise SystemExit(f"{model_dir}: {err}") from None
    seconds = time.perf_counter() - t0
    from lm_eval_tbd.core.atomic import write_json_atomic

    write_json_atomic(done, {"seconds": seconds, **ran_on(p.device), "metadata": metadata,
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
    # run) lm_eval_tbd.core.compat reads; ``name`` is the run's label in the logs.
    return TaskRun(member_task, runs[member_task].samples_file, questions).rescore(TBDParams(max_tokens=max_tokens))


def with_base_questions(run, base, max_tokens: int):
    """``run`` with the q_ref_* scores: the question log-probs of the base model (the reference)
    taken from its own run of the same prompts (``base``, epoch 0), where the records do not
    already hold them (runs made before the hf backend recorded them). The base run itself is
    returned as it is (its calibrated scores would be 0 by construction), and so is a run scored
    without question-side scores."""
    from lm_eval_tbd.core.scores import TBDParams

    records = [q.record for q in run.questions]
    if (run is base or any(r.ref_question_logprobs is not None for r in records)
            or all(r.question_logprobs is None for r in records)):
        return run  # the base itself, q_ref_* already there, or a pass without question-side scores
    return run.with_reference_questions(base, TBDParams(max_tokens=max_tokens))
