"""The latent-conditioned episode: a policy index i ~ Uniform(N) at reset, one-hot in the observation.

One episode is one policy of the set. The wrapper flattens the inner observation and appends what DOMiNO
needs (see DominoLayout):

    [ observation (D) | φ(s) (F, only when φ comes from an info key) | one-hot i (N) ]

so the learner reads φ and i from the batch alone. No Ray import: RLlib gets this class as its env.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch


@dataclass(frozen=True)
class DominoLayout:
    observation_dim: int
    feature_dim: int
    num_policies: int
    features_in_observation: bool  # φ is the observation itself (no extra columns)

    @property
    def size(self) -> int:
        return self.observation_dim + (0 if self.features_in_observation else self.feature_dim) + self.num_policies

    def split(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """[B, size] → (φ [B, F], policy index [B])."""
        if obs.shape[-1] != self.size:
            raise ValueError(f"observation width {obs.shape[-1]} does not match the DOMiNO layout ({self.size})")
        d, f = self.observation_dim, self.feature_dim
        phi = obs[..., :d] if self.features_in_observation else obs[..., d : d + f]
        return phi, obs[..., -self.num_policies :].argmax(-1)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class DominoEnv(gym.Env):
    """Wraps any Armillary env by name. env_config: env (registered name), options (its options dict),
    num_policies, features ('observation' or an info key). reset(options={"policy": i}) fixes the policy."""

    def __init__(self, env_config: dict[str, Any]):
        from armillary.envs import registry as environments

        self.env_name = env_config["env"]
        self.num_policies = int(env_config["num_policies"])
        self.features = str(env_config["features"])  # DominoHyperparameters.features, passed by apply()
        self.inner = environments.make(self.env_name, dict(env_config.get("options") or {}))
        space = self.inner.observation_space
        if not isinstance(space, gym.spaces.Box) or space.dtype == np.uint8:
            raise ValueError(f"DOMiNO needs a float Box observation, {self.env_name} has {space}")
        observation_dim = int(np.prod(space.shape))
        if self.features == "observation":
            feature_dim = observation_dim
        else:
            _, info = self.inner.reset()
            if self.features not in info:
                raise ValueError(f"features={self.features!r}: {self.env_name} has no such info key (it has {sorted(info)})")
            feature_dim = int(np.asarray(info[self.features]).size)
            self._flat_features = np.asarray(info[self.features]).ndim == 1
        self.layout = DominoLayout(observation_dim, feature_dim, self.num_policies, self.features == "observation")
        # The observation's slices, looked up once, not per step: [:d] the inner observation, [d:df] φ (empty when φ
        # is the observation), the rest the one-hot.
        self._d = observation_dim
        self._df = observation_dim + (0 if self.layout.features_in_observation else feature_dim)
        self._flat = len(space.shape) == 1
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, shape=(self.layout.size,), dtype=np.float32)
        self.action_space = self.inner.action_space
        self.render_mode = getattr(self.inner, "render_mode", None)
        self.metadata = {**self.metadata, **getattr(self.inner, "metadata", {})}
        self.policy = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        options = dict(options or {})
        policy = options.pop("policy", None)
        self.policy = int(self.np_random.integers(self.num_policies)) if policy is None else int(policy)
        if not 0 <= self.policy < self.num_policies:
            raise ValueError(f"policy must be in 0..{self.num_policies - 1}, got {self.policy}")
        inner_seed = None if seed is None else int(self.np_random.integers(2**31))
        obs, info = self.inner.reset(seed=inner_seed, options=options or None)
        # Every observation of the episode starts as a copy of this one: zeros with policy i's one-hot set.
        self._template = np.zeros(self.layout.size, dtype=np.float32)
        self._template[self._df + self.policy] = 1.0
        return self._observation(obs, info), {**info, "policy": self.policy}

    def step(self, action):
        # The step's info is the inner env's: the policy is in the observation, and every extra info key costs the
        # vector env a merge per step.
        obs, reward, terminated, truncated, info = self.inner.step(action)
        return self._observation(obs, info), reward, terminated, truncated, info

    def render(self):
        return self.inner.render()

    def close(self):
        self.inner.close()

    def _observation(self, obs, info) -> np.ndarray:
        out = self._template.copy()
        out[:self._d] = obs if self._flat else np.asarray(obs).reshape(-1)
        if self._df > self._d:
            features = info[self.features]
            out[self._d:self._df] = features if self._flat_features else np.asarray(features).reshape(-1)
        return out
