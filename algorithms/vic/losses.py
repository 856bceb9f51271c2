"""VIC (Gregor, Rezende & Wierstra, 2016, arXiv 1611.07507), the reward-at-the-end variant used as the
DISDAIN and RVIC baseline. Pure torch, no Ray.

    r   = log q(z | s_0, s_T) − log p(z),  p(z) = 1/N        (at the final step)
    L_q = E[−log q(z | s_0, s_T)]

With `condition_on_start` false the discriminator sees s_T only (identical for a fixed start state).
"""

from __future__ import annotations

import torch
from torch import nn

from armillary.algorithms.skills import estimators
from armillary.algorithms.skills.method import SkillMethod, SkillRewards
from armillary.algorithms.skills.networks import SkillDiscriminator, discriminator_inputs


class VicMethod(SkillMethod):
    namespace = "vic"

    def build_discriminator(self) -> nn.Module:
        width = self.layout.state_dim * (2 if self.layout.include_start else 1)
        return SkillDiscriminator(width, self.num_skills, tuple(self.hp.discriminator_hidden_sizes))

    def discriminate(self, discriminator, final_state, start_state=None):
        return {"log_probs": discriminator(discriminator_inputs(final_state, start_state))}

    def rewards(self, outputs, skills) -> SkillRewards:
        reward = estimators.vic_reward(outputs["log_probs"], skills, self.num_skills)
        return SkillRewards(skill=reward, bonus=torch.zeros_like(reward), effective_log=reward)

    def discriminator_loss(self, outputs, skills):
        log_probs = outputs["log_probs"]
        loss = -estimators.log_prob_of_skill(log_probs, skills).mean()
        accuracy = (log_probs.argmax(-1) == skills).float().mean()
        return loss, {"discriminator_accuracy": float(accuracy)}
