"""The discriminator(s) as a learner-only RLModule beside the policy in a MultiRLModule.

Thin wrapper: the method (pure torch, from the method folder's losses.py) builds the networks and says
what they output. Being an RLModule, the discriminator's weights travel with the learner's state, so
checkpoints save and restore them; `learner_only` keeps them off the env runners.
"""

from __future__ import annotations

from typing import Any

import torch
from ray.rllib.core.rl_module.torch import TorchRLModule

from armillary.algorithms.skills.method import SkillMethod

DISCRIMINATOR_MODULE_ID = "skill_discriminator"
FINAL_OBS = "skill_final_obs"  # per row: the observation after the row's step (s_T at a skill's last step)
FINAL_MASK = "skill_final_mask"  # 1.0 on the last step of a finished skill, else 0.0


def skill_method(config) -> SkillMethod:
    """The SkillMethod (with its typed hyperparameters) that configure.py put on the RLlib config
    (learner_config_dict["skills"])."""
    method = config.learner_config_dict.get("skills")
    if not isinstance(method, SkillMethod):
        raise TypeError("learner_config_dict['skills'] must be the SkillMethod (set by configure_skill_algorithm), "
                        f"got {type(method).__name__}")
    return method


class DiscriminatorModule(TorchRLModule):
    """model_config: {"method": the SkillMethod, with its layout and typed hyperparameters}."""

    def setup(self):
        self.method: SkillMethod = self.model_config["method"]
        self.discriminator = self.method.build_discriminator()

    def _forward(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        return {}

    def _forward_train(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        finished = batch[FINAL_MASK] > 0.5
        state, start, skills = self.method.layout.split(batch[FINAL_OBS][finished])
        return {**self.method.discriminate(self.discriminator, state, start), "skills": skills}

    @torch.no_grad()
    def discriminate_observations(self, final_obs: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Discriminator outputs and skills for full (policy) observations of final states, without gradient."""
        state, start, skills = self.method.layout.split(final_obs)
        return self.method.discriminate(self.discriminator, state, start), skills
