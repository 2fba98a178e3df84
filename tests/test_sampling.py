"""Sampled decoding (tbd_decoding: sample, tbd_samples, tbd_seed): options, seeds, per-question
means, and the paper's split; hand-computed values where there are numbers."""

import math

import pytest

from lm_eval_tbd.core.data import train_test_split_indices
from lm_eval_tbd.core.record import GenerationRecord
from lm_eval_tbd.core.scores import TBDParams, tbd_score
from lm_eval_tbd.core.scores import mean_scores, score_record
from lm_eval_tbd.core.stats import paired_auc_difference
from lm_eval_tbd.harness.options import options_from_metadata, sample_seed


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


def test_record_states_its_decoding_and_reads_old_records_as_greedy():
    rec = GenerationRecord(token_ids=[5], logprobs=[-0.5], finish_reason="length", decoding="sample", seed=11,
                           sample_index=1)
    back = GenerationRecord.from_json(rec.to_json())
    assert (back.decoding, back.seed, back.sample_index) == ("sample", 11, 1)
    old = '{"v":3,"token_ids":[5],"logprobs":[-0.5],"finish_reason":"length"}'
    assert GenerationRecord.from_json(old).decoding == "greedy"
    with pytest.raises(ValueError, match="decoding must be one of"):
        GenerationRecord(token_ids=[5], logprobs=[-0.5], finish_reason="length", decoding="beam")


def test_mean_over_samples_hand_computed():
    # sample 1: p = [1.0, 0.5] -> S = {0.5} -> 0.5**0.6 = 0.659754
    # sample 2: p = [0.9, 0.5] -> (0.1**0.6 + 0.5**0.6) / 2 = 0.455471
    a = GenerationRecord(token_ids=[1, 2], logprobs=[0.0, math.log(0.5)], finish_reason="length")
    b = GenerationRecord(token_ids=[1, 3], logprobs=[math.log(0.9), math.log(0.5)], finish_reason="length")
    per = [score_record(r, TBDParams()) for r in (a, b)]
    assert per[0]["tbd"] == pytest.approx(0.659754, abs=1e-6)
    assert per[1]["tbd"] == pytest.approx(0.455471, abs=1e-6)
    mean = mean_scores(per)
    assert mean["tbd"] == pytest.approx((0.659754 + 0.455471) / 2, abs=1e-6)
    assert mean["gen_mean_logprob"] == pytest.approx((math.log(0.5) / 2 + (math.log(0.9) + math.log(0.5)) / 2) / 2)
    assert list(mean) == list(per[0])


def test_mean_leaves_undefined_baselines_out_of_their_mean():
    empty = GenerationRecord(token_ids=[], logprobs=[], finish_reason="eos")
    one = GenerationRecord(token_ids=[1], logprobs=[math.log(0.5)], finish_reason="length")
    mean = mean_scores([score_record(r, TBDParams()) for r in (empty, one)])
    assert mean["tbd"] == pytest.approx((0.0 + tbd_score([math.log(0.5)])) / 2)
    assert mean["gen_mean_logprob"] == pytest.approx(math.log(0.5))  # only the sample that has it
    with pytest.raises(ValueError):
        mean_scores([])


def test_train_test_split_equals_datasets_and_the_papers_numpy_permutation():
    import datasets
    import numpy as np

    train, test = train_test_split_indices(1000)
    perm = np.random.default_rng(42).permutation(1000)
    assert test == perm[:200].tolist() and train == perm[200:].tolist()
    ds = datasets.Dataset.from_dict({"i": list(range(1000))}).train_test_split(train_size=0.8, seed=42, shuffle=True)
    assert ds["train"]["i"] == train and ds["test"]["i"] == test
    assert sorted(train + test) == list(range(1000))
    # an odd size: floor(0.8 * 7) = 5 train rows, 2 test rows
    tr, te = train_test_split_indices(7, seed=3)
    ds = datasets.Dataset.from_dict({"i": list(range(7))}).train_test_split(train_size=0.8, seed=3, shuffle=True)
    assert (tr, te) == (ds["train"]["i"], ds["test"]["i"])
    with pytest.raises(ValueError):
        train_test_split_indices(1)


def test_paired_auc_difference_hand_computed():
    labels = [1, 1, 0, 0]
    a = [0.9, 0.8, 0.2, 0.1]  # AUC 1.0
    b = [0.9, 0.1, 0.8, 0.2]  # pairs (m, n): .9>.8 .9>.2 .1<.8 .1<.2 -> 2/4 = 0.5
    d = paired_auc_difference(labels, a, b, n_resamples=500)
    assert d["difference"] == pytest.approx(0.5)
    assert (d["auc_a"], d["auc_b"]) == (1.0, 0.5)
    assert d["ci"][0] <= 0.5 <= d["ci"][1]
    same = paired_auc_difference(labels, a, a, n_resamples=200)
    assert same["difference"] == 0.0 and same["ci"] == [0.0, 0.0] and same["p_two_sided"] == 1.0
    # seeded: the same call gives the same interval
    assert paired_auc_difference(labels, a, b, n_resamples=500)["ci"] == d["ci"]


def test_new_scores_hand_computed():
    from lm_eval_tbd.core.scores import SCORES, certain_share, mean_entropy, ratio_min_k

    assert mean_entropy([0.0, -math.log(2)]) == pytest.approx(0.346574, abs=1e-6)
    assert mean_entropy([0.0, -math.log(2), -5.0], max_tokens=2) == pytest.approx(0.346574, abs=1e-6)
    with pytest.raises(ValueError):
        mean_entropy([])
    with pytest.raises(ValueError):
        mean_entropy([0.5])
    lp = [0.0, 0.0, -0.5, 0.0, 0.0]
    ref = [-1.0, -0.2, 0.0, -0.3, -0.4]  # ratios lp - ref: [1.0, 0.2, -0.5, 0.3, 0.4]
    assert ratio_min_k(lp, ref, k=0.4) == pytest.approx((-0.5 + 0.2) / 2)
    assert ratio_min_k(lp, ref, k=0.2) == pytest.approx(-0.5)  # max(1, floor(5 * 0.2)) = 1 token
    p, q = [0.95, 0.99, 0.5, 0.92], [0.2, 0.99, 0.1, 0.4]
    assert certain_share([math.log(x) for x in p], [math.log(x) for x in q]) == 0.5
    with pytest.raises(ValueError, match="reference log-probs"):
        certain_share([0.0, 0.0], [0.0])
    assert not SCORES["gen_entropy"].higher_is_seen
    assert SCORES["ref_ratio_min_k"].higher_is_seen and SCORES["ref_certain_share"].higher_is_seen


def test_new_scores_come_from_the_record():
    rec = GenerationRecord(token_ids=[1, 2], logprobs=[math.log(0.95), math.log(0.5)], finish_reason="length",
                           vocab_logp_mean=[-0.1, -0.7], vocab_logp_std=[0.1, 0.2],
                           ref_logprobs=[math.log(0.2), math.log(0.5)])
    s = score_record(rec, TBDParams())
    assert s["gen_entropy"] == pytest.approx(0.4)
    assert s["ref_certain_share"] == 0.5
    assert s["ref_ratio_min_k"] == pytest.approx(0.0)  # ratios [log .95 - log .2, 0]: lowest 1 of 2
    # a server's record (no vocabulary statistics, no reference): the scores are left out, not faked
    bare = score_record(GenerationRecord(token_ids=[1], logprobs=[-0.1], finish_reason="length"), TBDParams())
    assert not {"gen_entropy", "ref_ratio_min_k", "ref_certain_share"} & set(bare)
