"""lm_eval_tbd.core.options: the tasks' tbd_* metadata options, validated: TBD parameters, flags,
sampled decoding (tbd_decoding, tbd_samples, tbd_seed) and its per-sample seeds, server arguments."""

import pytest

from lm_eval_tbd.core.options import options_from_metadata, params_from_metadata, sample_seed
from lm_eval_tbd.core.scores import TBDParams


def test_params_default_to_the_paper():
    assert params_from_metadata({"version": 1.0}) == TBDParams(1.0, 0.6, 300)


def test_params_from_metadata_values():
    assert params_from_metadata({"tbd_tau": 0.9, "tbd_alpha": "1", "tbd_max_tokens": 100.0}) == TBDParams(0.9, 1.0, 100)
    assert params_from_metadata({"tbd_max_tokens": "3e2"}).max_tokens == 300


def test_options_reject_unknown_tbd_keys_and_bad_flags():
    opts = options_from_metadata({"tbd_input_scores": "true", "tbd_ref_model": "/base", "pretrained": "x"})
    assert opts.input_scores and opts.ref_model == "/base"
    assert not options_from_metadata({}).input_scores  # off by default: no prompt-wide logits
    with pytest.raises(ValueError, match=r"unknown metadata key\(s\) \['tbd_max_token'\]"):
        options_from_metadata({"tbd_max_token": 5})
    with pytest.raises(ValueError, match="'tbd_input_scores' must be true or false"):
        options_from_metadata({"tbd_input_scores": "yes please"})


@pytest.mark.parametrize(
    "metadata, message",
    [
        ({"tbd_tau": "high"}, "task t: metadata 'tbd_tau' must be a number"),
        ({"tbd_tau": 2}, "task t: tbd_tau must be a number in"),
        ({"tbd_max_tokens": 2.5}, "task t: tbd_max_tokens must be an integer"),
        ({"tbd_alpha": -1}, "task t: tbd_alpha must be"),
        ({"tbd_alpha": "inf"}, "task t: metadata 'tbd_alpha' must be a finite number"),
        ({"tbd_tau": True}, "task t: metadata 'tbd_tau' must be a finite number"),
    ],
)
def test_bad_metadata_names_key_and_task(metadata, message):
    with pytest.raises(ValueError, match=message):
        params_from_metadata(metadata, task="t")


# ---- sampled decoding ----


def test_decoding_options_default_to_greedy_one_generation():
    o = options_from_metadata({})
    assert (o.decoding, o.samples, o.seed) == ("greedy", 1, 0)
    o = options_from_metadata({"tbd_decoding": "sample", "tbd_samples": "3", "tbd_seed": 7})
    assert (o.decoding, o.samples, o.seed) == ("sample", 3, 7)


@pytest.mark.parametrize("metadata, message", [
    ({"tbd_decoding": "beam"}, "'tbd_decoding' must be one of ['greedy', 'sample']"),
    ({"tbd_samples": 2}, "needs 'tbd_decoding': 'sample'"),
    ({"tbd_decoding": "sample", "tbd_samples": 0}, "'tbd_samples' must be an integer >= 1"),
    ({"tbd_decoding": "sample", "tbd_samples": 1.5}, "'tbd_samples' must be an integer >= 1"),
    ({"tbd_decoding": "sample", "tbd_samples": True}, "'tbd_samples' must be an integer >= 1"),
    ({"tbd_seed": -1}, "'tbd_seed' must be an integer >= 0"),
    ({"tbd_seed": "x"}, "'tbd_seed' must be an integer >= 0"),
    ({"tbd_decoding": "sample", "tbd_server_args": {"top_k": 40}}, "only the neutral value 0 or -1"),
    ({"tbd_decoding": "sample", "tbd_server_args": {"min_p": 0.05}}, "only the neutral value 0.0"),
    ({"tbd_server_args": {"seed": 1}}, "may not set ['seed']"),
    ({"tbd_server_args": {"top_p": 0.9}}, "may not set ['top_p']"),
])
def test_bad_decoding_options_name_the_key(metadata, message):
    with pytest.raises(ValueError, match="task t: ") as err:
        options_from_metadata(metadata, task="t")
    assert message in str(err.value)


