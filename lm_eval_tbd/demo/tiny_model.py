"""Build small, fully offline causal LMs: a byte-level BPE tokenizer trained with ``tokenizers`` and
a GPT-2 style model from a transformers config, saved in the Hugging Face layout that
``lm_eval --model hf --model_args pretrained=DIR`` loads. Used by the tests and the demo.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

# torch, tokenizers and transformers are imported in the functions that build a model: the package
# imports this module's names without loading them.

__all__ = ["CHAT_TEMPLATE", "SPECIAL_TOKENS", "train_tokenizer", "build_model", "save_tiny_model"]

SPECIAL_TOKENS = ["<|pad|>", "<|eos|>", "<|user|>", "<|assistant|>"]

#: A minimal chat format: the question as a user turn, then the assistant's turn.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'user' %}<|user|>{{ message['content'] }}\n"
    "{% elif message['role'] == 'assistant' %}<|assistant|>{{ message['content'] }}<|eos|>"
    "{% else %}{{ message['content'] }}\n{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def train_tokenizer(texts: Iterable[str], vocab_size: int = 512):
    """A byte-level BPE ``PreTrainedTokenizerFast`` trained on ``texts``, with a chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(texts), trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|eos|>", pad_token="<|pad|>")
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build_model(tokenizer, *, n_layer: int = 2, n_embd: int = 64, n_head: int = 2, n_positions: int = 1024,
    initializer_range: float = 0.02, seed: int = 0):
    """A randomly initialised ``GPT2LMHeadModel`` (seeded) sized for ``tokenizer``.

    A larger ``initializer_range`` (e.g. 0.2) gives sharper, more varied untrained outputs.
    """
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=n_positions,
        n_embd=n_embd,
        n_layer=n_layer,
        n_head=n_head,
        initializer_range=initializer_range,
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = GPT2LMHeadModel(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model.eval()


def save_tiny_model(model, tokenizer, directory: str | Path) -> Path:
    """Save model and tokenizer so that ``from_pretrained(directory)`` loads both offline."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory
