"""What every SCoRe task is made of: a problem, the task interface, the shared two-turn text format.

Every task offers the same small interface (`Task`): problems by split, the first- and second-turn prompts,
the final answer extracted from a response (for the change-answer rate) and whether a response is correct.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, Sequence


@dataclass(frozen=True)
class Problem:
    problem_id: str
    question: str  # the problem as the model sees it
    answer: str  # the reference final answer ('' where correctness comes from tests, as for code)
    metadata: dict[str, Any] = field(default_factory=dict, compare=False)


class Task(Protocol):
    name: str
    instruction: str  # the fixed self-correction instruction shown before turn 2

    def problems(self, split: str, count: int | None = None) -> list[Problem]: ...

    def first_turn_prompt(self, problem: Problem) -> str: ...

    def second_turn_prompt(self, problem: Problem, first_attempt: str) -> str: ...

    def final_answer(self, problem: Problem, response: str) -> str | None: ...

    def is_correct(self, problem: Problem, response: str) -> bool: ...


class ChatTurns(Protocol):
    """What a task needs to run as a conversation in a model's chat template (chat.ChatTask): turn 1's user
    message, the user message before turn 2, and the checker of chat-style responses (an object with the Task's
    final_answer / is_correct, and verify or verify_many where it has them)."""

    chat_instruction: str

    def chat_question(self, problem: Problem) -> str: ...

    @property
    def chat_checker(self) -> Any: ...


class QuestionAnswerFormat:
    """The two-turn text format shared by the maths tasks:

        turn 1:  "Q: <question>\\nA: "                                  → y1
        turn 2:  "Q: <question>\\nA: " y1 "\\n<instruction>\\nA: "       → y2
    """

    instruction: str

    def first_turn_prompt(self, problem: Problem) -> str:
        return f"Q: {problem.question}\nA: "

    def second_turn_prompt(self, problem: Problem, first_attempt: str) -> str:
        return f"{self.first_turn_prompt(problem)}{first_attempt.strip()}\n{self.instruction}\nA: "


@dataclass(frozen=True)
class Verdict:
    """r̂ of one response, and the signs of gaming the verifier it saw in it (`flags`: names, e.g. a code response
    that ended its own process mid-test, or a maths answer that hedges between several answers)."""

    passed: bool
    flags: tuple[str, ...] = ()
    detail: str = ""  # why it failed, for a human reading a log


def verdicts(task: Task, problems: Sequence[Problem], responses: Sequence[str]) -> list[Verdict]:
    """The verdicts on a batch, from the task's batched verifier (HumanEval's parallel sandboxes) where it has one."""
    if len(problems) != len(responses):
        raise ValueError(f"responses: {len(responses)} given for {len(problems)} problems")
    if hasattr(task, "verify_many"):
        return task.verify_many(list(problems), list(responses))
    if hasattr(task, "verify"):
        return [task.verify(p, r) for p, r in zip(problems, responses)]
    return [Verdict(task.is_correct(p, r)) for p, r in zip(problems, responses)]


def correctness(task: Task, problems: Sequence[Problem], responses: Sequence[str]) -> list[bool]:
    """r̂ for a batch."""
    return [v.passed for v in verdicts(task, problems, responses)]
