"""Beyond end to end: read a real-student run back, add the reworded and further-trained
students and the toy control, analyse every condition, write the summary and its markdown."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks._cli import log
from benchmarks.protocol import FULL, QUICK, Protocol
from benchmarks.robustness.analysis import CALIBRATED_BEFORE, COMBINED, change_against, condition_figures, verdicts
from benchmarks.robustness.data import reworded_tasks, unrelated_items
from benchmarks.robustness.report import markdown
from benchmarks.student.analysis import memorisation
from benchmarks.student.cache import read_record
from benchmarks.student.device import ran_on, setup_process, train_dtype
from benchmarks.student.distil import distil
from benchmarks.student.pipeline import answer_ids
from benchmarks.student.report import ci
from benchmarks.student.scoring import covers, load, sampled_metadata, score, with_base_questions
from benchmarks.student.split import TASKS, read_rows

ROOT = Path(__file__).resolve().parents[2]
#: the real-student summary's settings that the new steps take over
TAKEN_OVER = ("n", "max_tokens", "answer_tokens", "lr", "batch_size", "eval_batch", "windows")


@dataclass(frozen=True)
class Run:
    """What one invocation reads and writes."""

    data_dir: Path  # s1k.jsonl, math500.jsonl, gsm8k_test.jsonl
    out: Path  # where the real-student summary is and beyond's files go (resolved)
    work: Path  # the real-student run's work folder (resolved)
    real_student: str  # the real-student run's stem
    out_stem: str  # beyond's output stem
    command: str
    conditions: frozenset[str]  # of reworded, post, demo
    post_items: int
    device: str = "cpu"  # where the new steps train and score
    backend: str | None = None  # lm_eval --model of the new passes (None: the real-student run's)
    eval_batch: int | None = None  # their lm_eval --batch_size (None: the real-student run's)
    reword_seed: int = 0
    quick: bool = False


def post_train_dtype(settings: dict, device: str) -> str:
    """The precision of the training after distillation: the distillation's own where it was made
    on the same kind of device (the protocol unchanged), else what suits ``device``
    (``train_dtype("auto", device)``: bf16 where it is native, float32 elsewhere).
    ``settings`` are a real-student summary's; those from before the GPU option ran on a CPU."""
    made = settings.get("distillation") or {"train_dtype": settings.get("train_dtype"), "device": "cpu"}
    if made.get("train_dtype") in ("bf16", "fp32") and made.get("device") == device:
        return made["train_dtype"]
    return train_dtype("auto", device)


def steps_ran_on(work: Path, last: str) -> dict[str, str]:
    """The machine of each new step cached in ``work`` (the reworded pass, the training after
    distillation and its passes), from their cache files; steps not made are left out."""
    files = {f"reworded-{last}": work / f"reworded-{last}" / "done.json", "post-training": work / "post" / "distil.json",
             **{f"greedy-post-{e}": work / f"greedy-post-{e}" / "done.json" for e in (1, 2)}}
    return {step: read_record(f).get("device_name", "not recorded") for step, f in files.items() if f.is_file()}


def demo_runs(work: Path) -> dict:
    """The toy control: the demo's student and null-control runs, members vs unseen (cached)."""
    from lm_eval_tbd.core.runs import TaskRun
    from lm_eval_tbd.core.samples import load_run
    from lm_eval_tbd.core.scores import TBDParams
    from lm_eval_tbd.harness.runner import offline_env

    out = work / "demo"
    if not (out / "demo.json").is_file():
        log("toy control: lm-eval-tbd demo")
        proc = subprocess.run([sys.executable, "-m", "lm_eval_tbd", "demo", "--out", str(out)], stdout=subprocess.DEVNULL,
                              env=offline_env())
        if not (out / "demo.json").is_file():  # the demo's own gate exit status is not ours to judge
            raise SystemExit(f"lm-eval-tbd demo failed (exit {proc.returncode})")
    runs = {}
    for name, folder in (("toy student (demo)", "student_run"), ("toy null control (demo)", "base_run")):
        qs = tuple(q for t in ("demo_members", "demo_unseen") for q in load_run(out / folder, t).questions)
        runs[name] = TaskRun(name, None, qs).rescore(TBDParams())
    return runs


