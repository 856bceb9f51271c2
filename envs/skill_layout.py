"""Where the parts of a skill-conditioned observation sit:

    [ state s_t (D) | start state s_0 (D, if include_start) | one-hot z (N) | t / T (1, if include_time) ]

Written by the skill-discovery wrapper (armillary.algorithms.skills.env) and read back by the environment that
runs frozen skills as actions (armillary.envs.skill_options), so it lives here, below both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch


@dataclass(frozen=True)
class SkillObservationLayout:
    state_dim: int
    num_skills: int
    include_start: bool
    include_time: bool

    @property
    def size(self) -> int:
        return self.state_dim * (2 if self.include_start else 1) + self.num_skills + int(self.include_time)

    def split(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """[B, size] → (state [B, D], start [B, D] or None, skill index [B])."""
        if obs.shape[-1] != self.size:
            raise ValueError(f"observation width {obs.shape[-1]} does not match the skill layout ({self.size})")
        d = self.state_dim
        state = obs[..., :d]
        start = obs[..., d : 2 * d] if self.include_start else None
        offset = 2 * d if self.include_start else d
        skills = obs[..., offset : offset + self.num_skills].argmax(-1)
        return state, start, skills

    def compose(self, state: np.ndarray, start: np.ndarray, skill: int, time_fraction: float) -> np.ndarray:
        """The policy's observation [s_t | s_0 (if include_start) | one-hot z | t/T (if include_time)]."""
        parts = [state]
        if self.include_start:
            parts.append(start)
        one_hot = np.zeros(self.num_skills, dtype=np.float32)
        one_hot[skill] = 1.0
        parts.append(one_hot)
        if self.include_time:
            parts.append(np.array([time_fraction], dtype=np.float32))
        return np.concatenate(parts)

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("state_dim", "num_skills", "include_start", "include_time")}
