"""PPO learner that also trains the skill discriminator(s) of the MultiRLModule.

Thin wrapper: the policy's loss is RLlib's PPO loss; the discriminator's is the method's cross-entropy
on (s_T, z) pairs (losses.py of the method folder), with its own optimizer (Adam or SGD) and learning rate.
"""

from __future__ import annotations

import torch
from ray.rllib.algorithms.ppo.torch.ppo_torch_learner import PPOTorchLearner
from ray.rllib.connectors.common.numpy_to_tensor import NumpyToTensor
from ray.rllib.core import DEFAULT_MODULE_ID

from armillary.algorithms.ppo.connectors import MultiStreamAdvantages
from armillary.algorithms.ppo.learner import multi_stream_loss_for_module, set_learning_rate
from armillary.algorithms.skills.config import DiscriminatorOptimizer
from armillary.algorithms.skills.connectors import SkillRewardConnector
from armillary.algorithms.skills.module import DISCRIMINATOR_MODULE_ID, skill_method


class SkillPPOLearner(PPOTorchLearner):
    _set_optimizer_lr = staticmethod(set_learning_rate)  # lr_schedule on a GPU (algorithms/ppo/learner.py)

    def build(self) -> None:
        self.method = skill_method(self.config)
        super().build()
        separate = bool(self.method.value_streams)
        if self.config.add_default_connectors_to_learner_pipeline:
            self._learner_connector.insert_after(NumpyToTensor, SkillRewardConnector(separate_bonus_stream=separate))
            if separate:
                self._learner_connector.remove("GeneralAdvantageEstimation")
                self._learner_connector.append(MultiStreamAdvantages(gamma=self.config.gamma, lambda_=self.config.lambda_))

    def configure_optimizers_for_module(self, module_id, config=None) -> None:
        if module_id != DISCRIMINATOR_MODULE_ID:
            return super().configure_optimizers_for_module(module_id, config)
        hp = self.method.hp
        params = self.get_parameters(self._module[module_id])
        optimizer = (torch.optim.SGD(params) if hp.discriminator_optimizer is DiscriminatorOptimizer.SGD
                     else torch.optim.Adam(params))
        self.register_optimizer(module_id=module_id, optimizer=optimizer, params=params,
                                lr_or_lr_schedule=hp.discriminator_lr)

    def compute_loss_for_module(self, *, module_id, config, batch, fwd_out):
        if module_id == DEFAULT_MODULE_ID and self.method.value_streams:
            return multi_stream_loss_for_module(self, module_id, config, batch, fwd_out)
        if module_id != DISCRIMINATOR_MODULE_ID:
            return super().compute_loss_for_module(module_id=module_id, config=config, batch=batch, fwd_out=fwd_out)
        skills = fwd_out["skills"]
        if skills.numel() == 0:  # a minibatch without a finished skill: no discriminator signal
            return sum(p.sum() * 0.0 for p in self._module[module_id].parameters())
        method = self._module[module_id].unwrapped().method
        loss, figures = method.discriminator_loss(fwd_out, skills)
        self.metrics.log_value((module_id, "discriminator_loss"), float(loss.detach()), window=1)
        for name, value in figures.items():
            self.metrics.log_value((module_id, name), value, window=1)
        return loss