def calibrate_questions(runs: dict, max_tokens: int) -> None:
    """The q_ref_* scores for the real-student runs of the original wording (``with_base_questions``);
    a reworded run needs the reference model's view of its own prompts (recorded by the backend)."""
    base_key = "real student, epoch 0, greedy"
    for key, run in runs.items():
        if key.startswith("real student") and "reworded" not in key:
            runs[key] = with_base_questions(run, runs[base_key], max_tokens)


def read_student(r: Run) -> dict:
    """The real-student run's summary, checked against the work folder it must come from."""
    summary_file = r.out / f"{r.real_student}.json"
    if not summary_file.is_file() or not (r.work / "tasks").is_dir():
        raise SystemExit(f"run python -m benchmarks.real_student first: no {summary_file.name} in --out, or no tasks/ "
                         "in --work")
    summary = read_record(summary_file, what="real_student summary", fix="run python -m benchmarks.real_student again")
    # The work folder must hold that summary's run (--name and --work are given separately).
    recorded = summary["settings"].get("protocol")
    on_disk = read_record(r.work / "protocol.json", optional=True)
    if recorded is not None and on_disk != recorded:
        raise SystemExit(f"--work {r.work} does not hold the run of {summary_file.name}: its protocol.json is {on_disk}, "
                         f"the summary's {recorded}. Give the --work folder that real_student used for it.")
    return summary


def student_runs(r: Run, student: dict, p: Protocol, last: str) -> tuple[dict, dict]:
    """The real-student run's passes, as {condition: run} and {condition: note}: greedy at every
    checkpoint, and the sampled pass where it was made with the summary's options."""
    runs, notes = {}, {}
    for e in sorted(student["checkpoints"], key=int):
        name = f"real student, epoch {e}, greedy"
        runs[name] = load(r.work / f"greedy-{e}", name, p.max_tokens)
        notes[name] = "the base model before distillation (null control)" if e == "0" else f"after {e} epochs of distillation"
    sample_done = r.work / f"sample-{last}" / "done.json"
    if sample_done.is_file():
        st = student["settings"]
        expected = sampled_metadata(st["samples"], st["seed"], ref_model=st.get("sampled_ref_model", True))
        made = read_record(sample_done).get("metadata", expected)  # not recorded before: trusted
        if not covers(made, expected):
            raise SystemExit(f"{sample_done.parent}: scored with {made}, but {r.real_student}.json reports {expected}; "
                             "run python -m benchmarks.real_student again with that summary's options")
        name = f"real student, epoch {last}, sampled"
        runs[name] = load(r.work / f"sample-{last}", name, p.max_tokens)
        notes[name] = (f"after {last} epochs; temperature-1 samples (k = {st['samples']}), the "
                       "question's scores the mean over its samples")
    return runs, notes


def reworded(r: Run, p: Protocol, base_dir: Path, last: str, runs: dict, notes: dict, step_s: dict, extra: dict) -> None:
    """The last checkpoint on its questions reworded (one greedy pass, cached)."""
    log(f"reworded questions: scoring epoch {last}")
    rw_dir, extra["reword_example"] = reworded_tasks(r.work, base_dir, p, seed=r.reword_seed)
    rw_tasks = tuple(f"rw_{t}" for t in TASKS)
    step_s["reworded_score_s"] = score(r.work / f"epoch-{last}", rw_dir, r.work / f"reworded-{last}", p, tasks=rw_tasks,
                                       cache_key={"reword_seed": r.reword_seed})
    name = f"real student, epoch {last}, reworded questions"
    runs[name] = load(r.work / f"reworded-{last}", name, p.max_tokens, tasks=rw_tasks, member_task="rw_rs_members")
    notes[name] = "the same questions reworded (instruction prefix, whitespace, LaTeX delimiters, numbers), greedy"


