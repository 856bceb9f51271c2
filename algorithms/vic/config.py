"""VIC hyperparameters: the skill/PPO fields plus whether the discriminator sees the start state."""

from __future__ import annotations

from pydantic import Field

from armillary.algorithms.skills.config import SkillHyperparameters


class VicHyperparameters(SkillHyperparameters):
    condition_on_start: bool = Field(
        True, description="q(z | s_0, s_T) as in VIC (True) or q(z | s_T) (False); the policy then also sees s_0."
    )
    clip_skill_reward_at_zero: bool = Field(False, description="max(r, 0) before learning values (VIC: no).")
