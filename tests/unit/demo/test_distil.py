"""The one distillation loop (the demo's, the detection and real-student benchmarks'): its
examples, its recipes, and that it is deterministic for a seed."""

import pytest

from lm_eval_tbd.demo import make_problems
from lm_eval_tbd.demo.distil import Example, Recipe, chat_examples, distil, micro_batches
from lm_eval_tbd.demo.tiny_model import build_model, train_tokenizer


@pytest.fixture(scope="module")
def rows_and_tok():
    rows = make_problems(12, seed=3)
    return rows, train_tokenizer([r["question"] + " " + r["solution"] for r in rows], vocab_size=300)


def test_examples_put_the_loss_on_the_truncated_answer_and_its_end_of_turn(rows_and_tok):
    rows, tok = rows_and_tok
    full, cut = chat_examples(tok, rows[:1])[0], chat_examples(tok, rows[:1], answer_tokens=3)[0]
    assert cut.answer_ids == full.answer_ids[:3] and len(full.answer_ids) > 3
    for ex in (full, cut):
        n_prompt = len(ex.input_ids) - len(ex.answer_ids) - 1
        assert ex.labels[:n_prompt] == [-100] * n_prompt
        assert ex.labels[n_prompt:] == ex.input_ids[n_prompt:] == ex.answer_ids + [tok.eos_token_id]
        assert tok.decode(ex.input_ids[:n_prompt]).endswith("<|assistant|>")


def test_an_unknown_schedule_is_refused():
    with pytest.raises(ValueError, match="schedule 'linear'"):
        Recipe(epochs=1, lr=1e-3, batch_size=2, schedule="linear")
    assert Recipe(epochs=3, lr=1e-3, batch_size=4).steps_per_epoch(10) == 3
    assert Recipe(epochs=3, lr=1e-3, batch_size=4).warmup_steps(10) == 1


def _train(tok, examples, recipe, seen=None):
    model = build_model(tok, n_layer=1, n_embd=32, n_head=2, n_positions=256, seed=0)
    on_epoch = None if seen is None else (lambda loss, m: seen.append((loss.epoch, m.training)))
    losses = distil(model, examples, recipe, pad_id=tok.pad_token_id, on_epoch=on_epoch)
    return losses, model


@pytest.mark.parametrize("recipe", [
    Recipe(epochs=4, lr=3e-3, batch_size=5, seed=1),
    Recipe(epochs=4, lr=3e-3, batch_size=5, seed=1, betas=(0.9, 0.95), weight_decay=1e-4, schedule="warmup_cosine",
           fresh_order=True),
])
def test_the_same_seed_gives_the_same_losses_and_weights(rows_and_tok, recipe):
    rows, tok = rows_and_tok
    examples = chat_examples(tok, rows, answer_tokens=16)
    seen = []
    a, model_a = _train(tok, examples, recipe, seen)
    b, model_b = _train(tok, examples, recipe)
    assert [x.per_token for x in a] == [x.per_token for x in b] and len(a) == 4
    assert all(x.per_token > 0 and x.per_batch > 0 for x in a)
    assert all((pa == pb).all() for pa, pb in zip(model_a.parameters(), model_b.parameters()))
    assert seen == [(e, False) for e in (1, 2, 3, 4)] and not model_a.training  # eval mode in the callback, and after
    other, _ = _train(tok, examples, Recipe(**{**recipe.__dict__, "seed": 2}))
    assert [x.per_token for x in other] != [x.per_token for x in a]


def _example(n: int) -> Example:
    return Example(list(range(n)), [-100] * (n - 2) + [1, 2], [1])


def test_micro_batches_group_similar_lengths_longest_first():
    groups = micro_batches([_example(n) for n in (169, 1148, 108, 487)])
    assert [[len(x.input_ids) for x in g] for g in groups] == [[1148], [487], [169, 108]]
    assert [[len(x.input_ids) for x in g] for g in micro_batches([_example(9)] * 4)] == [[9] * 4]
    near = [_example(n) for n in (10, 12, 11, 9)]  # padded 48 <= 1.25 x 42: whole, in its order
    assert micro_batches(near) == [near]


def test_a_step_has_the_gradient_of_one_right_padded_batch(rows_and_tok):
    """The accumulated micro-batches (output layer on response rows only) against an independent
    padded forward over the whole batch with full logits."""
    import torch

    rows, tok = rows_and_tok
    examples = chat_examples(tok, rows[:5], answer_tokens=8)
    examples[0] = Example(examples[0].input_ids * 3, [-100] * (2 * len(examples[0].input_ids)) + examples[0].labels,
                          examples[0].answer_ids)  # a long one, so the batch splits
    assert len(micro_batches(examples)) > 1
    recipe = Recipe(epochs=1, lr=1e-3, batch_size=5, seed=0)
    model = build_model(tok, n_layer=1, n_embd=32, n_head=2, n_positions=256, seed=0)
    for m in model.modules():  # GPT-2's dropout would draw differently per forward (SmolLM2 has none)
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    before = {k: v.clone() for k, v in model.state_dict().items()}
    # the expected gradient, from one padded batch
    width = max(len(x.input_ids) for x in examples)
    pad = tok.pad_token_id
    ids = torch.tensor([x.input_ids + [pad] * (width - len(x.input_ids)) for x in examples])
    labels = torch.tensor([x.labels + [-100] * (width - len(x.labels)) for x in examples])
    mask = (torch.arange(width)[None] < torch.tensor([len(x.input_ids) for x in examples])[:, None]).long()
    logits = model(input_ids=ids, attention_mask=mask).logits
    loss = torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1), labels[:, 1:].flatten(), ignore_index=-100)
    model.zero_grad()
    loss.backward()
    expected = {n: p.grad.clone() for n, p in model.named_parameters()}
    # one epoch (= one step) of distil from the same weights, its gradient caught by hooks
    model.load_state_dict(before)
    model.zero_grad()
    grads = {}
    hooks = [p.register_hook(lambda g, n=n: grads.__setitem__(n, grads.get(n, 0) + g)) for n, p in model.named_parameters()]
    losses = distil(model, examples, recipe, pad_id=pad)
    for h in hooks:
        h.remove()
    for n, g in expected.items():
        torch.testing.assert_close(grads[n], g, rtol=1e-4, atol=1e-6)
    assert losses[0].per_token == pytest.approx(float(loss), rel=1e-5)

    # a model whose forward takes no logits_to_keep: full logits, then the response rows
    class NoKeep(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask):
            return self.inner(input_ids=input_ids, attention_mask=attention_mask)

    model.load_state_dict(before)
    wrapped = NoKeep(model)
    grads.clear()
    hooks = [p.register_hook(lambda g, n=n: grads.__setitem__(n, grads.get(n, 0) + g)) for n, p in model.named_parameters()]
    assert distil(wrapped, examples, recipe, pad_id=pad)[0].per_token == pytest.approx(float(loss), rel=1e-5)
    for h in hooks:
        h.remove()
    for n, g in expected.items():
        torch.testing.assert_close(grads[n], g, rtol=1e-4, atol=1e-6)