def post_trained(r: Run, p: Protocol, s1k_rows: list[dict], last: str, runs: dict, notes: dict, step_s: dict,
                 extra: dict) -> None:
    """The last checkpoint trained 1 and 2 more epochs on unrelated items, each scored greedily
    (cached; the items and settings recorded in ``post/protocol.json``)."""
    items, overlap = unrelated_items(r.data_dir, s1k_rows, r.post_items, seed=0)
    log(f"training after distillation: {len(items)} unrelated items, 2 epochs from epoch {last}")
    post_dir = r.work / "post"
    post_protocol = {"from": f"epoch-{last}", "item_ids": [str(x["id"]) for x in items], "epochs": 2, "lr": p.lr}
    made = read_record(post_dir / "protocol.json", optional=True)
    if made is not None and made != post_protocol:  # derived data: redone, not refused
        log(f"training after distillation: {post_dir.name}/ was made with other items or settings; training again")
        shutil.rmtree(post_dir)
    post_dir.mkdir(exist_ok=True)
    if made != post_protocol:
        from lm_eval_tbd.core.atomic import write_json_atomic

        write_json_atomic(post_dir / "protocol.json", post_protocol)
    post = distil(r.work / f"epoch-{last}", post_dir, items, p.replace(epochs=2, checkpoints=(1, 2)), seed=1,
                  command=r.command, scored={e: [r.work / f"greedy-post-{e}"] for e in (1, 2)})
    post_log = read_record(post_dir / "distil.json")
    step_s["post_train_s"] = post_log["seconds"]
    extra["post_data"] = {"n": len(items), "overlap": overlap, "losses": post_log["losses"]}
    for e, d in sorted(post.items()):
        step_s[f"post_{e}_score_s"] = score(d, r.work / "tasks", r.work / f"greedy-post-{e}", p)
        name = f"real student, epoch {last} + {e} epoch(s) on unrelated data"
        runs[name] = load(r.work / f"greedy-post-{e}", name, p.max_tokens)
        notes[name] = (f"the epoch-{last} student fine-tuned {e} more epoch(s) on MATH-500/GSM8K solutions "
                       f"(response loss {post_log['losses'][e - 1]:.3f}), greedy")


def protocol(r: Run, student: dict) -> Protocol:
    """The protocol of the new steps: the real-student run's (``TAKEN_OVER``), on ``r.device``, in
    the distillation's precision where it suits that device, with ``r``'s backend and batch where
    given, else the run's."""
    st = student["settings"]
    p = (QUICK if r.quick else FULL).replace(**{k: tuple(st[k]) if isinstance(st[k], list) else st[k]
                                                 for k in TAKEN_OVER})
    return p.replace(device=r.device, train_dtype=post_train_dtype(st, r.device),
                     backend=r.backend or st.get("backend", "hf"),
                     eval_batch=p.eval_batch if r.eval_batch is None else r.eval_batch)


