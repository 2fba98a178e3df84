"""Distillation: fine-tune a causal LM on question -> answer pairs in its chat template, the loss on
the response tokens only.

One loop serves the demo (:mod:`lm_eval_tbd.app.demo`), the detection benchmark and the
real-student benchmarks (``benchmarks/student/distil.py``); what differs between them is the
:class:`Recipe`: the optimiser's settings, the learning-rate schedule and how each epoch's order
is drawn.
"""

from __future__ import annotations

import inspect
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

# torch is imported in distil(): building examples and recipes needs no model.

__all__ = ["Example", "Recipe", "EpochLoss", "chat_examples", "micro_batches", "distil", "progress"]


@dataclass(frozen=True)
class Example:
    """One training sequence: the chat-templated question, then the answer and the end-of-turn
    token. ``labels`` is -100 on the prompt (no loss there); ``answer_ids`` are the answer's
    tokens without the end-of-turn token (what a memorising student reproduces)."""

    input_ids: list[int]
    labels: list[int]
    answer_ids: list[int]


def chat_examples(tokenizer, rows: Sequence[dict], answer_tokens: int | None = None) -> list[Example]:
    """One :class:`Example` per row (``question``, ``solution``): the question as a user turn with
    the generation prompt, then the solution's first ``answer_tokens`` tokens (all of them with
    None) and the tokenizer's end-of-turn token."""
    out = []
    for r in rows:
        prompt = tokenizer.apply_chat_template([{"role": "user", "content": r["question"]}], tokenize=False,
                                               add_generation_prompt=True)
        p_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        answer = tokenizer(r["solution"], add_special_tokens=False)["input_ids"][:answer_tokens]
        r_ids = answer + [tokenizer.eos_token_id]
        out.append(Example(p_ids + r_ids, [-100] * len(p_ids) + r_ids, answer))
    return out


@dataclass(frozen=True)
class Recipe:
    """How :func:`distil` trains. The defaults are the demo's: AdamW without weight decay, a
    one-cycle schedule (5% warm-up, momentum cycled), each epoch a reshuffle of the previous
    epoch's order. The real-student protocol uses ``betas=(0.9, 0.95)``, ``weight_decay=1e-4``,
    ``schedule="warmup_cosine"`` (5% linear warm-up, then cosine decay) and ``fresh_order=True``
    (each epoch a shuffle of the examples' own order)."""

    epochs: int
    lr: float
    batch_size: int
    seed: int = 0
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    schedule: str = "one_cycle"
    fresh_order: bool = False

    def __post_init__(self) -> None:
        if self.schedule not in ("one_cycle", "warmup_cosine"):
            raise ValueError(f"schedule {self.schedule!r}: one_cycle or warmup_cosine")

    def steps_per_epoch(self, n_examples: int) -> int:
        return math.ceil(n_examples / self.batch_size)

    def warmup_steps(self, n_examples: int) -> int:
        """The warm-up of the ``warmup_cosine`` schedule: 5% of the steps, at least one."""
        return max(1, round(0.05 * self.epochs * self.steps_per_epoch(n_examples)))


@dataclass(frozen=True)
class EpochLoss:
    """One epoch's response loss: ``per_token`` weights every response token alike;
    ``per_batch`` is the mean of the batches' losses weighted by their sizes."""

    epoch: int
    per_token: float
    per_batch: float
    seconds: float


def _scheduler(opt, recipe: Recipe, n_examples: int):
    import torch

    total = recipe.epochs * recipe.steps_per_epoch(n_examples)
    if recipe.schedule == "one_cycle":
        return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=recipe.lr, total_steps=total, pct_start=0.05)
    warmup = recipe.warmup_steps(n_examples)
    return torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warmup if s < warmup else 0.5 * (1 + math.cos(math.pi * (s - warmup) / max(1, total - warmup))))


def micro_batches(batch: Sequence[Example], *, slack: float = 1.25) -> list[list[Example]]:
    """``batch`` as groups of similar length, each padded to its longest. A batch whose padded
    tokens stay within ``slack`` times its real ones is one group, in its own order (so a model
    with dropout draws as it did for the whole batch); otherwise, longest first, a new group
    starts where padding the next example in would make the group's exceed ``slack`` times its
    real tokens.

    Example: lengths 1148, 487, 169 and 108 give [[1148], [487], [169, 108]]."""
    if max(len(e.input_ids) for e in batch) * len(batch) <= slack * sum(len(e.input_ids) for e in batch):
        return [list(batch)]
    groups: list[list[Example]] = []
    for x in sorted(batch, key=lambda e: -len(e.input_ids)):
        group = groups[-1] if groups else None
        if group is not None and len(group[0].input_ids) * (len(group) + 1) <= slack * (
                sum(len(e.input_ids) for e in group) + len(x.input_ids)):
            group.append(x)
        else:
            groups.append([x])
    return groups


