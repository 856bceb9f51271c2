"""The skill-conditioned episode: z ~ Uniform(N) at reset, fixed length T, the skill in the observation.

One episode is one skill. The wrapper flattens the inner observation (the *state* the discriminators
see) and appends what the policy must be conditioned on, in this order (see SkillObservationLayout, in
armillary.envs.skill_layout: the frozen-skills environment reads the same layout):

    [ state s_t (D) | start state s_0 (D, if include_start) | one-hot z (N) | t / T (1, if include_time) ]

After T steps the episode *terminates* (the option is over, no bootstrapping past it), whatever the inner
env said about time limits. Rewards from the inner env are passed through but the skill algorithms
overwrite them (reward only at the final state). No Ray import: RLlib gets this class as its env.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from armillary.envs import registry as environments
from armillary.envs.skill_layout import SkillObservationLayout


class SkillEnv(gym.Env):
    """Wraps any Armillary env by name. env_config keys: env (registered name), options (its options dict),
    num_skills, skill_length, include_start, include_time."""

    def __init__(self, env_config: dict[str, Any]):
        self.env_name = env_config["env"]
        options = dict(env_config.get("options") or {})
        self.num_skills = int(env_config["num_skills"])
        self.skill_length = int(env_config["skill_length"])
        options_model = environments.get(self.env_name).options
        if "max_episode_steps" in options_model.model_fields:
            # The inner time limit must not cut a skill short; the wrapper ends the episode itself at T.
            options["max_episode_steps"] = self.skill_length
        self.inner = environments.make(self.env_name, options)
        inner_space = self.inner.observation_space
        if not isinstance(inner_space, gym.spaces.Box):
            raise ValueError(f"skill discovery needs a Box observation space, {self.env_name} has {inner_space}")
        self._scale = 1.0 / 255.0 if inner_space.dtype == np.uint8 else 1.0
        self.layout = SkillObservationLayout(
            state_dim=int(np.prod(inner_space.shape)),
            num_skills=self.num_skills,
            include_start=bool(env_config.get("include_start", False)),
            include_time=bool(env_config.get("include_time", False)),
        )
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, shape=(self.layout.size,), dtype=np.float32)
        self.action_space = self.inner.action_space
        self.render_mode = getattr(self.inner, "render_mode", None)
        self._skill = 0
        self._steps = 0
        self._start_state = np.zeros(self.layout.state_dim, dtype=np.float32)

    @property
    def skill(self) -> int:
        return self._skill

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        options = dict(options or {})
        skill = options.pop("skill", None)
        self._skill = int(self.np_random.integers(self.num_skills)) if skill is None else int(skill)
        if not 0 <= self._skill < self.num_skills:
            raise ValueError(f"skill must be in 0..{self.num_skills - 1}, got {self._skill}")
        inner_seed = None if seed is None else int(self.np_random.integers(2**31))
        obs, info = self.inner.reset(seed=inner_seed, options=options or None)
        self._steps = 0
        self._start_state = self._state(obs)
        return self._observation(self._start_state), {**info, "skill": self._skill}

    def step(self, action):
        obs, reward, terminated, truncated, info = self.inner.step(action)
        self._steps += 1
        done = bool(terminated) or self._steps >= self.skill_length
        if truncated and not done:
            raise RuntimeError(f"{self.env_name} truncated after {self._steps} steps, before the skill length T")
        return self._observation(self._state(obs)), float(reward), done, False, {**info, "skill": self._skill}

    def render(self):
        return self.inner.render()

    def close(self):
        self.inner.close()

    def _state(self, obs) -> np.ndarray:
        return np.asarray(obs, dtype=np.float32).reshape(-1) * self._scale

    def _observation(self, state: np.ndarray) -> np.ndarray:
        return self.layout.compose(state, self._start_state, self._skill, self._steps / self.skill_length)
