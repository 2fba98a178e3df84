"""The offline demo's parts: a tiny model (:mod:`.tiny_model`), generated questions
(:mod:`.offline`) and the distillation loop (:mod:`.distil`, which the benchmarks share).
``lm-eval-tbd demo`` (:mod:`lm_eval_tbd.app.demo`) runs them through the real ``lm_eval`` CLI."""

from lm_eval_tbd.demo.distil import Recipe, chat_examples, distil
from lm_eval_tbd.demo.offline import make_problems, memorised_share, split_members

__all__ = ["make_problems", "split_members", "chat_examples", "Recipe", "distil", "memorised_share"]
