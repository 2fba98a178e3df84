"""The speed benchmark's helpers without running a model: statistics, decode-step counting, the
equal-work checks, its options, and the package pieces it reuses (command builder, samples reader)."""

import json

import pytest

from benchmarks import _speed_report, _stats, speed
from benchmarks._speed_setup import BenchmarkError, Config


def test_describe_and_paired_ratios():
    d = _stats.describe([4.0, None, 1.0, 3.0, 2.0])
    assert d == {"n": 4, "min": 1.0, "median": 2.5, "q1": 1.75, "q3": 3.25, "iqr": 1.5, "max": 4.0}
    assert _stats.describe([None])["n"] == 0 and _stats.describe([5.0])["iqr"] == 0.0
    runs = [{"round": r, "config": c, "t": v} for r, (a, b) in enumerate([(10.0, 11.0), (20.0, 21.0), (30.0, 30.0)])
            for c, v in (("plain", a), ("tbd", b))]
    assert _stats.paired_ratios(runs, "tbd", "plain", "t") == [1.1, 1.05, 1.0]
    comp = _stats.compare(runs, "tbd", "plain", ["t"])["t"]
    assert comp["ratio_of_medians"] == 21.0 / 20.0
    assert comp["paired_ratio"]["median"] == 1.05 and comp["paired_ratio"]["n"] == 3
    assert comp["numerator"]["min"] == 11.0 and comp["denominator"]["median"] == 20.0
    assert _stats.markdown_table(["a", "b"], [["1", "2"]]) == "| a | b |\n|---|---|\n| 1 | 2 |"


@pytest.fixture(scope="module")
def tok():
    from lm_eval_tbd.demo.tiny_model import train_tokenizer

    return train_tokenizer(["a short question", "a much longer question with many more words in it"], vocab_size=300)


def _gens(questions_tokens: dict[str, int], text=lambda q: q) -> dict[int, dict]:
    return {i: {"question": q, "text": text(q), "tokens": n, "finish": "eos", "decoding": "sample"}
            for i, (q, n) in enumerate(questions_tokens.items())}


def test_decode_steps_follow_the_longest_answer_of_each_batch(tok):
    # batches are formed longest prompt first: {long 1, long 2} then {short 1, short 2}
    gens = _gens({"short 1": 5, "long one long one long one 1": 3, "short 2": 9, "long one long one long one 2": 7})
    assert _speed_report.work_done(gens, tok, batch_size=2) == {"generated_tokens": 24, "decode_steps": 7 + 9, "eos_ended": 4}
    assert _speed_report.work_done(gens, tok, batch_size=4)["decode_steps"] == 9


def _configs(decoding: str):
    suffix = "" if decoding == "greedy" else "_sample"
    return [Config("plain" + suffix, f"plain{suffix}@8", "plain", decoding, 8, "p"),
            Config("tbd" + suffix, f"tbd{suffix}@8", "tbd", decoding, 8, "t")]


def test_sampled_work_must_agree_within_the_tolerance():
    configs = _configs("sample")
    work = {"plain_sample@8": {"decode_steps": 100}, "tbd_sample@8": {"decode_steps": 104}}
    checked = _speed_report.check_equal_work(configs, {}, work, tolerance=0.05)
    assert checked["tbd_sample_vs_plain_sample"]["difference"] == pytest.approx(0.04)
    work["tbd_sample@8"]["decode_steps"] = 120
    with pytest.raises(BenchmarkError, match="--sample-tolerance 5%"):
        _speed_report.check_equal_work(configs, {}, work, tolerance=0.05)


def test_greedy_generations_must_be_identical():
    configs = _configs("greedy")
    gens = {"plain@8": _gens({"q": 8}), "tbd@8": _gens({"q": 8})}
    work = {"plain@8": {"decode_steps": 7}, "tbd@8": {"decode_steps": 8}}
    _speed_report.check_equal_work(configs, gens, work, tolerance=0.0)
    assert work["plain@8"] == work["tbd@8"]  # the same tokens: TBD's exact count holds for both
    gens["tbd@8"] = _gens({"q": 8}, text=lambda q: q + " and more")
    with pytest.raises(BenchmarkError, match="greedy generations differ"):
        _speed_report.check_equal_work(configs, gens, work, tolerance=0.0)


def test_tbd_records_and_rounds_are_checked():
    c = Config("tbd", "tbd@8", "tbd", "greedy", 8, "t")
    ok = {0: {"text": "x", "tokens": 8, "finish": "length", "decoding": "greedy"}}
    _speed_report.check_generations(c, ok, 1, None, allow_eos=False)
    with pytest.raises(BenchmarkError, match="fewer only at EOS"):
        _speed_report.check_generations(c, {0: {**ok[0], "tokens": 3, "finish": "eos"}}, 1, None, allow_eos=False)
    with pytest.raises(BenchmarkError, match="earlier round"):
        _speed_report.check_generations(c, ok, 1, {0: {**ok[0], "text": "y"}}, allow_eos=False)


