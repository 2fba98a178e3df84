"""Beyond the paper: every score, a combined detector and two robustness threats, on the real student.

Builds on ``benchmarks/real_student.py``: reads its summary (``--name``) and cached work folder
(the base model, the distilled checkpoints, the question files and every logged generation), so
the scores of its runs are recomputed from the logs without new generation. New runs go through
the stock ``lm_eval`` CLI as there, on the last checkpoint:

1. **Reworded questions.** The same members and non-members reworded with
   ``lm_eval_tbd.core.rewording.reword`` (every kind: an instruction prefix chosen by seed and
   text, whitespace, LaTeX delimiters, numbers outside math written differently), greedy.
2. **Training after distillation.** The last checkpoint fine-tuned for 1 and 2 more epochs on
   unrelated data: ``--post-items`` question -> solution pairs drawn (seeded) from MATH-500 and
   GSM8K after removing any whose question overlaps an s1K question (the same normalised text,
   or a shared run of 12 words), with the distillation recipe; each scored greedily.
3. **Toy control.** The demo (``lm-eval-tbd demo``: a 2-layer GPT-2 trained until it memorises)
   and its null control, rescored with every score; and ``detection.json``'s toy student
   (figures only: its logs are not kept).

For every condition: each score's ROC AUC [95% CI] and strict TPR at 1% and 5% FPR; the paired
bootstrap AUC difference of each score against greedy TBD on the same questions; TBD over the
windows M; the combined detector (``lm_eval_tbd.core.combine``) out of fold, and cross-fitted
from the last checkpoint's original wording to the robustness variants (a user who calibrated
before the rewording or the further training; no question is scored by a model that saw its
label); and, for the robustness variants, each score's paired AUC change against the same score
on the original questions and checkpoint.

Writes ``beyond.{json,md}`` (``--stem``) to ``--out``. ``--quick`` works on ``real_student.py --quick``'s
folder for CI; its figures mean nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import real_student as rs  # noqa: E402  (the protocol and cached work folder this builds on)
from _cli import check_stem  # noqa: E402

ROOT = rs.ROOT
KEEP = ("auc", "auc_ci", "tpr@1%fpr", "tpr@5%fpr", "tpr@5%fpr_ci")
COMBINED, CALIBRATED_BEFORE = "combined", "combined (calibrated before)"


def log(msg: str) -> None:
    print(msg, flush=True)


# ---- data ---------------------------------------------------------------------------------------


def _norm(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text.lower()).split())


def _grams(words: list[str], n: int = 12) -> set[str]:
    return {" ".join(words[i:i + n]) for i in range(max(0, len(words) - n + 1))}


def unrelated_items(data_dir: Path, s1k_rows: list[dict], n: int, seed: int) -> tuple[list[dict], dict]:
    """``n`` MATH-500 / GSM8K question -> solution pairs sharing no question with s1K (seeded),
    and the overlap check's counts (candidates, dropped for the same text, dropped for a shared
    run of 12 words)."""
    s1k_norm = {_norm(r["question"]) for r in s1k_rows}
    grams = set().union(*(_grams(t.split()) for t in s1k_norm))
    pool, dropped = [], {"same_text": 0, "shared_12_words": 0}
    for name in ("math500.jsonl", "gsm8k_test.jsonl"):
        for i, r in enumerate(rs.read_rows(data_dir / name)):
            text = _norm(r["question"])
            if text in s1k_norm:
                dropped["same_text"] += 1
            elif _grams(text.split()) & grams:
                dropped["shared_12_words"] += 1
            else:
                pool.append({**r, "id": f"{name.split('.')[0]}-{r.get('id', i)}"})
    if len(pool) < n:
        raise SystemExit(f"--post-items {n}: only {len(pool)} unrelated items in {data_dir}")
    return random.Random(seed).sample(pool, n), {"candidates": len(pool) + sum(dropped.values()), **dropped}


def reworded_tasks(work: Path, base_dir: Path, cfg: dict, seed: int) -> tuple[Path, dict[str, str]]:
    """The real student's three question files reworded, as tasks rw_* in ``work/tasks-reworded``;
    also returns one example (original and reworded) for the report."""
    from lm_eval_tbd.core.rewording import reword
    from lm_eval_tbd.harness.custom_tasks import write_jsonl_task

    task_dir = work / "tasks-reworded"
    example = {}
    for name in rs.TASKS:
        rows = [json.loads(line) for line in (work / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()]
        new = [{"id": r["id"], "question": reword(r["question"], seed=seed)} for r in rows]
        example = example or {"original": rows[0]["question"][:300], "reworded": new[0]["question"][:360]}
        path = work / f"rw_{name}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in new), encoding="utf-8")
        write_jsonl_task(f"rw_{name}", path, task_dir, tbd_max_tokens=cfg["max_tokens"], tbd_input_scores=True,
                         tbd_ref_model=str(base_dir))
    return task_dir, example


def post_train_dtype(settings: dict, device: str) -> str:
    """The precision of the training after distillation: the distillation's own where it was made
    on the same kind of device (the protocol unchanged), else what suits ``device``
    (``real_student.train_dtype("auto", device)``: bf16 where it is native, float32 elsewhere).
    ``settings`` are a real-student summary's; those from before the GPU option ran on a CPU."""
    made = settings.get("distillation") or {"train_dtype": settings.get("train_dtype"), "device": "cpu"}
    if made.get("train_dtype") in ("bf16", "fp32") and made.get("device") == device:
        return made["train_dtype"]
    return rs.train_dtype("auto", device)


