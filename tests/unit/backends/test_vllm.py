"""lm_eval_tbd.backends.vllm: the conversion of a vLLM CompletionOutput into a generation record,
and the sampling parameters.

These tests feed `record_from_vllm` the fields of a CompletionOutput as vLLM fills them
(per-position dicts from token id to a Logprob with a `.logprob`, or to a float in older
releases), including malformed ones a real engine does not produce. The real engine runs in
tests/integration/test_vllm_cpu.py (vLLM's CPU build) and in `benchmarks/backend_agreement.py --other vllm`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest

from lm_eval_tbd.backends.vllm import record_from_vllm
from lm_eval_tbd.core.scores import tbd_score


@dataclass
class Logprob:  # the fields of vllm.logprobs.Logprob
    logprob: float
    rank: int | None = None
    decoded_token: str | None = None


def test_sampled_token_logprobs_in_order():
    ids = [11, 12, 2]
    lps = [{11: Logprob(math.log(1.0), 1)}, {12: Logprob(math.log(0.9), 1)}, {2: Logprob(math.log(0.5), 1)}]
    rec = record_from_vllm(ids, lps, "stop", "ab", max_tokens=300, prompt_n_tokens=7)
    assert rec.token_ids == ids and rec.finish_reason == "eos" and rec.backend == "vllm"
    assert tbd_score(rec.logprobs) == pytest.approx(0.455471, abs=1e-6)
    assert rec.prompt_n_tokens == 7


def test_older_float_logprobs_and_extra_entries():
    # logprobs=1 adds the top-1 beside the sampled token; only the sampled one is kept
    rec = record_from_vllm([5, 6], [{5: -0.1, 9: -0.05}, {6: -0.2}], "length", max_tokens=2)
    assert rec.logprobs == [-0.1, -0.2] and rec.finish_reason == "length"


@pytest.mark.parametrize(("ids", "lps", "finish", "message"), [
    ([5], None, "stop", "logprobs=0"),
    ([5, 6], [{5: -0.1}], "stop", "1 logprob entries for 2"),
    ([5], [{6: -0.1}], "stop", "do not include the sampled token 5"),
    ([5], [{5: float("nan")}], "stop", "NaN"),
    ([5], [{5: -0.1}], "abort", "abort"),
    ([5, 6], [{5: -0.1}, {6: -0.1}], "length", "2 tokens for max_tokens 1"),
    ([5], [{5: -0.1}], "length", "after 1 of 10 tokens"),
    ([5], [{5: Logprob(-0.9, 2)}], "stop", "rank 2 under the raw log-probs"),
])
def test_malformed_outputs_are_refused(ids, lps, finish, message):
    with pytest.raises(ValueError, match=message):
        record_from_vllm(ids, lps, finish, max_tokens=1 if message.startswith("2 tokens") else 10)


def test_sampled_records_state_their_seed_and_refuse_impossible_tokens():
    from lm_eval_tbd.backends.vllm import _decoding_params

    rec = record_from_vllm([5, 6], [{5: -1.5}, {6: -0.2, 7: -0.1}], "length", max_tokens=2, decoding="sample",
                           seed=123, sample_index=1)
    assert (rec.decoding, rec.seed, rec.sample_index, rec.logprobs) == ("sample", 123, 1, [-1.5, -0.2])
    with pytest.raises(ValueError, match="probability 0"):
        record_from_vllm([5], [{5: float("-inf")}], "length", max_tokens=1, decoding="sample", seed=1)
    greedy = _decoding_params({"decoding": "greedy"}, {})
    assert greedy["temperature"] == 0.0 and "seed" not in greedy
    sample = _decoding_params({"decoding": "sample"}, {"seed": 9})
    assert sample == {"temperature": 1.0, "top_p": 1.0, "top_k": -1, "min_p": 0.0, "seed": 9,
                      "repetition_penalty": 1.0, "frequency_penalty": 0.0, "presence_penalty": 0.0}
    with pytest.raises(ValueError, match="needs a seed"):
        _decoding_params({"decoding": "sample"}, {})


def test_seeded_sampling_on_the_cpu_build_needs_chunked_prefill_off():
    """vLLM's own SchedulerConfig: chunked prefill is on by default, and seeded sampling on the
    CPU build then stops the engine mid-run; the backend refuses it up front, naming the option."""
    config = pytest.importorskip("vllm.config")
    from lm_eval_tbd.backends.vllm import check_seeded_sampling
    from lm_eval_tbd.core.errors import _marked

    on = config.SchedulerConfig(max_model_len=4096, is_encoder_decoder=False)
    off = config.SchedulerConfig(max_model_len=4096, is_encoder_decoder=False, enable_chunked_prefill=False,
                                 max_num_batched_tokens=4096)
    with pytest.raises(ValueError, match="needs enable_chunked_prefill=False in --model_args") as err:
        check_seeded_sampling(on, on_cpu=True)
    assert _marked(err.value) is err.value  # one line from lm_eval, no traceback
    check_seeded_sampling(off, on_cpu=True)
    check_seeded_sampling(on, on_cpu=False)  # GPU generators rewind
    # data_parallel_size > 1: lm-eval keeps only the options in this process
    with pytest.raises(ValueError, match="needs enable_chunked_prefill=False"):
        check_seeded_sampling({"max_model_len": 4096}, on_cpu=True)
    check_seeded_sampling({"enable_chunked_prefill": False}, on_cpu=True)
    check_seeded_sampling({"enable_chunked_prefill": "False"}, on_cpu=True)
