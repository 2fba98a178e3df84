"""The speed benchmark's checks of the work each run did (its generations, read back), its
summary (statistics per configuration, comparisons, verdicts) and its tables, from the
measurements that ``benchmarks._speed_runs`` collects."""

from __future__ import annotations

import json
import os
import platform
from importlib import metadata as importlib_metadata
from pathlib import Path

from benchmarks._speed_setup import BenchmarkError, Config, prompt
from benchmarks._stats import compare, describe, fmt, markdown_table, print_table, spread
from lm_eval_tbd.core.samples import load_run, samples_path

TARGET_RATIO = 1.05  # TBD within 5% of plain generation
TARGETS = ("wall_s", "generation_s", "peak_rss_mib")
#: summary key -> (numerator, denominator, title, metrics held to TARGET_RATIO); shown when both ran
COMPARISONS = {"tbd_vs_plain": ("tbd", "plain", "TBD vs plain greedy generation", TARGETS),
               "tbd_sample_vs_plain_sample": ("tbd_sample", "plain_sample", "TBD vs plain sampling", TARGETS),
               "scored_length_saving": ("tbd", "tbd_long", "Stopping at the scored length", ()),
               "allocator_saving": ("tbd_malloc", "tbd", "glibc allocator settings (lm_eval_tbd.backends.cpu_allocator)", ())}
#: comparisons reported as a saving (1 - ratio) rather than against a target
SAVINGS = ("scored_length_saving", "allocator_saving")
#: comparisons without a target whose two sides must still do the same work (identical greedy texts)
CHECKED_WITHOUT_TARGET = ("allocator_saving",)
#: measured metric -> (label, format)
METRICS = {"wall_s": ("wall s", "{:.2f}"), "generation_s": ("gen s", "{:.2f}"), "generation_cpu_s": ("gen CPU s", "{:.2f}"),
           "peak_rss_mib": ("peak RSS MiB", "{:.0f}"), "ms_per_step": ("gen ms/step", "{:.1f}"),
           "evaluate_s": ("evaluate() s", "{:.2f}"), "lm_eval_total_evaluation_time_s": ("lm_eval total s", "{:.2f}"),
           "requests_rss_growth_mib": ("RSS growth in gen MiB", "{:.0f}"), "user_cpu_s": ("user CPU s", "{:.2f}")}
#: metrics in the comparison tables (the JSON holds them all)
SHOWN = ("wall_s", "generation_s", "generation_cpu_s", "ms_per_step", "peak_rss_mib", "requests_rss_growth_mib")
#: work done per run (the same in every round: checked)
WORK = ("decode_steps", "generated_tokens", "eos_ended")


def summarise(configs, measurements: list[dict]) -> dict:
    """``{medians, stats, <comparison key>..., within_target}``: :func:`describe` per configuration
    and metric (``medians`` holds just the medians); per comparison whose two configurations ran,
    :func:`compare` (plus ``saving`` = 1 - ratio for the ``SAVINGS``); and per target
    metric whether the ratio of medians is within TARGET_RATIO."""
    named = {c.key: c.name for c in configs}
    stats = {c.name: {m: describe(r.get(m) for r in measurements if r["config"] == c.name) for m in (*METRICS, *WORK)}
             for c in configs}
    summary = {"medians": {c: {m: s["median"] for m, s in v.items()} for c, v in stats.items()}, "stats": stats,
               "within_target": {"target_ratio": TARGET_RATIO}}
    for key, (num, den, title, targets) in COMPARISONS.items():
        if num not in named or den not in named:
            continue
        comp = compare(measurements, named[num], named[den], METRICS)
        if key in SAVINGS:
            for v in comp.values():
                v["saving"] = None if v["ratio_of_medians"] is None else 1 - v["ratio_of_medians"]
        summary[key] = {"title": title, "numerator": named[num], "denominator": named[den], **comp}
        if targets:  # an unmeasured ratio counts as missed
            summary["within_target"][key] = {m: comp[m]["ratio_of_medians"] is not None
                                             and comp[m]["ratio_of_medians"] <= TARGET_RATIO for m in targets}
    return summary


def missed_targets(summary: dict) -> list[str]:
    """``comparison: metric`` for every target not met."""
    return [f"{k}: {m}" for k, v in summary["within_target"].items() if isinstance(v, dict) for m, ok in v.items() if not ok]


