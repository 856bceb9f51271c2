"""Learner connector: writes the skill reward (and bonus) into the policy's batch before GAE.

Placed right after NumpyToTensor (PPO appends GAE after it), as in RLlib's curiosity example. Rows of a
skill episode: AddOneTsToEpisodesAndTruncate gives every episode chunk one extra row at its end whose
observation is the chunk's last observation, so for a skill that finished (terminated at T) the row after
its last real step holds s_T. All rewards become 0 except that last step's, which gets
max(r_skill, 0) + λ r_bonus (combine()). The same rows feed the discriminator's training batch.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch
from ray.rllib.connectors.connector_v2 import ConnectorV2
from ray.rllib.core import DEFAULT_MODULE_ID
from ray.rllib.core.columns import Columns

from armillary.algorithms.ppo.connectors import STREAM_REWARDS, STREAM_WEIGHTS
from armillary.algorithms.skills import estimators
from armillary.algorithms.skills.method import combine
from armillary.algorithms.skills.module import DISCRIMINATOR_MODULE_ID, FINAL_MASK, FINAL_OBS

# Learner metrics written here; the algorithm re-logs them as top-level `<method>/<name>` result keys.
REWARD_METRICS = ("skill_reward_mean", "bonus_mean", "intrinsic_reward_mean", "effective_skills_train", "finished_skills")


class SkillRewardConnector(ConnectorV2):
    """separate_bonus_stream: the policy has two value streams (skill, bonus): write max(r_skill, 0) to REWARDS,
    the streams' rewards (max(r_skill, 0), r_bonus) to STREAM_REWARDS and their weights (1, λ) on every row to
    STREAM_WEIGHTS, for the ppo algorithm's MultiStreamAdvantages (A = A_skill + λ A_bonus), instead of their sum."""

    def __init__(self, input_observation_space=None, input_action_space=None, *, separate_bonus_stream: bool = False, **kwargs):
        super().__init__(input_observation_space, input_action_space, **kwargs)
        self.separate_bonus_stream = separate_bonus_stream

    def __call__(self, *, rl_module, batch: dict[str, Any], episodes, metrics=None, **kwargs) -> Any:
        policy = batch[DEFAULT_MODULE_ID]
        obs = policy[Columns.OBS]
        finished = policy[Columns.TERMINATEDS].bool()
        last_steps = finished.nonzero().squeeze(-1)
        if Columns.LOSS_MASK in policy and last_steps.numel():
            # The row after a finished skill's last step must be the artificial bootstrap row holding s_T.
            assert not policy[Columns.LOSS_MASK][last_steps + 1].any(), "skill episode rows are not where expected"

        discriminator = rl_module[DISCRIMINATOR_MODULE_ID].unwrapped()
        outputs, skills = discriminator.discriminate_observations(obs[last_steps + 1])
        terms = discriminator.method.rewards(outputs, skills)
        settings = discriminator.method.reward_settings
        rewards = torch.zeros_like(policy[Columns.REWARDS])
        if self.separate_bonus_stream:
            rewards[last_steps] = combine(terms, replace(settings, bonus_weight=0.0)).to(rewards.dtype)
            bonus = torch.zeros_like(rewards)
            bonus[last_steps] = terms.bonus.to(rewards.dtype)
            policy[STREAM_REWARDS] = torch.stack((rewards, bonus), dim=-1)
            weights = torch.tensor([1.0, settings.bonus_weight], dtype=rewards.dtype, device=rewards.device)
            policy[STREAM_WEIGHTS] = weights.repeat(len(rewards), 1)
        else:
            rewards[last_steps] = combine(terms, settings).to(rewards.dtype)
        policy[Columns.REWARDS] = rewards

        batch[DISCRIMINATOR_MODULE_ID] = {FINAL_OBS: obs.roll(-1, dims=0), FINAL_MASK: finished.float()}

        if metrics is not None and last_steps.numel():
            figures = {
                "skill_reward_mean": terms.skill.mean(),
                "bonus_mean": terms.bonus.mean(),
                "intrinsic_reward_mean": combine(terms, settings).mean(),
                "effective_skills_train": estimators.effective_skills(terms.effective_log),
                "finished_skills": float(last_steps.numel()),
            }
            for name, value in figures.items():
                metrics.log_value((DISCRIMINATOR_MODULE_ID, name), float(value), window=1)
        return batch
