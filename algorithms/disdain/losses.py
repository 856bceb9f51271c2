"""DISDAIN (Strouse et al., 2021, arXiv 2107.14226): ensemble discriminator, skill reward, disagreement bonus.

Pure torch, no Ray. Equations (paper §3; PAPERS.md §1):
    q̄(z|s)       = (1/E) Σ_e q_e(z|s)                         (ensemble mean, computed as log-mean-exp)
    r_skill(s_T) = log q̄(z|s_T) + log N                       (clipped at 0 from below before learning values)
    r_D(s_T)     = H[q̄(·|s_T)] − (1/E) Σ_e H[q_e(·|s_T)]      (disagreement bonus)
    r            = r_skill + λ r_D                              (at the final step; see README "Deviations")
    L_q          = Σ_e E[−log q_e(z|s_T)]                       (each member trained on the same pairs)
"""

from __future__ import annotations

import enum

import torch
from torch import nn

from armillary.algorithms.skills import estimators
from armillary.algorithms.skills.method import SkillMethod, SkillRewards
from armillary.algorithms.skills.networks import DiscriminatorEnsemble, ensemble_cross_entropy


class ValueHeads(str, enum.Enum):
    """How the policy estimates the value of r_skill and the bonus (config field `value_heads`)."""

    SEPARATE = "separate"  # V_skill and V_bonus, advantages mixed as A_skill + λ A_bonus (the paper's Q_skill + λ Q_bonus)
    SHARED = "shared"  # one value head on r_skill + λ r_D


class DisdainMethod(SkillMethod):
    namespace = "disdain"

    @property
    def bonus_weight(self) -> float:
        return self.hp.bonus_weight

    @property
    def value_streams(self) -> tuple[str, ...]:
        return ("skill", "bonus") if self.hp.value_heads is ValueHeads.SEPARATE else ()

    def build_discriminator(self) -> nn.Module:
        return DiscriminatorEnsemble(
            input_dim=self.layout.state_dim,
            num_skills=self.num_skills,
            ensemble_size=self.hp.ensemble_size,
            hidden_sizes=tuple(self.hp.discriminator_hidden_sizes),
        )

    def discriminate(self, discriminator, final_state, start_state=None):
        return {"member_log_probs": discriminator(final_state)}

    def rewards(self, outputs, skills) -> SkillRewards:
        members = outputs["member_log_probs"]
        skill = estimators.skill_reward(estimators.ensemble_mean_log_probs(members), skills, self.num_skills)
        bonus = estimators.disagreement_bonus(members) if members.shape[0] > 1 else torch.zeros_like(skill)
        return SkillRewards(skill=skill, bonus=bonus, effective_log=skill)

    def discriminator_loss(self, outputs, skills):
        members = outputs["member_log_probs"]
        loss = ensemble_cross_entropy(members, skills)
        mean = estimators.ensemble_mean_log_probs(members)
        accuracy = (mean.argmax(-1) == skills).float().mean()
        return loss, {"discriminator_accuracy": float(accuracy)}

    def classifier_log_probs(self, outputs):
        return estimators.ensemble_mean_log_probs(outputs["member_log_probs"])