def _response_loss(model, group: Sequence[Example], *, pad_id: int, device: str, bf16: bool, keep: bool):
    """Summed cross-entropy of ``group``'s response tokens (a 0-d float32 tensor with its graph);
    the output layer sees only the positions that predict one in some row (``logits_to_keep`` as
    an index, with ``keep``: the model's forward takes it)."""
    import torch

    width = max(len(x.input_ids) for x in group)
    ids = torch.tensor([x.input_ids + [pad_id] * (width - len(x.input_ids)) for x in group], device=device)
    labels = torch.tensor([x.labels + [-100] * (width - len(x.labels)) for x in group], device=device)
    mask = torch.tensor([[1] * len(x.input_ids) + [0] * (width - len(x.input_ids)) for x in group], device=device)
    target = labels[:, 1:]
    rows = (target != -100).any(0).nonzero()[:, 0]  # logits row t predicts token t + 1
    with torch.autocast(device, dtype=torch.bfloat16, enabled=bf16):
        logits = model(input_ids=ids, attention_mask=mask, **({"logits_to_keep": rows} if keep else {})).logits
    if not keep:
        logits = logits[:, rows]
    return torch.nn.functional.cross_entropy(logits.float().flatten(0, 1), target[:, rows].flatten(),
                                             ignore_index=-100, reduction="sum")


def distil(model, examples: Sequence[Example], recipe: Recipe, *, pad_id: int, device: str = "cpu", bf16: bool = False,
           on_epoch: Callable[[EpochLoss, object], None] | None = None) -> list[EpochLoss]:
    """Fine-tune ``model`` (already on ``device``) on ``examples``; returns each epoch's loss.

    The loss is the token-weighted cross-entropy over the batch's response tokens, in float32 (the
    forward pass in bf16 autocast with ``bf16``). A batch runs as the micro-batches of
    :func:`micro_batches` (right-padded with ``pad_id``), their gradients accumulated: the same
    gradient as one padded batch, since no real token attends to a right pad, without computing
    the padding (with dropout, a batch split into groups draws other masks). Only the positions
    that predict a response token go through the output layer.
    ``on_epoch(loss, model)``, if given, is called after each epoch with the model in eval mode,
    e.g. to log or to save checkpoints along one continuous schedule. The model is left in eval
    mode."""
    import torch

    opt = torch.optim.AdamW(model.parameters(), lr=recipe.lr, betas=recipe.betas, weight_decay=recipe.weight_decay)
    sched = _scheduler(opt, recipe, len(examples))
    torch.manual_seed(recipe.seed)
    rng = random.Random(recipe.seed)
    order = list(range(len(examples)))
    keep = "logits_to_keep" in inspect.signature(model.forward).parameters  # once, not per micro-batch
    losses = []
    for epoch in range(1, recipe.epochs + 1):
        t0 = time.perf_counter()
        model.train()
        if recipe.fresh_order:
            order = list(range(len(examples)))
        rng.shuffle(order)
        token_loss = batch_loss = n_tokens = 0.0
        for i in range(0, len(order), recipe.batch_size):
            batch = [examples[j] for j in order[i:i + recipe.batch_size]]
            count = sum(sum(t != -100 for t in x.labels[1:]) for x in batch)
            opt.zero_grad()
            loss = 0.0
            for group in micro_batches(batch):
                part = _response_loss(model, group, pad_id=pad_id, device=device, bf16=bf16, keep=keep)
                (part / count).backward()  # the batch's token-weighted mean, accumulated
                loss += float(part.detach())
            opt.step()
            sched.step()
            token_loss += loss
            batch_loss += loss / count * len(batch)
            n_tokens += count
        losses.append(EpochLoss(epoch, token_loss / n_tokens, batch_loss / len(examples), time.perf_counter() - t0))
        model.eval()
        if on_epoch is not None:
            on_epoch(losses[-1], model)
    return losses


def progress(log: Callable[[str], None], epochs: int) -> Callable[[EpochLoss, object], None]:
    """An ``on_epoch`` that logs the first epoch's loss and then every fifth of the run's (the
    demo's progress lines)."""

    def on_epoch(loss: EpochLoss, model) -> None:
        if loss.epoch == 1 or loss.epoch % max(1, epochs // 5) == 0:
            log(f"  epoch {loss.epoch:>3}/{epochs}  response loss {loss.per_batch:.3f}")

    return on_epoch
