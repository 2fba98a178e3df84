"""The TBD task: a ConfigurableTask whose requests are ``generate_logprobs`` (generation, greedy
or sampled, with per-token log-probabilities) and whose metrics are the TBD score and, when
questions carry labels, ROC AUC and TPR@1%FPR.

Its options (:mod:`lm_eval_tbd.core.options`) come from the task's ``metadata`` (YAML) and, per
run, from ``--metadata``, which lm-eval merges over the YAML: ``tbd_tau``, ``tbd_alpha``,
``tbd_max_tokens``; ``tbd_decoding`` ("greedy", the default, or "sample": temperature 1 on the raw
distribution), ``tbd_samples`` (samples per question with sampled decoding; the scores are their
mean) and ``tbd_seed`` (the base seed of sampled decoding); ``tbd_input_scores`` (default false:
also score the question's own tokens), ``tbd_ref_model`` (a reference model path, typically the
base model before distillation, for calibrated scores) and ``tbd_server_args`` (extra request
fields for OpenAI-compatible servers).
"""

from __future__ import annotations

import logging
import statistics

from lm_eval.api.instance import Instance
from lm_eval.api.registry import get_aggregation
from lm_eval.api.task import ConfigurableTask

from lm_eval_tbd import patches
from lm_eval_tbd.core.errors import user_error
from lm_eval_tbd.core.options import options_from_metadata, sample_seed
from lm_eval_tbd.core.record import REQUEST_TYPE, GenerationRecord
from lm_eval_tbd.core.scores import decision_value, mean_scores, score_record, tbd_underflows
from lm_eval_tbd.harness.metrics import METRICS  # importing registers the metrics and aggregations

log = logging.getLogger(__name__)

__all__ = ["TBDTask"]

def _non_greedy_settings(gen_kwargs: dict) -> list[str]:
    """Settings (e.g. from --gen_kwargs meant for the ordinary tasks of the same run) that TBD
    ignores: its decoding is set by tbd_decoding alone, up to tbd_max_tokens, with no stop strings."""
    ignored = []
    if gen_kwargs.get("do_sample") not in (None, False, "false", "False"):
        ignored.append("do_sample")
    if float(gen_kwargs.get("temperature") or 0.0) != 0.0:
        ignored.append("temperature")
    ignored += [k for k in ("until", "max_gen_toks", "top_p", "top_k") if gen_kwargs.get(k)]
    return ignored


def _options(metadata, task: str):
    try:
        return options_from_metadata(metadata, task=task)
    except ValueError as err:
        raise user_error(err) from None


