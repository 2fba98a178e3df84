"""The demo's data and student: templated word problems with worked solutions (seeded; nothing
downloaded), their seeded split into members (distillation data) and non-members, the
distillation of a small model on the members (question -> solution in its chat format, loss on
the response tokens only), and the share of members it reproduces verbatim. ``lm-eval-tbd demo``
(:mod:`lm_eval_tbd.app.demo`) runs them end to end."""

from __future__ import annotations

import random

# torch is imported in distil(): the question generators (used by the tests and the benchmarks)
# load without it.

__all__ = ["TASKS", "make_problems", "split_members", "distil", "memorised_share"]

_NAMES = ["Ana", "Ben", "Chen", "Dara", "Eli", "Fay", "Gus", "Hana", "Ivo", "Jun", "Kai", "Lea", "Mia", "Noor", "Omar", "Pia"]
_ITEMS = ["apples", "marbles", "stamps", "books", "shells", "coins", "pencils", "cards"]


def _problem(rng: random.Random) -> tuple[str, str]:
    kind = rng.randrange(4)
    name, item = rng.choice(_NAMES), rng.choice(_ITEMS)
    a, b, c = rng.randint(10, 99), rng.randint(2, 60), rng.randint(2, 9)
    if kind == 0:
        give = rng.randint(1, a)
        q = f"{name} has {a} {item}, buys {b} more and gives {give} away. How many {item} does {name} have now?"
        s = f"{name} starts with {a}. Buying {b} gives {a} + {b} = {a + b}. Giving {give} away leaves {a + b} - {give} = {a + b - give}. The answer is {a + b - give}."
    elif kind == 1:
        q = f"A garden is {a} meters long and {c} meters wide. What is its area in square meters?"
        s = f"The area is length times width: {a} * {c} = {a * c}. The answer is {a * c}."
    elif kind == 2:
        q = f"{name} reads {b} pages a day for {c} days, then {a} pages on the last day. How many pages in total?"
        s = f"In {c} days {name} reads {b} * {c} = {b * c} pages. Adding {a} gives {b * c} + {a} = {b * c + a}. The answer is {b * c + a}."
    else:
        q = f"{c} friends share {a * c} {item} equally. How many {item} does each friend get?"
        s = f"Each friend gets {a * c} / {c} = {a}. The answer is {a}."
    return q, s


def make_problems(n: int, seed: int = 0) -> list[dict]:
    """``n`` distinct problems ``{"id", "question", "solution"}``, the same for the same seed."""
    rng, seen, rows = random.Random(seed), set(), []
    while len(rows) < n:
        q, s = _problem(rng)
        if q not in seen:
            seen.add(q)
            rows.append({"id": f"demo-{len(rows)}", "question": q, "solution": s})
    return rows


def split_members(rows: list[dict], member_fraction: float = 0.5, seed: int = 42) -> list[dict]:
    """Shuffle with ``seed`` (the paper's S1 protocol uses 42); the first part are members (label 1)."""
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    n_members = round(len(rows) * member_fraction)
    labels = {idx: int(rank < n_members) for rank, idx in enumerate(order)}
    return [{**row, "label": labels[i]} for i, row in enumerate(rows)]


def distil(model, tokenizer, members: list[dict], *, epochs: int, lr: float = 3e-3, batch_size: int = 16, seed: int = 0,
           log=print, on_epoch=None):
    """Fine-tune ``model`` on question -> solution in its chat format, loss on the response only.

    ``on_epoch(epoch, model)``, if given, is called after each epoch (1-based), e.g. to save
    checkpoints along one continuous learning-rate schedule."""
    import torch

    torch.manual_seed(seed)
    examples = []
    for row in members:
        prompt = tokenizer.apply_chat_template([{"role": "user", "content": row["question"]}], tokenize=False, add_generation_prompt=True)
        p_ids = tokenizer(prompt)["input_ids"]
        r_ids = tokenizer(row["solution"] + tokenizer.eos_token)["input_ids"]
        examples.append((p_ids + r_ids, [-100] * len(p_ids) + r_ids))
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * -(-len(examples) // batch_size), pct_start=0.05)
    model.train()
    rng = random.Random(seed)
    for epoch in range(epochs):
        rng.shuffle(examples)
        total = 0.0
        for i in range(0, len(examples), batch_size):
            batch = examples[i : i + batch_size]
            width = max(len(x) for x, _ in batch)
            ids = torch.tensor([x + [tokenizer.pad_token_id] * (width - len(x)) for x, _ in batch])
            labels = torch.tensor([y + [-100] * (width - len(y)) for _, y in batch])
            mask = torch.tensor([[1] * len(x) + [0] * (width - len(x)) for x, _ in batch])
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(batch)
        if epoch == 0 or (epoch + 1) % max(1, epochs // 5) == 0:
            log(f"  epoch {epoch + 1:>3}/{epochs}  response loss {total / len(examples):.3f}")
        if on_epoch is not None:
            model.eval()
            on_epoch(epoch + 1, model)
            model.train()
    return model.eval()


#: The demo's three question sets: distilled on, never seen, and fresh reference questions.
TASKS = ("demo_members", "demo_unseen", "demo_reference")


def memorised_share(run, answers: dict[str, str], tokenizer, n_tokens: int = 50) -> float:
    """Share of members whose greedy answer reproduces the first ``n_tokens`` of its training
    answer (``answers``: question id -> the answer text it was distilled on)."""
    hits = members = 0
    for q in run.questions:
        if q.label != 1:
            continue
        members += 1
        target = tokenizer(answers[q.question_id])["input_ids"][:n_tokens]
        hits += q.record.token_ids[: len(target)] == target
    return hits / max(members, 1)