def tables(configs, summary: dict) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, headers, rows) of the overview, then of each comparison that ran: per metric, each
    configuration's n, min, median [IQR], the ratio of medians, the paired ratios' median [IQR]."""
    st = summary["stats"]
    overview = [[c.name, c.decoding, str(st[c.name]["wall_s"]["n"]),
                 *(spread(st[c.name][m], METRICS[m][1]) for m in ("wall_s", "generation_s", "peak_rss_mib", "ms_per_step")),
                 *(fmt(st[c.name][k]["median"], "{:.0f}") for k in WORK)] for c in configs]
    out = [("Configurations: median [IQR] over rounds", ["config", "decoding", "n", "wall s", "gen s", "peak RSS MiB",
                                                         "gen ms/step", "decode steps", "tokens", "ended by EOS"], overview)]
    for key, (_, _, title, targets) in COMPARISONS.items():
        if key not in summary:
            continue
        s, rows = summary[key], []
        for m in SHOWN:
            (label, spec), v = METRICS[m], s[m]
            verdict = ("met" if summary["within_target"][key][m] else "NOT met") if m in targets else ""
            if key in SAVINGS:
                verdict = fmt(None if v["saving"] is None else 100 * v["saving"], "{:.1f}%")
            rows.append([label, f"{v['denominator']['n']}/{v['numerator']['n']}",
                         *(f"{fmt(v[side]['min'], spec)} · {spread(v[side], spec)}" for side in ("denominator", "numerator")),
                         fmt(v["ratio_of_medians"], "{:.3f}"), spread(v["paired_ratio"], "{:.3f}"), verdict])
        last = "saving" if key in SAVINGS else f"target ≤ {TARGET_RATIO}"
        out.append((f"{title}: {s['numerator']} vs {s['denominator']}",
                    ["metric", "n", f"{s['denominator']}: min · median [IQR]", f"{s['numerator']}: min · median [IQR]",
                     "ratio of medians", "paired ratio: median [IQR]", last], rows))
    return out


def markdown(configs, summary: dict, settings: dict, stem: str = "speed") -> str:
    """``STEM.md``: the settings in words, then the tables."""
    model, mach = settings["model"], settings["machine"]
    head = [f"# TBD speed and memory vs plain generation{' (--quick: a smoke test, not a measurement)' if settings['quick'] else ''}",
            "", f"Model: {model['name']}, float32, CPU, {settings['threads']} torch thread(s) per process. "
            f"{settings['questions']} questions from `{settings['data']}`, batch size {settings['batch_size']}, "
            f"{settings['runs']} interleaved round(s) (+1 warm-up). Machine: {mach['cpu_count']} CPUs, torch "
            f"{mach['torch']}, transformers {mach['transformers']}, lm_eval {mach['lm_eval']}.", "",
            "*wall*: the whole `lm_eval` process; *gen*: the model's request call (`generate_until` / "
            "`generate_logprobs`), wall and CPU time; *peak RSS*: the process's maximum resident set; *gen ms/step*: "
            "generation time per decode step (decode steps: the longest answer of each batch, summed). "
            "n: rounds; IQR: interquartile range over rounds; paired ratio: per round. Equal work: "
            + "; ".join(f"{k}: {v['check']}" for k, v in settings["equal_work"].items()) + "."]
    body = [f"## {t}\n\n{markdown_table(h, r)}" for t, h, r in tables(configs, summary)]
    return "\n\n".join(["\n".join(head), *body, f"Raw measurements: `{stem}.json`.\n"])


def print_tables(configs, summary: dict) -> None:
    """The tables on the terminal, then the verdicts."""
    for title, headers, rows in tables(configs, summary):
        print_table(title, headers, rows)
    for key, verdicts in summary["within_target"].items():
        if isinstance(verdicts, dict):
            print(f"{key}: within {100 * (TARGET_RATIO - 1):.0f}%: "
                  + ", ".join(f"{m} {'yes' if ok else 'NO'}" for m, ok in verdicts.items()))


def machine_info() -> dict:
    """CPU count, platform and the versions that matter."""
    def version(pkg):
        try:
            return importlib_metadata.version(pkg)
        except importlib_metadata.PackageNotFoundError:
            return None

    return {"cpu_count": os.cpu_count(), "cpus_available": len(os.sched_getaffinity(0)), "platform": platform.platform(),
            "python": platform.python_version(),
            **{p: version(p) for p in ("torch", "transformers", "lm_eval", "datasets", "lm_eval_tbd")}}


# --------------------------------------------------------------------------- the work done


def read_generations(c: Config, run_dir: Path, tok) -> dict[int, dict]:
    """Per doc id: question, text, generated tokens with EOS (TBD: exact, from ``load_run``; plain:
    the text re-encoded, +1 when shorter than M) and how it ended."""
    if c.kind == "tbd":
        return {q.doc_id: {"question": q.question, "text": q.record.text, "tokens": q.record.n_tokens,
                           "finish": q.record.finish_reason, "decoding": q.record.decoding}
                for q in load_run(run_dir, c.task).questions}
    out = {}
    for line in samples_path(run_dir, c.task).read_text(encoding="utf-8").splitlines():
        s = json.loads(line)
        text = s["resps"][0][0]
        n = len(tok(text, add_special_tokens=False)["input_ids"])
        out[s["doc_id"]] = {"question": s["doc"]["question"], "text": text, "tokens": min(n + 1, c.max_tokens),
                            "finish": "length" if n >= c.max_tokens else "eos"}
    return out


def work_done(gens: dict[int, dict], tok, batch_size: int) -> dict:
    """Generated tokens, EOS-ended answers, and decode steps: the longest answer of each batch,
    summed over batches formed as lm_eval and TBD form them (longest prompt first)."""
    prompts = {id(g): prompt(tok, g["question"]) for g in gens.values()}
    order = sorted(gens.values(), key=lambda g: (-len(tok(prompts[id(g)], add_special_tokens=False)["input_ids"]),
                                                 prompts[id(g)]))
    steps = sum(max(g["tokens"] for g in order[i:i + batch_size]) for i in range(0, len(order), batch_size))
    return {"generated_tokens": sum(g["tokens"] for g in order), "decode_steps": steps,
            "eos_ended": sum(g["finish"] == "eos" for g in order)}


def check_generations(c: Config, gens: dict, n_questions: int, reference: dict | None, allow_eos: bool) -> None:
    """The run answered every question, the same as in earlier rounds; TBD records are well formed."""
    if len(gens) != n_questions:
        raise BenchmarkError(f"{c.name}: {len(gens)} generations for {n_questions} questions")
    for d, g in gens.items():
        if c.kind == "tbd" and (g["tokens"] > c.max_tokens or g["decoding"] != c.decoding or (
                g["finish"] == "length" and g["tokens"] != c.max_tokens) or (g["finish"] == "eos" and not allow_eos)):
            raise BenchmarkError(f"{c.name}: doc {d} generated {g['tokens']} tokens ({g['finish']}, {g['decoding']}); "
                                 f"expected {c.max_tokens}, fewer only at EOS{'' if allow_eos else ' (none for the built model)'}, "
                                 f"decoding {c.decoding}")
        if reference is not None and g["text"] != reference[d]["text"]:
            raise BenchmarkError(f"{c.name}: doc {d} generated other text than in an earlier round, so rounds did not "
                                 f"repeat the same work: {g['text'][-80:]!r} vs {reference[d]['text'][-80:]!r}")


def check_equal_work(configs: list[Config], gens: dict, work: dict, tolerance: float) -> dict:
    """Per TBD-vs-plain (or allocator) comparison that runs, what was checked: greedy, identical
    texts (then the plain run's work is TBD's exact count: the same tokens); sampled, decode steps
    within ``tolerance``."""
    by_key, checked = {c.key: c for c in configs}, {}
    for key, (t, p, _, targets) in COMPARISONS.items():
        if (not targets and key not in CHECKED_WITHOUT_TARGET) or t not in by_key or p not in by_key:
            continue
        tbd, plain = by_key[t].name, by_key[p].name
        if by_key[p].decoding == "greedy":
            diff = [d for d in gens[plain] if gens[plain][d]["text"] != gens[tbd][d]["text"]]
            if diff:
                a, b = gens[plain][diff[0]]["text"], gens[tbd][diff[0]]["text"]
                at = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
                raise BenchmarkError(f"{plain}: {len(diff)} of {len(gens[plain])} greedy generations differ from {tbd}'s, "
                                     f"so the two did not do the same work. First, doc {diff[0]} from character {at}: "
                                     f"{plain} {a[at:at + 60]!r} vs {tbd} {b[at:at + 60]!r}")
            work[plain] = work[tbd]
            checked[key] = {"check": f"every {plain} generation equals the {tbd} one"}
            continue
        steps = {n: work[n]["decode_steps"] for n in (plain, tbd)}
        off = steps[tbd] / steps[plain] - 1
        if abs(off) > tolerance:
            raise BenchmarkError(f"{tbd} ran {steps[tbd]} decode steps and {plain} {steps[plain]} ({off:+.1%}), beyond "
                                 f"--sample-tolerance {tolerance:.0%}: the sampled configurations did not do the same "
                                 "work (more --questions make the longest answer per batch steadier)")
        checked[key] = {"check": f"decode steps within {tolerance:.0%}", "decode_steps": steps, "difference": off}
    return checked
