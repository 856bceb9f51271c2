"""Synthetic multi-digit addition whose worked solution can be checked step by step.

    Q: 347+586
    A: 7+6+0=13;4+8+1=13;3+5+1=09;#933

One step per column, least significant first: the two digits, the carry in, and their two-digit sum; the
final answer after '#'. Why this format makes self-correction learnable: every step is a single-digit
addition the model can redo on its own, each step's carry in must equal the tens digit of the step before,
and each answer digit is the units digit of one step — so an error in y1 is visible locally to a model
reading y1 in turn 2, and can be fixed by recomputing from the first wrong step. A model that only
re-samples (ignores y1) gets no such help.

Problems are drawn from a seeded generator; a problem's split is fixed by a hash of its text, so the
training and held-out sets never share a problem whatever the seeds and counts.
"""

from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass

from armillary.algorithms.score.tasks import math_answers
from armillary.algorithms.score.tasks.base import Problem, QuestionAnswerFormat

INSTRUCTION = "There may be an error in the solution above. Check each step, fix any error and write the solution again."
SPLITS = ("train", "test")
_ANSWER = re.compile(r"#\s*(-?\d+)")


def solution_steps(a: int, b: int) -> list[tuple[int, int, int, int]]:
    """(digit of a, digit of b, carry in, column sum) per column, least significant first."""
    if a < 0 or b < 0:
        raise ValueError(f"operands: must be ≥ 0, got {a} and {b}")
    da, db = str(a)[::-1], str(b)[::-1]
    steps, carry = [], 0
    for i in range(max(len(da), len(db))):
        x = int(da[i]) if i < len(da) else 0
        y = int(db[i]) if i < len(db) else 0
        total = x + y + carry
        steps.append((x, y, carry, total))
        carry = total // 10
    return steps


def render_solution(steps: list[tuple[int, int, int, int]]) -> str:
    """The worked solution text; the final answer is read off the written steps (wrong steps → wrong answer)."""
    digits = "".join(str(total % 10) for *_, total in steps)[::-1]
    carry_out = steps[-1][3] // 10
    answer = str(int(f"{carry_out}{digits}"))
    return ";".join(f"{x}+{y}+{c}={total:02d}" for x, y, c, total in steps) + f";#{answer}"


def solve(a: int, b: int) -> str:
    return render_solution(solution_steps(a, b))


ERROR_KINDS = ("sum", "digit")


def wrong_solution(a: int, b: int, rng: random.Random, kind: str = "sum") -> str:
    """A plausible wrong solution with one error, the later columns following consistently from it (the kind of
    error checking the steps finds). kind "sum": one column's sum is off; "digit": one operand digit of one column
    is misread (the error the tiny base makes most: 74 of its 91 wrong greedy first attempts in one count), and
    that column's sum is right for the misread digit."""
    if kind not in ERROR_KINDS:
        raise ValueError(f"kind: expected one of {ERROR_KINDS}, got {kind!r}")
    steps = solution_steps(a, b)
    column = rng.randrange(len(steps))
    out, carry = [], 0
    for i, (x, y, _, _) in enumerate(steps):
        if i == column and kind == "digit":
            if rng.random() < 0.5:
                x = rng.choice([d for d in range(10) if d != x])
            else:
                y = rng.choice([d for d in range(10) if d != y])
        total = x + y + carry
        if i == column and kind == "sum":
            wrong = [t for t in range(max(0, total - 3), min(19, total + 3) + 1) if t != total]
            total = rng.choice(wrong)
        out.append((x, y, carry, total))
        carry = total // 10
    return render_solution(out)


def split_of(question: str) -> str:
    """'test' for 1 in 10 problems (by a stable hash of the text), else 'train'."""
    return "test" if hashlib.sha256(question.encode()).digest()[0] % 10 == 0 else "train"


@dataclass
class ArithmeticTask(QuestionAnswerFormat):
    """Addition of two numbers of min_digits..max_digits digits each."""

    min_digits: int = 3
    max_digits: int = 4
    seed: int = 0
    name: str = "arithmetic"
    instruction: str = INSTRUCTION
    chat_instruction: str = math_answers.INSTRUCTION

    def __post_init__(self):
        if self.min_digits < 1:
            raise ValueError(f"min_digits: must be ≥ 1, got {self.min_digits}")
        if self.max_digits < self.min_digits:
            raise ValueError(f"max_digits: must be ≥ min_digits={self.min_digits}, got {self.max_digits}")
        if self.max_digits > 18:
            raise ValueError(f"max_digits: at most 18, got {self.max_digits}")

    def _operand(self, rng: random.Random) -> int:
        digits = rng.randint(self.min_digits, self.max_digits)
        return rng.randint(10 ** (digits - 1) if digits > 1 else 0, 10**digits - 1)

    def problems(self, split: str, count: int | None = 500, seed: int | None = None) -> list[Problem]:
        """`count` distinct problems of `split`, the same list for the same (task, split, count, seed)."""
        if split not in SPLITS:
            raise ValueError(f"split: expected one of {SPLITS}, got {split!r}")
        if count is None or count < 1:
            raise ValueError(f"count: the arithmetic task is generated, give a count ≥ 1 (got {count})")
        space = sum(9 * 10 ** (d - 1) for d in range(self.min_digits, self.max_digits + 1)) ** 2
        if count > space // 20:  # keep rejection sampling fast: ask for at most half of the ~1/10 in 'test'
            raise ValueError(f"count: {count} problems asked; at most {space // 20} with these digits")
        rng = random.Random(f"arithmetic/{self.seed if seed is None else seed}/{split}")
        seen: dict[str, Problem] = {}
        while len(seen) < count:
            a, b = self._operand(rng), self._operand(rng)
            question = f"{a}+{b}"
            if question in seen or split_of(question) != split:
                continue
            seen[question] = Problem(problem_id=f"{split}/{question}", question=question, answer=str(a + b),
                                     metadata={"a": a, "b": b})
        return list(seen.values())

    def reference_solution(self, problem: Problem) -> str:
        return solve(problem.metadata["a"], problem.metadata["b"])

    def final_answer(self, problem: Problem, response: str) -> str | None:
        found = _ANSWER.findall(response)
        return str(int(found[-1])) if found else None

    def is_correct(self, problem: Problem, response: str) -> bool:
        return self.final_answer(problem, response) == problem.answer

    def chat_question(self, problem: Problem) -> str:
        """Turn 1's user message for a chat model, which has never seen the column format: the sum, and the
        answer in \\boxed{} (judged by `chat_checker`, not by the '#' of the raw format)."""
        return f"What is {problem.metadata['a']} + {problem.metadata['b']}?\n{math_answers.ANSWER_FORMAT}"

    @property
    def chat_checker(self) -> math_answers.BoxedAnswerChecker:
        return math_answers.BoxedAnswerChecker()
