"""RVIC hyperparameters: the skill/PPO fields; both discriminators share the MLP widths and learning rate."""

from __future__ import annotations

from pydantic import Field

from armillary.algorithms.skills.config import SkillHyperparameters


class RvicHyperparameters(SkillHyperparameters):
    num_skills: int = Field(8, ge=2, description="N: number of skills (RVIC small experiment: 8–16).")
    clip_skill_reward_at_zero: bool = Field(False, description="max(r, 0) before learning values (RVIC: no).")
