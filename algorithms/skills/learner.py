"""PPO learner that also trains the skill discriminator(s) of the MultiRLModule.

Thin wrapper: the policy's loss is RLlib's PPO loss; the discriminator's is the method's cross-entropy
on (s_T, z) pairs (losses.py of the method folder), with its own optimizer (Adam or SGD) and learning rate.
"""

from __future__ import annotations

import torch
from ray.rllib.algorithms.ppo.torch.ppo_torch_learner import PPOTorchLearner
from ray.rllib.connectors.common.numpy_to_tensor import NumpyToTensor
from ray.rllib.core import DEFAULT_MODULE_ID
from ray.rllib.core.columns import Columns
from ray.rllib.evaluation.postprocessing import Postprocessing

from armillary.algorithms.ppo.learner import set_learning_rate
from armillary.algorithms.skills.connectors import SkillRewardConnector, TwoStreamAdvantages
from armillary.algorithms.skills.module import DISCRIMINATOR_MODULE_ID


class SkillPPOLearner(PPOTorchLearner):
    _set_optimizer_lr = staticmethod(set_learning_rate)  # lr_schedule on a GPU (algorithms/ppo/learner.py)

    def build(self) -> None:
        super().build()
        settings = self.config.learner_config_dict["skills"]["settings"]
        separate = self._separate_value_heads = settings.get("value_heads") == "separate"
        self._configs_without_critic = {}
        if self.config.add_default_connectors_to_learner_pipeline:
            self._learner_connector.insert_after(NumpyToTensor, SkillRewardConnector(separate_bonus_stream=separate))
            if separate:
                self._learner_connector.remove("GeneralAdvantageEstimation")
                self._learner_connector.append(
                    TwoStreamAdvantages(gamma=self.config.gamma, lambda_=self.config.lambda_, bonus_weight=settings["bonus_weight"])
                )

    def configure_optimizers_for_module(self, module_id, config=None) -> None:
        if module_id != DISCRIMINATOR_MODULE_ID:
            return super().configure_optimizers_for_module(module_id, config)
        module = self._module[module_id]
        settings = self.config.learner_config_dict["skills"]["settings"]
        params = self.get_parameters(module)
        optimizer = torch.optim.SGD(params) if settings.get("discriminator_optimizer") == "sgd" else torch.optim.Adam(params)
        self.register_optimizer(
            module_id=module_id, optimizer=optimizer, params=params, lr_or_lr_schedule=float(settings["discriminator_lr"])
        )

    def compute_loss_for_module(self, *, module_id, config, batch, fwd_out):
        if module_id == DEFAULT_MODULE_ID and self._separate_value_heads:
            return self._policy_loss_with_two_value_heads(module_id, config, batch, fwd_out)
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

    def _policy_loss_with_two_value_heads(self, module_id, config, batch, fwd_out):
        return two_value_heads_ppo_loss(self, module_id, config, batch, fwd_out, head_names=("skill", "bonus"))


def two_value_heads_ppo_loss(learner: PPOTorchLearner, module_id, config, batch, fwd_out, head_names: tuple[str, str]):
    """PPO's clipped surrogate and entropy terms (its own code, critic off) plus the value loss of both
    heads against their own targets: Σ_k clip((V_k − target_k)², 0, vf_clip), masked mean over rows.
    Logged as `vf_loss_<head name>`. Shared with DOMiNO (heads for r_e and r_d)."""
    cache = learner.__dict__.setdefault("_configs_without_critic", {})
    if module_id not in cache:
        without_critic = config.copy(copy_frozen=False)
        without_critic.use_critic = False
        cache[module_id] = without_critic
    policy_loss = PPOTorchLearner.compute_loss_for_module(
        learner, module_id=module_id, config=cache[module_id], batch=batch, fwd_out=fwd_out
    )
    values = learner.module[module_id].unwrapped().compute_values(batch, embeddings=fwd_out.get(Columns.EMBEDDINGS))
    errors = torch.clamp((values - batch[Postprocessing.VALUE_TARGETS]) ** 2, 0, config.vf_clip_param)
    mask = batch.get(Columns.LOSS_MASK)
    per_head = errors[mask].mean(0) if mask is not None else errors.mean(0)
    for head, name in enumerate(head_names):
        learner.metrics.log_value((module_id, f"vf_loss_{name}"), float(per_head[head].detach()), window=1)
    return policy_loss + config.vf_loss_coeff * per_head.sum()