def steps_ran_on(work: Path, last: str) -> dict[str, str]:
    """The machine of each new step cached in ``work`` (the reworded pass, the training after
    distillation and its passes), from their cache files; steps not made are left out."""
    files = {f"reworded-{last}": work / f"reworded-{last}" / "done.json", "post-training": work / "post" / "distil.json",
             **{f"greedy-post-{e}": work / f"greedy-post-{e}" / "done.json" for e in (1, 2)}}
    return {step: rs.read_record(f).get("device_name", "not recorded") for step, f in files.items() if f.is_file()}


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
    """The q_ref_* scores for the real-student runs of the original wording (``rs.with_base_questions``);
    a reworded run needs the reference model's view of its own prompts (recorded by the backend)."""
    base_key = "real student, epoch 0, greedy"
    for key, run in runs.items():
        if key.startswith("real student") and "reworded" not in key:
            runs[key] = rs.with_base_questions(run, runs[base_key], max_tokens)


# ---- figures ------------------------------------------------------------------------------------


def _labels_and(run, name: str):
    from lm_eval_tbd.core.scores import decision_value

    return [q.label for q in run.questions], [decision_value(name, v) for v in run.score_values(name)]


def condition_figures(run, windows, n_resamples: int, combined: dict | None = None) -> dict:
    """Every score's ROC figures, TBD per window, paired differences against TBD (``vs_tbd``), and
    extra decision arrays by name (``combined``: the combined detector's out-of-fold decisions)."""
    from lm_eval_tbd.app.report import compare_scores
    from lm_eval_tbd.core.scores import TBDParams
    from lm_eval_tbd.core.stats import UndefinedMetricError, paired_auc_difference, roc_report

    scores = {k: {x: v[x] for x in KEEP} for k, v in compare_scores(run, n_resamples=n_resamples).items()}
    labels, tbd = _labels_and(run, "tbd")
    decisions = {k: _labels_and(run, k)[1] for k in scores}
    for name, values in (combined or {}).items():
        scores[name] = {x: v for x, v in roc_report(labels, values, n_resamples=n_resamples, seed=0).items() if x in KEEP}
        decisions[name] = list(values)
    vs_tbd = {}
    for name, values in decisions.items():
        if name != "tbd":
            d = paired_auc_difference(labels, values, tbd, n_resamples=n_resamples)
            vs_tbd[name] = {"difference": d["difference"], "ci": d["ci"], "p": d["p_two_sided"]}
    out = {"n_members": sum(labels), "n_nonmembers": len(labels) - sum(labels), "scores": scores, "vs_tbd": vs_tbd,
           "tbd_windows": {}}
    for m in windows:
        try:
            r = compare_scores(run.rescore(TBDParams(max_tokens=m)), n_resamples=n_resamples)["tbd"]
        except UndefinedMetricError:
            continue
        out["tbd_windows"][str(m)] = {x: r[x] for x in KEEP}
    return out


