"""Beyond the paper: every score, a combined detector and two robustness threats, on the real student.

Builds on ``benchmarks/real_student.py``: reads its cached work folder (the base model, the
distilled checkpoints, the labelled question files and every logged generation), so the scores
of the existing runs are recomputed from the logs without new generation. New runs, through the
stock ``lm_eval`` CLI as there:

1. **Reworded questions.** The same members and non-members, reworded with
   ``lm_eval_tbd.rewording.reword`` (all kinds: an instruction prefix chosen by seed,
   whitespace, LaTeX delimiters, numbers outside math), scored on the last checkpoint.
2. **Training after distillation.** The last checkpoint fine-tuned for 1 and 2 more epochs on
   unrelated data: ``--post-items`` question -> solution pairs drawn (seeded) from MATH-500 and
   GSM8K, after removing any whose question overlaps an s1K question (same normalised text, or
   a shared run of 12 words), with the distillation recipe; each scored greedily.
3. **Toy control.** The demo (``lm-eval-tbd demo``: a 2-layer GPT-2 trained until it memorises)
   and its null control, rescored with every score.

For every condition: each score's ROC AUC [95% CI] and strict TPR at 1% and 5% FPR; the paired
bootstrap AUC difference of each score against greedy TBD on the same questions; TBD over the
windows M in {25, 50, 100, 300}; and the combined detector (``lm_eval_tbd.combine``): out of
fold on each condition (a user calibrating on that model), and cross-fitted from the last
checkpoint's original wording to the robustness variants (a user who calibrated before the
rewording or the further training; no question is scored by a model that saw its label).

Writes ``beyond.{json,md}`` to ``--out``. ``--quick`` works on ``real_student.py --quick``'s
folder for CI.
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

ROOT = rs.ROOT
WINDOWS = (25, 50, 100, 300)
QUICK_WINDOWS = (6, 12, 24)


def log(msg: str) -> None:
    print(msg, flush=True)


# ---- data ---------------------------------------------------------------------------------------


def _norm(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text.lower()).split())


def unrelated_items(data_dir: Path, s1k_rows: list[dict], n: int, seed: int) -> tuple[list[dict], dict]:
    """``n`` MATH-500 / GSM8K question -> solution pairs sharing no question with s1K (seeded),
    and the overlap check's counts."""
    s1k_norm = {_norm(r["question"]) for r in s1k_rows}
    grams = set()
    for text in s1k_norm:
        words = text.split()
        grams.update(" ".join(words[i:i + 12]) for i in range(max(0, len(words) - 11)))
    pool, dropped = [], {"same_text": 0, "shared_12_words": 0}
    for name in ("math500.jsonl", "gsm8k_test.jsonl"):
        for r in rs.read_rows(data_dir / name):
            text = _norm(r["question"])
            words = text.split()
            if text in s1k_norm:
                dropped["same_text"] += 1
            elif any(" ".join(words[i:i + 12]) in grams for i in range(max(0, len(words) - 11))):
                dropped["shared_12_words"] += 1
            else:
                pool.append({"id": f"{name.split('.')[0]}-{r.get('id')}", **r})
    if len(pool) < n:
        raise SystemExit(f"only {len(pool)} unrelated items for --post-items {n}")
    return random.Random(seed).sample(pool, n), {"candidates": len(pool) + sum(dropped.values()), **dropped}


