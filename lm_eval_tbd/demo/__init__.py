"""The offline demo's parts: a tiny model (:mod:`.tiny_model`), generated questions and their
distillation (:mod:`.offline`). ``lm-eval-tbd demo`` (:mod:`lm_eval_tbd.app.demo`) runs them
through the real ``lm_eval`` CLI."""

from lm_eval_tbd.demo.offline import distil, make_problems, memorised_share, split_members

__all__ = ["make_problems", "split_members", "distil", "memorised_share"]