def change_against(original, variant, n_resamples: int) -> dict:
    """Each score's paired AUC(variant) - AUC(original) over the same questions (the robustness
    loss: negative = the variant hides the signal)."""
    from lm_eval_tbd.core.stats import paired_auc_difference

    ids = [q.question_id for q in original.questions]
    order = {q.question_id: i for i, q in enumerate(variant.questions)}
    if sorted(order) != sorted(ids):
        raise SystemExit(f"{variant.task}: not the questions of {original.task}")
    out = {}
    for name in original.questions[0].scores:
        if name not in (variant.questions[0].scores or {}):
            continue
        labels, a = _labels_and(original, name)
        _, b = _labels_and(variant, name)
        b = [b[order[i]] for i in ids]
        d = paired_auc_difference(labels, b, a, n_resamples=n_resamples)
        out[name] = {"difference": d["difference"], "ci": d["ci"], "p": d["p_two_sided"]}
    return out


def verdicts(s: dict) -> list[str]:
    """Plain statements from the figures: does any score beat greedy TBD on a real-student
    checkpoint (paired CI excluding 0) without losing on the other conditions; the issue's bar
    (+0.10 AUC with a CI excluding 0, and twice TBD's strict TPR at 5% FPR)."""
    out = []
    conditions = s["conditions"]
    student = [k for k in conditions if k.startswith("real student, epoch") and k.endswith(", greedy")
               and k != "real student, epoch 0, greedy"]  # the base model is the null control, not a student
    winners = set()
    for key in student:
        c = conditions[key]
        tbd = c["scores"]["tbd"]
        beats = sorted((n for n, d in c["vs_tbd"].items() if d["ci"][0] > 0), key=lambda n: -c["vs_tbd"][n]["difference"])
        line = f"{key}: TBD AUC {tbd['auc']:.3f}, TPR@5% {tbd['tpr@5%fpr']:.3f}; "
        if not beats:
            out.append(line + "no score beats it with a paired CI excluding 0.")
            continue
        parts = []
        for n in beats:
            d, r = c["vs_tbd"][n], c["scores"][n]
            bar = d["ci"][0] > 0 and d["difference"] >= 0.10 and r["tpr@5%fpr"] >= 2 * tbd["tpr@5%fpr"] and r["tpr@5%fpr"] > 0
            parts.append(f"{n} {d['difference']:+.3f} [{d['ci'][0]:+.3f}, {d['ci'][1]:+.3f}], TPR@5% "
                         f"{r['tpr@5%fpr']:.3f} (the bar: {'met' if bar else 'not met'})")
            winners.add(n)
        out.append(line + "beaten by " + "; ".join(parts) + ".")
    for n in sorted(winners):
        losses = [k for k, c in conditions.items() if n in c["vs_tbd"] and c["vs_tbd"][n]["ci"][1] < 0]
        out.append(f"{n} loses to TBD with a CI excluding 0 on: {', '.join(losses) or 'no condition'}.")
    if not winners:
        out.append("Nothing beats greedy TBD on any real-student checkpoint: TBD stays the default.")
    return out


# ---- report -------------------------------------------------------------------------------------


_ci = rs._ci  # "AUC [lo, hi]", as real_student.md writes it


def _delta(d: dict | None) -> str:
    return "-" if d is None else f"{d['difference']:+.3f} [{d['ci'][0]:+.3f}, {d['ci'][1]:+.3f}]"