def reworded_tasks(work: Path, base_dir: Path, cfg: dict, seed: int) -> Path:
    """The real student's three question files reworded, as tasks rw_* in ``work/tasks-reworded``."""
    from lm_eval_tbd.custom_tasks import write_jsonl_task
    from lm_eval_tbd.rewording import reword

    task_dir = work / "tasks-reworded"
    for name in rs.TASKS:
        rows = [json.loads(line) for line in (work / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()]
        path = work / f"rw_{name}.jsonl"
        path.write_text("".join(json.dumps({"id": r["id"], "question": reword(r["question"], seed=seed)}) + "\n"
                                for r in rows), encoding="utf-8")
        write_jsonl_task(f"rw_{name}", path, task_dir, tbd_max_tokens=cfg["max_tokens"], tbd_input_scores=True,
                         tbd_ref_model=str(base_dir))
    return task_dir


# ---- runs ---------------------------------------------------------------------------------------


def score_tasks(model_dir: Path, task_dir: Path, tasks, out: Path, cfg: dict) -> float:
    """The stock lm_eval CLI on ``tasks`` (cached like real_student.score)."""
    from lm_eval_tbd.runner import lm_eval_command

    done = out / "done.json"
    if done.is_file():
        return json.loads(done.read_text())["seconds"]
    cmd = lm_eval_command("hf", tasks, out, model_args=f"pretrained={model_dir},dtype=float32", device="cpu",
                          include_path=task_dir, batch_size=str(cfg["eval_batch"]))
    log(f"  $ lm_eval {' '.join(cmd[3:])}")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    t0 = time.perf_counter()
    if subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL).returncode != 0:
        raise SystemExit(f"lm_eval failed on {model_dir}")
    seconds = time.perf_counter() - t0
    done.write_text(json.dumps({"seconds": seconds}))
    return seconds


def load_tasks(out: Path, tasks, name: str, max_tokens: int, member_task: str):
    from dataclasses import replace

    from lm_eval_tbd.results import TaskRun, load_run
    from lm_eval_tbd.scores import TBDParams

    runs = [load_run(out, t) for t in tasks]
    qs = tuple(replace(q, label=int(t == member_task)) for t, r in zip(tasks, runs) for q in r.questions)
    return TaskRun(name, runs[0].samples_file, qs).rescore(TBDParams(max_tokens=max_tokens))


def post_train(last_dir: Path, work: Path, items: list[dict], cfg: dict) -> dict[int, Path]:
    """The last checkpoint fine-tuned on unrelated items for 1 and 2 epochs (distillation recipe)."""
    post_cfg = {**cfg, "epochs": 2, "checkpoints": (1, 2)}
    folder = work / "post"
    folder.mkdir(exist_ok=True)
    return rs.distil(last_dir, folder, items, post_cfg, seed=1)


def demo_runs(work: Path) -> dict:
    """The toy control: the demo's student and null-control runs, members vs unseen."""
    from lm_eval_tbd.results import TaskRun, load_run
    from lm_eval_tbd.scores import TBDParams

    out = work / "demo"
    if not (out / "demo.json").is_file():
        proc = subprocess.run([sys.executable, "-m", "lm_eval_tbd.cli", "demo", "--out", str(out)],
                              stdout=subprocess.DEVNULL)
        if proc.returncode not in (0, 1):  # the demo's own gate exit status is reported, not ours
            raise SystemExit("lm-eval-tbd demo failed")
    runs = {}
    for name, folder in (("toy student (demo)", "student_run"), ("toy null control (demo)", "base_run")):
        qs = tuple(q for t in ("demo_members", "demo_unseen") for q in load_run(out / folder, t).questions)
        runs[name] = TaskRun(name, None, qs).rescore(TBDParams())
    return runs


# ---- figures ------------------------------------------------------------------------------------


