"""RVIC, Relative Variational Intrinsic Control (Baumli et al., 2020, arXiv 2012.07827). Pure torch, no Ray.

    maximise I(Z; S_f | S_0) − I(Z; S_f), through two discriminators trained on the same (s_0, s_f, z):
    r     = log q_rel(z | s_0, s_f) − log q_abs(z | s_f)     (at the final step)
    L_q   = E[−log q_rel(z | s_0, s_f)] + E[−log q_abs(z | s_f)]
"""

from __future__ import annotations

from torch import nn

from armillary.algorithms.skills import estimators
from armillary.algorithms.skills.method import SkillMethod, SkillRewards
from armillary.algorithms.skills.networks import SkillDiscriminator, discriminator_inputs


class RvicMethod(SkillMethod):
    namespace = "rvic"

    def build_discriminator(self) -> nn.Module:
        if not self.layout.include_start:
            raise ValueError("RVIC's relative discriminator needs the start state in the observation layout")
        hidden = tuple(self.hp.discriminator_hidden_sizes)
        d = self.layout.state_dim
        return nn.ModuleDict(
            {"relative": SkillDiscriminator(2 * d, self.num_skills, hidden), "absolute": SkillDiscriminator(d, self.num_skills, hidden)}
        )

    def discriminate(self, discriminator, final_state, start_state=None):
        return {
            "relative_log_probs": discriminator["relative"](discriminator_inputs(final_state, start_state)),
            "absolute_log_probs": discriminator["absolute"](final_state),
        }

    def rewards(self, outputs, skills) -> SkillRewards:
        relative, absolute = outputs["relative_log_probs"], outputs["absolute_log_probs"]
        reward = estimators.rvic_reward(relative, absolute, skills)
        effective = estimators.vic_reward(relative, skills, self.num_skills)
        return SkillRewards(skill=reward, bonus=reward.new_zeros(reward.shape), effective_log=effective)

    def discriminator_loss(self, outputs, skills):
        relative = -estimators.log_prob_of_skill(outputs["relative_log_probs"], skills).mean()
        absolute = -estimators.log_prob_of_skill(outputs["absolute_log_probs"], skills).mean()
        accuracy = (outputs["relative_log_probs"].argmax(-1) == skills).float().mean()
        return relative + absolute, {
            "discriminator_accuracy": float(accuracy),
            "relative_loss": float(relative.detach()),
            "absolute_loss": float(absolute.detach()),
        }

    def classifier_log_probs(self, outputs):
        return outputs["relative_log_probs"]