def test_neutral_truncations_are_allowed_for_servers():
    o = options_from_metadata({"tbd_decoding": "sample", "tbd_server_args": {"top_k": 0, "min_p": 0.0, "repeat_penalty": 1.0}})
    assert o.server_args == {"top_k": 0, "min_p": 0.0, "repeat_penalty": 1.0}
    # truncations keep the greedy choice, so greedy runs may leave a server's own
    assert options_from_metadata({"tbd_server_args": {"top_k": 40, "min_p": 0.05}}).server_args == {"top_k": 40, "min_p": 0.05}


def test_sample_seed_is_stable_and_separates_questions_samples_and_seeds():
    s = sample_seed(0, "What is 2+2?", 0)
    assert s == sample_seed(0, "What is 2+2?", 0)
    assert 0 <= s < 2**63
    others = {sample_seed(0, "What is 2+2?", 1), sample_seed(1, "What is 2+2?", 0), sample_seed(0, "What is 2+3?", 0)}
    assert s not in others and len(others) == 3
    # sha256 of "0\0" "0\0" "What is 2+2?": pinned so a change of derivation cannot pass silently
    import hashlib

    digest = hashlib.sha256(b"0\x000\x00What is 2+2?").digest()
    assert s == int.from_bytes(digest[:8], "big") & (2**63 - 1)


# ---- server arguments (the OpenAI-compatible backend) ----


@pytest.mark.parametrize(("server_args", "message"), [
    ({"max_gen_toks": 5}, "may not set"),
    ({"until": ["\n"]}, "may not set"),
    ({"stop": ["x"], "logit_bias": {}}, "may not set"),
    ({"repeat_penalty": 1.1}, "only the neutral value 1.0"),
    ({"frequency_penalty": 0.5}, "only the neutral value 0.0"),
    (["repeat_penalty"], "JSON object"),
])
def test_server_args_that_would_change_the_score_are_refused(server_args, message):
    with pytest.raises(ValueError, match=message):
        options_from_metadata({"tbd_server_args": server_args}, task="t")


def test_neutral_server_args_are_accepted():
    opts = options_from_metadata({"tbd_server_args": {"repeat_penalty": 1.0, "top_k": 40}})
    assert opts.server_args == {"repeat_penalty": 1.0, "top_k": 40}


@pytest.mark.parametrize("key, meant", [
    ("tdb_alpha", "tbd_alpha"), ("TBD_tau", "tbd_tau"), ("tbdalpha", "tbd_alpha"), ("tbd-seed", "tbd_seed"),
    ("tb_max_tokens", "tbd_max_tokens"), ("tbd_alpa", "tbd_alpha"), ("tbd_data", "tbd_data_file"),
])
def test_a_key_one_slip_from_an_option_is_refused_with_a_did_you_mean(key, meant):
    # {"tdb_alpha": 0.1} scored with alpha 0.6 and exited 0: lm-eval passes any key on
    with pytest.raises(ValueError, match=f"task t: unknown metadata key\\(s\\) \\['{key}'\\]: did you mean '{meant}'"):
        options_from_metadata({key: 0.1}, task="t")


def test_lm_evals_own_keys_and_model_arguments_are_left_alone():
    keys = ["version", "pretrained", "dtype", "config_source", "max_tokens", "max_length", "seed", "samples",
            "tokenizer", "base_url", "num_concurrent", "max_gen_toks", "trust_remote_code", "alpha"]
    assert options_from_metadata(dict.fromkeys(keys, "1")).params == TBDParams()


@pytest.mark.parametrize("value", [123, "", "  ", ["q.jsonl"]])
def test_the_question_file_must_be_a_path(value):
    # 123 gave "TypeError: expected str, bytes or os.PathLike object" from inside lm_eval
    with pytest.raises(ValueError, match="task t: metadata 'tbd_data_file' must be the path of a JSON Lines"):
        options_from_metadata({"tbd_data_file": value}, task="t")