def test_verdicts_and_missed_targets():
    configs = _configs("greedy")
    base = {"generation_cpu_s": 1.0, "ms_per_step": 1.0, "requests_rss_growth_mib": 1.0, "decode_steps": 8}
    runs = [{"round": r, "config": c.name, **base, "wall_s": 10.0 * f, "generation_s": 5.0 * f, "peak_rss_mib": 700.0}
            for r in range(3) for c, f in zip(configs, (1.0, 1.08))]
    summary = _speed_report.summarise(configs, runs)
    assert summary["within_target"]["tbd_vs_plain"] == {"wall_s": False, "generation_s": False, "peak_rss_mib": True}
    assert _speed_report.missed_targets(summary) == ["tbd_vs_plain: wall_s", "tbd_vs_plain: generation_s"]
    assert summary["stats"]["tbd@8"]["wall_s"]["n"] == 3 and "tbd_sample_vs_plain_sample" not in summary
    text = _speed_report.markdown(configs, summary, {
        "quick": False, "model": {"name": "m"}, "threads": 1, "questions": 2, "data": "d.jsonl", "batch_size": 2,
        "runs": 3, "machine": {"cpu_count": 2, "torch": "t", "transformers": "t", "lm_eval": "t"},
        "equal_work": {"tbd_vs_plain": {"check": "identical"}}})
    assert "| wall s | 3/3 | 10.00 · 10.00 [10.00–10.00] | 10.80 · 10.80 [10.80–10.80] | 1.080 |" in text
    assert "NOT met" in text


@pytest.mark.parametrize("args, message", [
    (["--configs", "plain,tbd_lng"], "--configs"),
    (["--max-tokens", "300", "--max-tokens-long", "200"], "--max-tokens-long 200"),
    (["--model-dir", "nowhere"], "--model-dir nowhere"),
    (["--data", "missing.jsonl"], "--data missing.jsonl"),
    (["--name", "../elsewhere"], "--name '../elsewhere'"),
    (["--name", "a b"], "--name 'a b': use letters"),
])
def test_bad_options_are_named(args, message, tmp_path, capsys):
    data = tmp_path / "q.jsonl"
    data.write_text(json.dumps({"id": 1, "question": "q"}) + "\n")
    with pytest.raises(SystemExit) as exc:
        speed.parse_args(["--data", str(data), *args])
    assert exc.value.code == 2 and message in capsys.readouterr().err


def test_output_stem_defaults_by_model_and_follows_name(tmp_path):
    data = tmp_path / "q.jsonl"
    data.write_text(json.dumps({"id": 1, "question": "q"}) + "\n")
    assert speed.parse_args(["--data", str(data)]).stem == "speed"
    assert speed.parse_args(["--data", str(data), "--smollm2"]).stem == "speed-smollm2"
    assert speed.parse_args(["--data", str(data), "--smollm2", "--name", "alloc"]).stem == "alloc"
    assert "tbd_malloc" not in speed.parse_args(["--data", str(data)]).configs  # opt-in


def test_command_builder_and_samples_reader(tmp_path):
    from lm_eval_tbd.core.samples import samples_path
    from lm_eval_tbd.harness.runner import lm_eval_command

    assert lm_eval_command("hf", ["t"], "out")[1:3] == ["-m", "lm_eval"]
    cmd = lm_eval_command("hf", ["t"], "out", launcher=["python", "shim.py"])
    assert cmd[:4] == ["python", "shim.py", "--model", "hf"]
    model = tmp_path / "model"
    model.mkdir()
    for stamp in ("2026-01-01T10-00-00.1", "2026-01-02T10-00-00.1"):
        (model / f"samples_speed_plain_8_{stamp}.jsonl").write_text("{}\n")
    (model / "samples_speed_plain_80_2026-01-03T10-00-00.1.jsonl").write_text("{}\n")
    assert samples_path(tmp_path, "speed_plain_8").name == "samples_speed_plain_8_2026-01-02T10-00-00.1.jsonl"
    with pytest.raises(FileNotFoundError, match="speed_tbd_8"):
        samples_path(tmp_path, "speed_tbd_8")


def test_exit_status(monkeypatch, tmp_path, capsys):
    data = tmp_path / "q.jsonl"
    data.write_text(json.dumps({"id": 1, "question": "q"}) + "\n")
    summary = {"within_target": {"target_ratio": 1.05, "tbd_vs_plain": {"wall_s": False, "peak_rss_mib": True}}}
    monkeypatch.setattr(speed, "run_benchmark", lambda a: {"summary": summary})
    assert speed.main(["--data", str(data)]) == 0
    assert speed.main(["--data", str(data), "--fail-on-target"]) == 3
    assert "tbd_vs_plain: wall_s" in capsys.readouterr().err

    def fail(a):
        raise BenchmarkError("tbd@8: a check did not hold")

    monkeypatch.setattr(speed, "run_benchmark", fail)
    assert speed.main(["--data", str(data)]) == 1
    assert "a check did not hold" in capsys.readouterr().err