def condition_figures(run, windows, n_resamples: int, combined=None) -> dict:
    """Every score's ROC figures, TBD per window, paired differences against TBD, and the
    combined detector's out-of-fold figures (``combined``: extra decision arrays by name)."""
    from lm_eval_tbd.report import compare_scores
    from lm_eval_tbd.scores import TBDParams, decision_value
    from lm_eval_tbd.stats import UndefinedMetricError, paired_auc_difference, roc_report

    keep = ("auc", "auc_ci", "tpr@1%fpr", "tpr@5%fpr", "tpr@5%fpr_ci")
    scores = {k: {x: v[x] for x in keep} for k, v in compare_scores(run, n_resamples=n_resamples).items()}
    labels = [q.label for q in run.questions]
    tbd = [decision_value("tbd", v) for v in run.score_values("tbd")]
    decisions = {k: [decision_value(k, v) for v in run.score_values(k)] for k in scores}
    for name, values in (combined or {}).items():
        scores[name] = {x: v for x, v in roc_report(labels, values, n_resamples=n_resamples).items() if x in keep}
        decisions[name] = list(values)
    paired = {}
    for name, values in decisions.items():
        if name != "tbd":
            d = paired_auc_difference(labels, values, tbd, n_resamples=n_resamples)
            paired[name] = {"difference": d["difference"], "ci": d["ci"], "p": d["p_two_sided"]}
    out = {"n": len(labels), "scores": scores, "vs_tbd": paired, "tbd_windows": {}}
    for m in windows:
        try:
            r = compare_scores(run.rescore(TBDParams(max_tokens=m)), n_resamples=n_resamples)["tbd"]
            out["tbd_windows"][str(m)] = {x: r[x] for x in keep}
        except UndefinedMetricError:
            pass
    return out


def markdown(s: dict) -> str:
    from lm_eval_tbd.scores import SCORES

    lines = ["# Beyond the paper: every score, a combined detector, robustness (real student)", "",
             f"Command: `{s['command']}`; {s['seconds'] / 60:.1f} min for the new runs and the analysis, on "
             f"{s['settings']['cpus']} CPU cores. Builds on `real_student.md` (same student, questions, split).", "",
             "Scores: AUC [95% bootstrap CI] (member = positive); TPR at 5% FPR (strict). ΔAUC vs greedy TBD: paired "
             "bootstrap on the same questions, [95% CI]. `combined`: logistic regression on the scores of the pass, "
             "out of fold (5 stratified folds); `combined (calibrated before)`: cross-fitted from the last checkpoint's "
             "original wording. Conditions:", ""]
    for name, c in s["conditions"].items():
        lines.append(f"- **{name}**: {c['note']}")
    names = [n for n in list(SCORES) + ["combined", "combined (calibrated before)"]
             if any(n in c["scores"] for c in s["conditions"].values())]
    for name, c in s["conditions"].items():
        lines += ["", f"## {name}", "", "| score | AUC [95% CI] | TPR@1% | TPR@5% | ΔAUC vs TBD [95% CI] |", "|---|---|---|---|---|"]
        for n in names:
            r = c["scores"].get(n)
            if r is None:
                continue
            d = c["vs_tbd"].get(n)
            delta = f"{d['difference']:+.3f} [{d['ci'][0]:+.3f}, {d['ci'][1]:+.3f}]" if d else "-"
            lines.append(f"| {n} | {r['auc']:.3f} [{r['auc_ci'][0]:.2f}, {r['auc_ci'][1]:.2f}] | {r['tpr@1%fpr']:.3f} | "
                         f"{r['tpr@5%fpr']:.3f} | {delta} |")
        w = c["tbd_windows"]
        if w:
            lines.append("")
            lines.append("TBD by window: " + ", ".join(f"M={m}: {v['auc']:.3f}" for m, v in w.items()))
    lines += ["", "## Windows", "", f"Best fixed window over the distilled checkpoints (mean AUC): M = {s['best_window']['m']} "
              f"({s['best_window']['mean_auc']:.3f}); per window: "
              + ", ".join(f"M={m}: {a:.3f}" for m, a in s["best_window"]["by_window"].items()) + ".",
              "", "## Training data for the robustness variant", "",
              f"Unrelated data: {s['post_data']['n']} items from MATH-500 and GSM8K (overlap check against s1K: "
              f"{s['post_data']['overlap']})."]
    lines += ["", "## Verdicts", ""] + [f"- {v}" for v in s["verdicts"]]
    return "\n".join(lines) + "\n"


