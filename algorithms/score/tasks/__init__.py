"""SCoRe tasks: problems, the two-turn prompt format, and each task's oracle verifier r̂ (training only).

The tasks are arithmetic.py, math_answers.py and humaneval.py, built by name with `build_task`; what they share
(Problem, the Task interface, the question/answer format) is base.py. `problems_for_iteration` is the problem
stream a run trains on, shared by SCoRe's env runner and the gym view of a task (task_env.py).
"""

from __future__ import annotations

import random

from armillary.algorithms.score.tasks.arithmetic import ArithmeticTask
from armillary.algorithms.score.tasks.base import Problem, Task, Verdict, correctness, verdicts
from armillary.algorithms.score.tasks.humaneval import HumanEvalTask
from armillary.algorithms.score.tasks.math_answers import MathJsonlTask


def build_task(name: str, **options) -> Task:
    """A task by name: 'arithmetic', 'math_jsonl' (needs path=...), 'humaneval'."""
    if name == "arithmetic":
        return ArithmeticTask(**options)
    if name == "math_jsonl":
        return MathJsonlTask(**options)
    if name == "humaneval":
        return HumanEvalTask(**options)
    raise ValueError(f"task: unknown task {name!r}; known: 'arithmetic', 'math_jsonl', 'humaneval'")


def is_generated(task: Task) -> bool:
    """A task that draws fresh problems (arithmetic), as opposed to a fixed pool (JSONL, HumanEval)."""
    return isinstance(task, ArithmeticTask)


def problems_for_iteration(task, split: str, count: int, seed: int, iteration: int) -> list:
    """`count` problems of `split` for one iteration, a pure function of (seed, iteration): a restored run sees the
    same stream as an uninterrupted one. Generated tasks draw fresh problems; fixed pools (JSONL, HumanEval) are
    sampled without replacement within the iteration."""
    if is_generated(task):
        return task.problems(split, count, seed=seed * 1_000_003 + iteration)
    pool = task.problems(split, None)
    if not pool:
        raise ValueError(f"env.config: the task has no {split!r} problems")
    rng = random.Random(f"{seed}/{split}/{iteration}")
    return rng.sample(pool, count) if count <= len(pool) else [rng.choice(pool) for _ in range(count)]