class TBDTask(ConfigurableTask):
    """Token Probability Deviation contamination scoring as an lm-eval task.

    The YAML keeps ``output_type: generate_until`` (lm-eval validates it and routes --gen_kwargs
    by it); the requests this class builds are of the plugin's own type ``generate_logprobs``.
    """

    def __init__(self, config: dict | None = None, **kwargs) -> None:
        config = dict(config or {})
        config.pop("class", None)  # lm-eval passes the `class` key on, and TaskConfig rejects it
        # The model classes answer our request type only once patched: the .pth hook has done it
        # unless LM_EVAL_TBD_AUTOLOAD=0 (tasks then come by --include_path). Idempotent.
        patches.install(tasks=False)
        # The options are checked before lm-eval loads the questions (its __init__ does), so an
        # option error is not hidden behind a data error; and once more on the config it built.
        # Their errors are the user's: one line, not lm-eval's traceback (lm_eval_tbd.core.errors).
        if isinstance(config.get("metadata"), dict):
            _options(config["metadata"], config.get("task", "tbd"))
        super().__init__(config=config, **kwargs)
        self.options = _options(self.config.metadata, self.config.task)
        self.params = self.options.params
        # Every score's metrics, without listing each in the YAML; the YAML's own entries win.
        for name, (aggregation, higher_is_better) in METRICS.items():
            self._metric_fn_list.setdefault(name, None)
            self._aggregation_list.setdefault(name, get_aggregation(aggregation))
            self._higher_is_better.setdefault(name, higher_is_better)
        # The evaluator pads data-parallel ranks by OUTPUT_TYPE: make it our request type.
        self.OUTPUT_TYPE = REQUEST_TYPE

    def build_all_requests(self, *args, **kwargs) -> None:
        # lm-eval's request cache is keyed without the task metadata: a cached request would keep
        # an old tbd_max_tokens or question file and pair labels with the wrong generations.
        if kwargs.get("cache_requests"):
            log.warning("%s: --cache_requests is ignored for TBD tasks (its cache key ignores --metadata)", self.config.task)
            kwargs["cache_requests"] = False
            kwargs["rewrite_requests_cache"] = False
        ignored = _non_greedy_settings(self.config.generation_kwargs or {})
        if ignored:
            log.warning("%s: ignoring generation settings %s; TBD decodes as tbd_decoding says (%s) and generates "
                        "%d tokens (set tbd_decoding and tbd_max_tokens in --metadata to change)", self.config.task,
                        ignored, self.options.decoding, self.params.max_tokens)
        if not kwargs.get("apply_chat_template"):
            log.warning("%s: prompts are not chat-templated. The TBD protocol prompts a chat model with its "
                        "chat template; pass --apply_chat_template unless the model has none.", self.config.task)
        super().build_all_requests(*args, **kwargs)

    def construct_requests(self, doc: dict, ctx: str, **kwargs) -> list[Instance]:
        """One request per sample (one for greedy decoding). Every request of a question shares the
        generation settings; a sampled one carries its own seed in its third argument."""
        kwargs.pop("apply_chat_template", None)
        kwargs.pop("chat_template", None)
        sample = self.options.decoding == "sample"
        gen_kwargs = {"max_gen_toks": self.params.max_tokens, "do_sample": sample, "temperature": 1.0 if sample else 0.0,
                      "until": [], "decoding": self.options.decoding,
                      "input_scores": self.options.input_scores, "ref_model": self.options.ref_model}
        if self.options.server_args:
            gen_kwargs["server_args"] = self.options.server_args
        # Where the question sits in the (possibly chat-templated) prompt, for the input-side scores.
        start = ctx.rfind(doc["question"]) if isinstance(ctx, str) else -1
        span = (start, start + len(doc["question"])) if start >= 0 else None
        requests = []
        for index in range(self.options.samples):
            extra = {"question_span": span}
            if sample:
                extra.update(sample_index=index, seed=sample_seed(self.options.seed, doc["question"], index))
            requests.append(Instance(request_type=REQUEST_TYPE, doc=doc, arguments=(ctx, dict(gen_kwargs), extra),
                                     idx=index, **kwargs))
        return requests

    def process_results(self, doc: dict, results: list) -> dict:
        """Per question: every score (``tbd`` first), the token count, and with a label the
        ``(decision value, label)`` pairs the ROC aggregations need (decision: higher = seen).

        With several samples, each score is the mean over the samples that have it, and
        ``tbd_sample_std`` is the spread of TBD across them (0 for one generation)."""
        if len(results) != self.options.samples:
            raise ValueError(f"{self.config.task}: question {doc.get('id')} got {len(results)} generations for "
                             f"tbd_samples {self.options.samples}")
        records = [GenerationRecord.from_json(r) for r in results]
        per_sample = []
        for record in records:
            if record.n_tokens > self.params.max_tokens:
                raise ValueError(f"{self.config.task}: question {doc.get('id')} has {record.n_tokens} generated tokens "
                                 f"for tbd_max_tokens {self.params.max_tokens}; the response is not from this request")
            if record.decoding != self.options.decoding:
                raise ValueError(f"{self.config.task}: question {doc.get('id')}: the backend decoded "
                                 f"{record.decoding!r}, the task asked for {self.options.decoding!r}")
            if record.n_tokens == 0:
                log.warning("%s: question %s produced zero generated tokens; its TBD is 0 by definition "
                            "and the likelihood baselines are undefined", self.config.task, doc.get("id"))
            per_sample.append(score_record(record, self.params, question=doc.get("question")))
            if per_sample[-1]["tbd"] == 0.0 and not getattr(self, "_underflow_told", False) \
                    and tbd_underflows(record.logprobs, self.params):
                self._underflow_told = True  # once per task: it holds for every question alike
                log.warning("%s: question %s scores TBD 0 only because (tau - p) ** alpha underflows to 0 with "
                            "tbd_tau %g and tbd_alpha %g; every question will score 0, which reads as the most "
                            "seen-like score: choose a smaller tbd_alpha", self.config.task, doc.get("id"),
                            self.params.tau, self.params.alpha)
        scores = mean_scores(per_sample)
        out = dict(scores)
        out["tbd_n_tokens"] = sum(r.n_tokens for r in records) / len(records)
        out["tbd_empty_rate"] = sum(r.n_tokens == 0 for r in records) / len(records)
        out["tbd_sample_std"] = statistics.pstdev(s["tbd"] for s in per_sample)
        label = doc.get("label")
        if label is not None:
            for name, value in scores.items():
                pair = (decision_value(name, value), int(label))
                out[f"{name}_roc_auc"] = pair
                out[f"{name}_tpr_at_1fpr"] = pair
        return out