def markdown(s: dict) -> str:
    from lm_eval_tbd.core.scores import SCORES

    st = s["settings"]
    lines = ["# Beyond the paper: every score, a combined detector, robustness (real student)", "",
             f"Command: `{s['command']}`; {s['seconds'] / 60:.1f} min for the new runs and the analysis (the sum of the steps' measured times; the toy demo not counted) on "
             f"{rs._machine(st)}. Builds on `{st['real_student']}.md` (the same student, questions and split).", "",
             "AUC [95% bootstrap CI] with members as positives; strict TPR at 1% and 5% FPR. ΔAUC vs TBD: paired "
             f"bootstrap on the same questions. `{COMBINED}`: logistic regression over the pass's scores, out of fold "
             f"(5 stratified folds), never in-sample; `{CALIBRATED_BEFORE}`: fitted on the last checkpoint's original "
             "wording and applied to the variant, cross-fitted so no question is scored by a model that saw its label.",
             "", "## Overview", "",
             "| condition | members memorised | TBD AUC [95% CI] | TPR@1% / 5% | best other score: AUC, ΔAUC vs TBD [95% CI] | "
             f"{COMBINED} (out of fold) |", "|---|---|---|---|---|---|"]
    for name, c in s["conditions"].items():
        t = c["scores"]["tbd"]
        others = {k: v["auc"] for k, v in c["scores"].items() if k not in ("tbd", CALIBRATED_BEFORE)}
        best = max(others, key=others.get)
        memo = c.get("memorisation")
        lines.append(f"| {name} | {'-' if memo is None else format(memo['memorised_share'], '.0%')} | {_ci(t)} | "
                     f"{t['tpr@1%fpr']:.3f} / {t['tpr@5%fpr']:.3f} | {best}: {others[best]:.3f}, {_delta(c['vs_tbd'].get(best))} | "
                     f"{_ci(c['scores'][COMBINED]) if COMBINED in c['scores'] else '-'} |")
    if s.get("toy_detection"):
        d = s["toy_detection"]
        lines += ["", f"Toy student of `detection.py` ({d['note']}): " + ", ".join(f"{k} {v:.3f}" for k, v in d["auc"].items())
                  + " (AUC; no per-question logs are kept, so no CIs or paired differences)."]
    if s.get("robustness"):
        names = [n for n in list(SCORES) + [COMBINED] if n in next(iter(s["robustness"].values()))]
        lines += ["", "## How fast each score's AUC falls", "",
                  f"Paired ΔAUC of each score against the same score on the original questions after {st['last']} epochs "
                  "(negative = the signal is hidden).", "",
                  "| score | original AUC | " + " | ".join(s["robustness"]) + " |", "|---|---|" + "---|" * len(s["robustness"])]
        orig = s["conditions"][s["original"]]["scores"]
        for n in names:
            lines.append(f"| {n} | {orig[n]['auc']:.3f} | " + " | ".join(_delta(v.get(n)) for v in s["robustness"].values()) + " |")
    for name, c in s["conditions"].items():
        lines += ["", f"## {name}", "", c["note"], "",
                  "| score | seen when | AUC [95% CI] | TPR@1% | TPR@5% | ΔAUC vs TBD [95% CI] |", "|---|---|---|---|---|---|"]
        for n, r in c["scores"].items():
            direction = SCORES[n].higher_is_seen if n in SCORES else True
            lines.append(f"| {n} | {'higher' if direction else 'lower'} | {_ci(r)} | {r['tpr@1%fpr']:.3f} | "
                         f"{r['tpr@5%fpr']:.3f} | {_delta(c['vs_tbd'].get(n))} |")
        if c["tbd_windows"]:
            lines += ["", "TBD by window: " + ", ".join(f"M={m}: {v['auc']:.3f}" for m, v in c["tbd_windows"].items())]
    if "post_data" in s or "reword_example" in s:
        lines += ["", "## Data"]
    if "post_data" in s:
        p = s["post_data"]
        lines += ["", f"Training after distillation: {p['n']} items drawn (seed 0) from MATH-500 and GSM8K. Overlap check "
                  f"against all of s1K: {p['overlap']['candidates']} candidates, {p['overlap']['same_text']} dropped for the "
                  f"same normalised question, {p['overlap']['shared_12_words']} for a shared run of 12 words. Response loss "
                  "by epoch: " + ", ".join(f"{x:.3f}" for x in p["losses"]) + "."]
    if "reword_example" in s:
        lines += ["", f"Rewording (seed {st['reword_seed']}), for example: `{s['reword_example']['original']!r}` becomes "
                  f"`{s['reword_example']['reworded']!r}`."]
    lines += ["", "## Verdicts", ""] + [f"- {v}" for v in s["verdicts"]]
    return "\n".join(lines) + "\n"


