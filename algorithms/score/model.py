"""The tiny policy for the fast SCoRe experiment: a Llama-architecture causal LM built with transformers from
a config, and a character-level tokenizer built with `tokenizers` from a fixed vocabulary.

Both are saved in the standard transformers format, so they load exactly like a hub model:

    AutoModelForCausalLM.from_pretrained(path)   AutoTokenizer.from_pretrained(path)

which is what `load_policy` does for any local path or hub name.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from armillary.core.model_source import resolve_model

SPECIAL_TOKENS = ("<pad>", "<bos>", "<eos>", "<unk>")
# Printable ASCII and the newline: enough for the arithmetic task, the instructions and plain-text maths.
CHARACTERS = tuple(chr(c) for c in range(32, 127)) + ("\n",)


@dataclass(frozen=True)
class TinyModelConfig:
    """Architecture of the tiny model (≈0.8M parameters at the defaults)."""

    hidden_size: int = 128
    intermediate_size: int = 352
    num_layers: int = 4
    num_heads: int = 4
    max_positions: int = 512

    def __post_init__(self):
        for name in ("hidden_size", "intermediate_size", "num_layers", "num_heads", "max_positions"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be ≥ 1, got {getattr(self, name)}")
        if self.hidden_size % self.num_heads:
            raise ValueError(f"num_heads: must divide hidden_size={self.hidden_size}, got {self.num_heads}")


def build_char_tokenizer():
    """A PreTrainedTokenizerFast: one token per character, <bos> prepended by the tokenizer itself (as real
    models' tokenizers do), <eos> ends a response, <pad> pads, unknown characters map to <unk>."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {token: i for i, token in enumerate(SPECIAL_TOKENS + CHARACTERS)}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    backend.decoder = decoders.Fuse()
    backend.post_processor = processors.TemplateProcessing(
        single="<bos> $A", pair="<bos> $A $B", special_tokens=[("<bos>", vocab["<bos>"])]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>", unk_token="<unk>",
        padding_side="left",
    )


def build_tiny_model(config: TinyModelConfig | None = None, tokenizer=None, seed: int = 0):
    """A randomly initialised Llama-architecture causal LM sized by `config`, with the tokenizer's vocabulary."""
    from transformers import AutoModelForCausalLM, LlamaConfig

    config = config or TinyModelConfig()
    tokenizer = tokenizer or build_char_tokenizer()
    llama = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=config.hidden_size,
        intermediate_size=config.intermediate_size,
        num_hidden_layers=config.num_layers,
        num_attention_heads=config.num_heads,
        num_key_value_heads=config.num_heads,
        max_position_embeddings=config.max_positions,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(llama)
    return model


def save_policy(model, tokenizer, path: str | Path) -> Path:
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def load_policy(name_or_path: str | Path, dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu"):
    """(model, tokenizer) through the same calls as any hub model. The tokenizer pads on the left (generation)
    and falls back to <eos> as the pad token where the model has none (GPT-2 style tokenizers). `smollm2` and a
    folder holding one .gguf file load from the GGUF file (core.model_source.resolve_model, the long-context
    job's path too; dequantised to `dtype`)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = str(name_or_path)
    if not source:
        raise ValueError("model: empty model path or hub name")
    folder = Path(source)
    if folder.exists() and not (folder / "config.json").is_file() and not any(folder.glob("*.gguf")):
        raise FileNotFoundError(f"model: {source!r} exists but holds no config.json (not a saved transformers model)")
    resolved = resolve_model(source, field="model")
    tokenizer = AutoTokenizer.from_pretrained(resolved.path, **resolved.pretrained_kwargs())
    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        if tokenizer.eos_token_id is None:
            raise ValueError(f"model: the tokenizer of {source!r} has neither a pad nor an eos token")
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(resolved.path, dtype=dtype, **resolved.pretrained_kwargs()).to(device)
    return model, tokenizer


def count_parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())