def verdicts(s: dict, last: str) -> list[str]:
    """Plain statements from the figures: does any score beat greedy TBD on the real student
    (paired CI excluding 0) without losing on the other controls; the bar of the issue."""
    out = []
    key = f"real student, epoch {last}, greedy"
    main = s["conditions"][key]
    tbd = main["scores"]["tbd"]
    beats = [n for n, d in main["vs_tbd"].items() if d["ci"][0] > 0]
    out.append(f"On {key}, TBD has AUC {tbd['auc']:.3f} and TPR@5%FPR {tbd['tpr@5%fpr']:.3f}.")
    if not beats:
        out.append("No score beats greedy TBD there with a paired CI excluding 0.")
    for n in beats:
        d, r = main["vs_tbd"][n], main["scores"][n]
        losses = [c for c, cond in s["conditions"].items() if n in cond["vs_tbd"] and cond["vs_tbd"][n]["ci"][1] < 0]
        bar = d["difference"] >= 0.10 and r["tpr@5%fpr"] >= 2 * tbd["tpr@5%fpr"]
        out.append(f"{n} beats TBD by {d['difference']:+.3f} [{d['ci'][0]:+.3f}, {d['ci'][1]:+.3f}] (TPR@5% "
                   f"{r['tpr@5%fpr']:.3f}); loses significantly on: {', '.join(losses) or 'no other condition'}; "
                   f"meets the bar (+0.10 AUC and 2x TPR@5%): {'yes' if bar else 'no'}.")
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data",
                        help="folder with s1k.jsonl, math500.jsonl, gsm8k_test.jsonl")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--work", type=Path, help="real_student.py's work folder (default: OUT/work-real-student[-quick])")
    parser.add_argument("--post-items", type=int, help="unrelated items for training after distillation (default 128)")
    parser.add_argument("--skip-demo", action="store_true", help="leave out the toy control")
    args = parser.parse_args(argv)
    cfg = dict(rs.QUICK if args.quick else rs.FULL)
    out = args.out.resolve()
    work = (args.work or out / ("work-real-student-quick" if args.quick else "work-real-student")).resolve()
    summary_file = out / ("real_student-quick.json" if args.quick else "real_student.json")
    if not summary_file.is_file() or not (work / "tasks").is_dir():
        raise SystemExit(f"run benchmarks/real_student.py{' --quick' if args.quick else ''} first ({summary_file}, {work})")
    rs_summary = json.loads(summary_file.read_text())
    cfg.update({k: rs_summary["settings"][k] for k in ("n", "max_tokens", "answer_tokens", "lr", "batch_size")})
    checkpoints = sorted(rs_summary["checkpoints"], key=int)
    last = checkpoints[-1]
    base_dir = next((p for p in work.glob("base-*") if (p / "config.json").is_file()), None)
    if base_dir is None:
        raise SystemExit(f"{work}: no base model folder (base-*); pass the same --base to real_student.py")
    windows = QUICK_WINDOWS if args.quick else WINDOWS
    n_resamples = 200 if args.quick else 1000
    import torch

    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    t0 = time.perf_counter()

    runs, notes = {}, {}
    for e in checkpoints:
        name = f"real student, epoch {e}, greedy" if e != "0" else "real student, base model (null control), greedy"
        runs[name] = rs.load(work / f"greedy-{e}", name, cfg["max_tokens"])
        notes[name] = f"{'the base model before distillation' if e == '0' else f'after {e} epochs'}, greedy decoding"
    key_last = f"real student, epoch {last}, greedy"
    if (work / f"sample-{last}" / "done.json").is_file():
        name = f"real student, epoch {last}, sampled"
        runs[name] = rs.load(work / f"sample-{last}", name, cfg["max_tokens"])
        notes[name] = "temperature-1 samples, the question's scores the mean over its samples"

    log("reworded questions: scoring the last checkpoint")
    rw_dir = reworded_tasks(work, base_dir, cfg, seed=0)
    rw_tasks = [f"rw_{t}" for t in rs.TASKS]
    score_tasks(work / f"epoch-{last}", rw_dir, rw_tasks, work / f"reworded-{last}", cfg)
    name = f"real student, epoch {last}, reworded questions"
    runs[name] = load_tasks(work / f"reworded-{last}", rw_tasks, name, cfg["max_tokens"], "rw_rs_members")
    notes[name] = "the same questions reworded (instruction prefix, whitespace, LaTeX delimiters, numbers), greedy"

    s1k_rows = rs.read_rows(args.data_dir / "s1k.jsonl")
    n_post = args.post_items or (8 if args.quick else 128)
    items, overlap = unrelated_items(args.data_dir, s1k_rows, n_post, seed=0)
    log(f"training after distillation: {len(items)} unrelated items, 2 epochs")
    post = post_train(work / f"epoch-{last}", work, items, cfg)
    for e, d in sorted(post.items()):
        score_tasks(d, work / "tasks", list(rs.TASKS), work / f"greedy-post-{e}", cfg)
        name = f"real student, epoch {last} + {e} epoch(s) on unrelated data"
        runs[name] = rs.load(work / f"greedy-post-{e}", name, cfg["max_tokens"])
        notes[name] = f"the last checkpoint fine-tuned {e} more epoch(s) on MATH-500/GSM8K solutions, greedy"

    if not args.skip_demo and not args.quick:
        for name, run in demo_runs(work).items():
            runs[name] = run
            notes[name] = "2-layer GPT-2 trained until it memorises (the demo), members vs unseen, greedy"

    from lm_eval_tbd.combine import cross_fit_decisions, fit_combined

    summary = {"command": "python benchmarks/beyond.py" + (" --quick" if args.quick else ""),
               "settings": {"cpus": os.cpu_count(), "windows": list(windows), "post_items": n_post, "reword_seed": 0},
               "post_data": {"n": len(items), "overlap": overlap}, "conditions": {}}
    calib = runs[key_last]
    robust = {k: r for k, r in runs.items() if "reworded" in k or "unrelated" in k}
    features = [f for f in fit_combined([calib], n_resamples=10).features
                if all(f in (q.scores or {}) for r in robust.values() for q in r.questions)]
    crossed = cross_fit_decisions(calib, robust, features=features)
    for name, run in runs.items():
        combined = {}
        try:
            combined["combined"] = cross_fit_decisions(run, {name: run})[name]
        except ValueError as err:
            log(f"  {name}: no combined detector ({err})")
        if name in crossed:
            combined["combined (calibrated before)"] = crossed[name]
        summary["conditions"][name] = {"note": notes[name], **condition_figures(run, windows, n_resamples, combined)}
        t = summary["conditions"][name]["scores"]["tbd"]
        log(f"{name}: TBD AUC {t['auc']:.3f}" + (f", combined {summary['conditions'][name]['scores']['combined']['auc']:.3f}"
                                                   if "combined" in summary["conditions"][name]["scores"] else ""))
    distilled = [k for k in summary["conditions"] if k.startswith("real student, epoch") and k.endswith("greedy")]
    by_window = {str(m): sum(summary["conditions"][k]["tbd_windows"][str(m)]["auc"] for k in distilled) / len(distilled)
                 for m in windows if all(str(m) in summary["conditions"][k]["tbd_windows"] for k in distilled)}
    best = max(by_window, key=by_window.get)
    summary["best_window"] = {"m": int(best), "mean_auc": by_window[best], "by_window": by_window}
    summary["verdicts"] = verdicts(summary, last)
    summary["seconds"] = round(time.perf_counter() - t0, 1)

    from lm_eval_tbd.atomic import write_json_atomic, write_text_atomic

    stem = "beyond-quick" if args.quick else "beyond"
    write_json_atomic(out / f"{stem}.json", summary)
    write_text_atomic(out / f"{stem}.md", markdown(summary))
    log(f"wrote {stem}.json and {stem}.md to {out} ({summary['seconds'] / 60:.1f} min)")
    for v in summary["verdicts"]:
        log(f"  {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
