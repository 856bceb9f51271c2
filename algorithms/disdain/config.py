"""DISDAIN hyperparameters: the skill/PPO fields plus the ensemble size E and the bonus weight λ.

Baselines by config: ensemble_size=1, bonus_weight=0 is plain VIC with a fixed start; ensemble_size>1,
bonus_weight=0 keeps the ensemble averaging without the bonus.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from armillary.algorithms.disdain.losses import ValueHeads
from armillary.algorithms.skills.config import SkillHyperparameters


class DisdainHyperparameters(SkillHyperparameters):
    ensemble_size: int = Field(2, ge=1, le=64, description="E: discriminator ensemble members (paper: 2 in the grid, 40 heads on Atari).")
    bonus_weight: float = Field(20.0, ge=0, description="λ: weight of the disagreement bonus r_D (paper: 20).")

    value_heads: ValueHeads = Field(
        ValueHeads.SEPARATE,
        description="'separate': value heads V_skill and V_bonus, advantages mixed as A_skill + λ A_bonus (the paper's "
        "Q_skill + λ Q_bonus); 'shared': one value head on r_skill + λ r_D.",
    )

    @model_validator(mode="after")
    def _bonus_needs_an_ensemble(self):
        if self.bonus_weight > 0 and self.ensemble_size < 2:
            raise ValueError("bonus_weight > 0 needs ensemble_size ≥ 2: one classifier cannot disagree with itself")
        return self
