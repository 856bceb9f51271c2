"""SCoRe's two turns as a conversation in the model's own chat template (no Ray).

A model whose tokenizer has a chat template (an instruct model such as SmolLM2-135M-Instruct) sees

    turn 1:  [user: question]                                              + the generation prompt  → y1
    turn 2:  [user: question, assistant: y1, user: instruction]            + the generation prompt  → y2

rendered by `tokenizer.apply_chat_template`; the question asks for the answer in the task's chat format
(\\boxed{} for maths) and the task's `chat_checker` judges the responses. A tokenizer without a template (the tiny
models trained here) keeps the task's raw text format: `for_tokenizer` picks.

What the learner trains on is unchanged: each turn is scored on its own sequence c_t ⊕ y_t, c_t the rendered
context and y_t the sampled token ids (the assistant's reply up to and including the end-of-turn token, which is
the tokenizer's eos), and only y_t's positions carry log-probs and KL (rollout.turn_tensors). The template's
assistant header belongs to c_t (the generation prompt); y1 enters c2 as the assistant message of turn 1.
"""

from __future__ import annotations

from typing import Sequence

from armillary.algorithms.score.tasks.base import Problem, Task, Verdict, verdicts


def has_chat_template(tokenizer) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


class ChatTask:
    """A task seen through a tokenizer's chat template; it offers the Task interface to rollout."""

    def __init__(self, task: Task, tokenizer):
        if not has_chat_template(tokenizer):
            raise ValueError("tokenizer: has no chat_template; use the task's raw text format (for_tokenizer picks)")
        for needed in ("chat_question", "chat_instruction", "chat_checker"):
            if not hasattr(task, needed):
                raise ValueError(f"task: {task.name!r} has no chat form ({needed} missing)")
        self.task, self.tokenizer = task, tokenizer
        self.name = task.name
        self.instruction = task.chat_instruction
        self.checker = task.chat_checker

    def problems(self, split: str, count: int | None = None) -> list[Problem]:
        return self.task.problems(split, count)

    def messages(self, problem: Problem, first_attempt: str | None = None) -> list[dict[str, str]]:
        """The conversation before turn 1 (no attempt) or before turn 2 (with y1 as the assistant's reply)."""
        conversation = [{"role": "user", "content": self.task.chat_question(problem)}]
        if first_attempt is not None:
            conversation += [{"role": "assistant", "content": first_attempt.strip()},
                             {"role": "user", "content": self.instruction}]
        return conversation

    def render(self, conversation: list[dict[str, str]]) -> str:
        return self.tokenizer.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True)

    def first_turn_prompt(self, problem: Problem) -> str:
        return self.render(self.messages(problem))

    def second_turn_prompt(self, problem: Problem, first_attempt: str) -> str:
        return self.render(self.messages(problem, first_attempt))

    def final_answer(self, problem: Problem, response: str) -> str | None:
        return self.checker.final_answer(problem, response)

    def is_correct(self, problem: Problem, response: str) -> bool:
        return self.checker.is_correct(problem, response)

    def verify_many(self, problems: Sequence[Problem], responses: Sequence[str]) -> list[Verdict]:
        return verdicts(self.checker, problems, responses)


def for_tokenizer(task: Task, tokenizer) -> Task:
    """The task as the model should see it: a conversation in its chat template where it has one, else raw text."""
    return ChatTask(task, tokenizer) if has_chat_template(tokenizer) else task