def run(r: Run) -> dict:
    """Every condition on the real-student run named by ``r``. Writes ``OUT_STEM.json`` and
    ``OUT_STEM.md`` and returns the summary."""
    student = read_student(r)
    p = protocol(r, student)
    last = max(student["checkpoints"], key=int)
    base_dir = next((d for d in r.work.glob("base-*") if (d / "config.json").is_file()), None)
    if base_dir is None:
        raise SystemExit(f"{r.work.name}: no base model folder (base-*); real_student with --base keeps none here")
    n_resamples = 200 if r.quick else 1000
    setup_process(p.device)
    s1k_rows = read_rows(r.data_dir / "s1k.jsonl")
    by_id = {str(x["id"]): x for x in s1k_rows}
    ids = student["settings"]["member_ids"] + student["settings"]["nonmember_ids"]
    answers = answer_ids(base_dir, [by_id[i] for i in ids], p.answer_tokens)

    runs, notes = student_runs(r, student, p, last)
    original = f"real student, epoch {last}, greedy"
    step_s, extra = {}, {}
    if "reworded" in r.conditions:
        reworded(r, p, base_dir, last, runs, notes, step_s, extra)
    if "post" in r.conditions:
        post_trained(r, p, s1k_rows, last, runs, notes, step_s, extra)
    memo = {k: memorisation(x, answers) for k, x in runs.items() if k.startswith("real student")}
    calibrate_questions(runs, p.max_tokens)
    if "demo" in r.conditions and not r.quick:
        for name, x in demo_runs(r.work).items():
            runs[name] = x
            notes[name] = "2-layer GPT-2 trained until it memorises (the demo), members vs unseen, greedy, no reference model"

    t_analysis = time.perf_counter()
    from lm_eval_tbd.core.combine import cross_fit_decisions, fit_combined

    robust = {k: x for k, x in runs.items() if "reworded" in k or "unrelated" in k}
    calib = runs[original]
    features = [f for f in fit_combined([calib], n_resamples=10).features
                if all(f in (q.scores or {}) for x in robust.values() for q in x.questions)]
    crossed = cross_fit_decisions(calib, robust, features=features) if robust else {}
    summary = {"command": r.command,
               "settings": {"cpus": os.cpu_count(), "device": p.device, "device_name": ran_on(p.device)["device_name"],
                            "backend": p.backend,
                            "steps_ran_on": {k: v for k, v in steps_ran_on(r.work, last).items()
                                             if (k.startswith("reworded") and "reworded" in r.conditions)
                                             or (not k.startswith("reworded") and "post" in r.conditions)},
                            "real_student": r.real_student, "last": last, "windows": list(p.windows),
                            "post_items": r.post_items, "reword_seed": r.reword_seed,
                            "combined_features_calibrated_before": features},
               **extra, "original": original, "conditions": {}, "robustness": {}}
    for name, x in runs.items():
        combined = {}
        try:
            combined[COMBINED] = cross_fit_decisions(x, {name: x})[name]
        except ValueError as err:
            log(f"  {name}: no combined detector ({err})")
        if name in crossed:
            combined[CALIBRATED_BEFORE] = crossed[name]
        c = {"note": notes[name], **condition_figures(x, p.windows, n_resamples, combined)}
        if name in memo:
            c["memorisation"] = memo[name]
        summary["conditions"][name] = c
        log(f"{name}: TBD AUC {ci(c['scores']['tbd'])}" + (f", combined {c['scores'][COMBINED]['auc']:.3f}" if COMBINED in c["scores"] else ""))
    for name, x in runs.items():
        if name in robust or name.endswith("sampled"):
            summary["robustness"][name.replace(f"real student, epoch {last}", "").strip(", ")] = change_against(calib, x, n_resamples)
    toy = ROOT / "benchmarks" / "results" / "detection.json"
    if toy.is_file() and not r.quick:
        d = json.loads(toy.read_text())
        e = max(d["checkpoints"], key=int)
        summary["toy_detection"] = {"note": f"4-layer GPT-2 from scratch, {e} epochs, {d['checkpoints'][e]['memorised_share']:.0%} "
                                            "of members memorised", "auc": {k: v["auc"] for k, v in d["checkpoints"][e]["scores"].items()}}
    summary["verdicts"] = verdicts(summary)
    # Cached steps count with the time they took when they ran.
    summary["timings"] = {**{k: round(v, 1) for k, v in step_s.items()}, "analysis_s": round(time.perf_counter() - t_analysis, 1)}
    summary["seconds"] = round(sum(summary["timings"].values()), 1)

    from lm_eval_tbd.core.atomic import write_json_atomic, write_text_atomic

    write_json_atomic(r.out / f"{r.out_stem}.json", summary)
    write_text_atomic(r.out / f"{r.out_stem}.md", markdown(summary))
    log(f"wrote {r.out_stem}.json and {r.out_stem}.md to {r.out} ({summary['seconds'] / 60:.1f} min)")
    for v in summary["verdicts"]:
        log(f"  {v}")
    return summary
