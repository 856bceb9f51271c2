"""The discriminator(s) as a learner-only RLModule beside the policy in a MultiRLModule.

Thin wrapper: the method (pure torch, from the method folder's losses.py) builds the networks and says
what they output. Being an RLModule, the discriminator's weights travel with the learner's state, so
checkpoints save and restore them; `learner_only` keeps them off the env runners.
"""

from __future__ import annotations

from typing import Any

import torch
from ray.rllib.algorithms.ppo.torch.default_ppo_torch_rl_module import DefaultPPOTorchRLModule
from ray.rllib.core.rl_module.torch import TorchRLModule

from armillary.algorithms.skills.method import load_method

DISCRIMINATOR_MODULE_ID = "skill_discriminator"
FINAL_OBS = "skill_final_obs"  # per row: the observation after the row's step (s_T at a skill's last step)
FINAL_MASK = "skill_final_mask"  # 1.0 on the last step of a finished skill, else 0.0


class DiscriminatorModule(TorchRLModule):
    """model_config: {"method": import path of a SkillMethod, "layout": SkillObservationLayout dict,
    "settings": the algorithm's hyperparameters dict}."""

    def setup(self):
        self.method = load_method(self.model_config["method"], self.model_config["layout"], self.model_config["settings"])
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


class TwoValuePPOModule(DefaultPPOTorchRLModule):
    """RLlib's PPO module with a value head of two outputs, [V_skill(s, z), V_bonus(s, z)]: the separate
    value estimates of the skill reward and of DISDAIN's bonus (compute_values returns [B, 2])."""

    def setup(self):
        self.catalog.vf_head_config.output_layer_dim = 2
        super().setup()