# ---- main ---------------------------------------------------------------------------------------


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="pipeline check on real_student.py --quick's output")
    parser.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data",
                        help="folder with s1k.jsonl, math500.jsonl and gsm8k_test.jsonl")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--name", help="the real_student.py run to build on (its --name; default real_student)")
    parser.add_argument("--work", type=Path, help="real_student.py's work folder (default: OUT/work-real-student[-quick])")
    parser.add_argument("--post-items", type=int, help="unrelated items for training after distillation (default 64)")
    parser.add_argument("--reword-seed", type=int, default=0)
    parser.add_argument("--conditions", default="reworded,post,demo",
                        help="new runs to make, comma-separated: reworded, post (training after distillation), demo "
                             "(the toy control; never with --quick). Default: all")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="where to train and score the new runs (auto: cuda where torch sees a GPU, else cpu)")
    parser.add_argument("--eval-batch", type=int,
                        help="lm_eval --batch_size of the new passes (default: the real-student run's)")
    parser.add_argument("--stem", help="stem of the output files (default: beyond, or beyond-quick)")
    args = parser.parse_args(argv)
    if args.stem is not None:
        check_stem(parser, "--stem", args.stem)
    conditions = set(args.conditions.split(",")) - {""}
    if conditions - {"reworded", "post", "demo"}:
        parser.error(f"--conditions: unknown {sorted(conditions - {'reworded', 'post', 'demo'})}; "
                     "choose from reworded, post, demo")
    stem = rs.run_stem(args.name, args.quick)
    check_stem(parser, "--name", stem)
    out = args.out.resolve()
    work = rs.work_folder(args.work, out, args.quick)
    summary_file = out / f"{stem}.json"
    if not summary_file.is_file() or not (work / "tasks").is_dir():
        raise SystemExit(f"run benchmarks/real_student.py first: no {summary_file.name} in --out, or no tasks/ in --work")
    rs_summary = rs.read_record(summary_file, what="real_student.py summary", fix="run benchmarks/real_student.py again")
    # The work folder must hold that summary's run (--name and --work are given separately).
    recorded = rs_summary["settings"].get("protocol")
    on_disk = rs.read_record(work / "protocol.json", optional=True)
    if recorded is not None and on_disk != recorded:
        raise SystemExit(f"--work {work} does not hold the run of {summary_file.name}: its protocol.json is {on_disk}, "
                         f"the summary's {recorded}. Give the --work folder that real_student.py used for it.")
    cfg = {**(rs.QUICK if args.quick else rs.FULL), **{k: rs_summary["settings"][k] for k in
                                                        ("n", "max_tokens", "answer_tokens", "lr", "batch_size", "eval_batch", "windows")}}
    cfg["device"] = rs.resolve_device(args.device)
    cfg["train_dtype"] = post_train_dtype(rs_summary["settings"], cfg["device"])
    if args.eval_batch is not None:
        if args.eval_batch < 1:
            parser.error(f"--eval-batch {args.eval_batch}: must be at least 1")
        cfg["eval_batch"] = args.eval_batch
    last = max(rs_summary["checkpoints"], key=int)
    base_dir = next((p for p in work.glob("base-*") if (p / "config.json").is_file()), None)
    if base_dir is None:
        raise SystemExit(f"{work.name}: no base model folder (base-*); real_student.py with --base keeps none here")
    n_resamples = 200 if args.quick else 1000
    rs.setup_process(cfg["device"])
    s1k_rows = rs.read_rows(args.data_dir / "s1k.jsonl")
    by_id = {str(r["id"]): r for r in s1k_rows}
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(base_dir)
    ids = rs_summary["settings"]["member_ids"] + rs_summary["settings"]["nonmember_ids"]
    answers = {i: ex[2] for i, ex in zip(ids, rs.examples(tok, [by_id[i] for i in ids], cfg["answer_tokens"]))}

    runs, notes = {}, {}
    for e in sorted(rs_summary["checkpoints"], key=int):
        name = f"real student, epoch {e}, greedy"
        runs[name] = rs.load(work / f"greedy-{e}", name, cfg["max_tokens"])
        notes[name] = "the base model before distillation (null control)" if e == "0" else f"after {e} epochs of distillation"
    original = f"real student, epoch {last}, greedy"
    sample_done = work / f"sample-{last}" / "done.json"
    if sample_done.is_file():
        st = rs_summary["settings"]
        expected = rs.sampled_metadata(st["samples"], st["seed"], ref_model=st.get("sampled_ref_model", True))
        made = rs.read_record(sample_done).get("metadata", expected)  # not recorded before: trusted
        if made != expected:
            raise SystemExit(f"{sample_done.parent}: scored with {made}, but {summary_file.name} reports {expected}; "
                             "run real_student.py again with that summary's options")
        name = f"real student, epoch {last}, sampled"
        runs[name] = rs.load(work / f"sample-{last}", name, cfg["max_tokens"])
        notes[name] = (f"after {last} epochs; temperature-1 samples (k = {rs_summary['settings']['samples']}), the "
                       "question's scores the mean over its samples")

    step_s, extra = {}, {}
    if "reworded" in conditions:
        log(f"reworded questions: scoring epoch {last}")
        rw_dir, extra["reword_example"] = reworded_tasks(work, base_dir, cfg, seed=args.reword_seed)
        rw_tasks = tuple(f"rw_{t}" for t in rs.TASKS)
        step_s["reworded_score_s"] = rs.score(work / f"epoch-{last}", rw_dir, work / f"reworded-{last}", cfg, tasks=rw_tasks,
                                              cache_key={"reword_seed": args.reword_seed})
        name = f"real student, epoch {last}, reworded questions"
        runs[name] = rs.load(work / f"reworded-{last}", name, cfg["max_tokens"], tasks=rw_tasks, member_task="rw_rs_members")
        notes[name] = "the same questions reworded (instruction prefix, whitespace, LaTeX delimiters, numbers), greedy"

    n_post = args.post_items or (8 if args.quick else 64)
    if "post" in conditions:
        items, overlap = unrelated_items(args.data_dir, s1k_rows, n_post, seed=0)
        log(f"training after distillation: {len(items)} unrelated items, 2 epochs from epoch {last}")
        post_dir = work / "post"
        post_protocol = {"from": f"epoch-{last}", "item_ids": [str(r["id"]) for r in items], "epochs": 2, "lr": cfg["lr"]}
        made = rs.read_record(post_dir / "protocol.json", optional=True)
        if made is not None and made != post_protocol:  # derived data: redone, not refused
            log(f"training after distillation: {post_dir.name}/ was made with other items or settings; training again")
            import shutil

            shutil.rmtree(post_dir)
        post_dir.mkdir(exist_ok=True)
        if made != post_protocol:
            from lm_eval_tbd.core.atomic import write_json_atomic

            write_json_atomic(post_dir / "protocol.json", post_protocol)
        post = rs.distil(work / f"epoch-{last}", post_dir, items, {**cfg, "epochs": 2, "checkpoints": (1, 2)}, seed=1,
                         command=rs.command_line(sys.argv[1:] if argv is None else argv, "beyond.py"),
                         scored={e: [work / f"greedy-post-{e}"] for e in (1, 2)})
        post_log = rs.read_record(post_dir / "distil.json")
        step_s["post_train_s"] = post_log["seconds"]
        extra["post_data"] = {"n": len(items), "overlap": overlap, "losses": post_log["losses"]}
        for e, d in sorted(post.items()):
            step_s[f"post_{e}_score_s"] = rs.score(d, work / "tasks", work / f"greedy-post-{e}", cfg)
            name = f"real student, epoch {last} + {e} epoch(s) on unrelated data"
            runs[name] = rs.load(work / f"greedy-post-{e}", name, cfg["max_tokens"])
            notes[name] = (f"the epoch-{last} student fine-tuned {e} more epoch(s) on MATH-500/GSM8K solutions "
                           f"(response loss {post_log['losses'][e - 1]:.3f}), greedy")
    memo = {k: rs.memorisation(r, answers) for k, r in runs.items() if k.startswith("real student")}
    calibrate_questions(runs, cfg["max_tokens"])

    if "demo" in conditions and not args.quick:
        for name, run in demo_runs(work).items():
            runs[name] = run
            notes[name] = "2-layer GPT-2 trained until it memorises (the demo), members vs unseen, greedy, no reference model"

    t_analysis = time.perf_counter()
    from lm_eval_tbd.core.combine import cross_fit_decisions, fit_combined

    robust = {k: r for k, r in runs.items() if "reworded" in k or "unrelated" in k}
    calib = runs[original]
    features = [f for f in fit_combined([calib], n_resamples=10).features
                if all(f in (q.scores or {}) for r in robust.values() for q in r.questions)]
    crossed = cross_fit_decisions(calib, robust, features=features) if robust else {}
    summary = {"command": rs.command_line(sys.argv[1:] if argv is None else argv, "beyond.py"),
               "settings": {"cpus": os.cpu_count(), "device": cfg["device"],
                            "device_name": rs.ran_on(cfg["device"])["device_name"],
                            "steps_ran_on": {k: v for k, v in steps_ran_on(work, last).items()
                                             if (k.startswith("reworded") and "reworded" in conditions)
                                             or (not k.startswith("reworded") and "post" in conditions)},
                            "real_student": stem, "last": last, "windows": list(cfg["windows"]),
                            "post_items": n_post, "reword_seed": args.reword_seed, "combined_features_calibrated_before": features},
               **extra, "original": original, "conditions": {}, "robustness": {}}
    for name, run in runs.items():
        combined = {}
        try:
            combined[COMBINED] = cross_fit_decisions(run, {name: run})[name]
        except ValueError as err:
            log(f"  {name}: no combined detector ({err})")
        if name in crossed:
            combined[CALIBRATED_BEFORE] = crossed[name]
        c = {"note": notes[name], **condition_figures(run, cfg["windows"], n_resamples, combined)}
        if name in memo:
            c["memorisation"] = memo[name]
        summary["conditions"][name] = c
        log(f"{name}: TBD AUC {_ci(c['scores']['tbd'])}" + (f", combined {c['scores'][COMBINED]['auc']:.3f}" if COMBINED in c["scores"] else ""))
    for name, run in runs.items():
        if name in robust or name.endswith("sampled"):
            summary["robustness"][name.replace(f"real student, epoch {last}", "").strip(", ")] = change_against(calib, run, n_resamples)
    toy = ROOT / "benchmarks" / "results" / "detection.json"
    if toy.is_file() and not args.quick:
        d = json.loads(toy.read_text())
        e = max(d["checkpoints"], key=int)
        summary["toy_detection"] = {"note": f"4-layer GPT-2 from scratch, {e} epochs, {d['checkpoints'][e]['memorised_share']:.0%} "
                                            "of members memorised", "auc": {k: v["auc"] for k, v in d["checkpoints"][e]["scores"].items()}}
    summary["verdicts"] = verdicts(summary)
    # Cached steps count with the time they took when they ran.
    summary["timings"] = {**{k: round(v, 1) for k, v in step_s.items()}, "analysis_s": round(time.perf_counter() - t_analysis, 1)}
    summary["seconds"] = round(sum(summary["timings"].values()), 1)

    from lm_eval_tbd.core.atomic import write_json_atomic, write_text_atomic

    out_stem = args.stem or ("beyond-quick" if args.quick else "beyond")
    write_json_atomic(out / f"{out_stem}.json", summary)
    write_text_atomic(out / f"{out_stem}.md", markdown(summary))
    log(f"wrote {out_stem}.json and {out_stem}.md to {out} ({summary['seconds'] / 60:.1f} min)")
    for v in summary["verdicts"]:
        log(f"  {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
