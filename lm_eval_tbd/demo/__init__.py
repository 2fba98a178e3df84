"""The offline demo (``lm-eval-tbd demo``): a tiny model distilled on generated questions, scored
through the real ``lm_eval`` CLI. :mod:`.tiny_model` builds the model; :mod:`.offline` runs it."""

from lm_eval_tbd.demo.offline import distil, make_problems, memorised_share, run_demo, split_members

__all__ = ["make_problems", "split_members", "distil", "memorised_share", "run_demo"]
