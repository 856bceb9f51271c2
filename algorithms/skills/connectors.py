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

import numpy as np
import torch
from ray.rllib.connectors.connector_v2 import ConnectorV2
from ray.rllib.core import DEFAULT_MODULE_ID
from ray.rllib.core.columns import Columns
from ray.rllib.evaluation.postprocessing import Postprocessing
from ray.rllib.utils.postprocessing.value_predictions import compute_value_targets

from armillary.algorithms.skills import estimators
from armillary.algorithms.skills.method import combine
from armillary.algorithms.skills.module import DISCRIMINATOR_MODULE_ID, FINAL_MASK, FINAL_OBS

BONUS_REWARDS = "skill_bonus_rewards"  # the bonus stream, when the policy has two value heads
# Optional [B, 2] per-row weights (w_first, w_second) of the two advantage streams; when present they replace
# (1, bonus_weight). DOMiNO writes them: each row's weights depend on its policy's Lagrange multiplier.
STREAM_WEIGHTS = "two_stream_advantage_weights"

# Learner metrics written here; the algorithm re-logs them as top-level `<method>/<name>` result keys.
REWARD_METRICS = ("skill_reward_mean", "bonus_mean", "intrinsic_reward_mean", "effective_skills_train", "finished_skills")


class SkillRewardConnector(ConnectorV2):
    """separate_bonus_stream: write max(r_skill, 0) to REWARDS and r_bonus to BONUS_REWARDS (for the two
    value heads, mixed with weight λ at the advantage by TwoStreamAdvantages) instead of their sum."""

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
            policy[BONUS_REWARDS] = bonus
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


class TwoStreamAdvantages(ConnectorV2):
    """Replaces PPO's GAE piece when the policy has two value heads: GAE per stream (skill reward with
    V_skill, bonus with V_bonus), advantage A = A_skill + λ A_bonus (then standardised, as RLlib does), and
    value targets [B, 2] so PPO's value loss trains both heads. Non-recurrent modules only."""

    def __init__(self, input_observation_space=None, input_action_space=None, *, gamma: float, lambda_: float, bonus_weight: float, **kwargs):
        super().__init__(input_observation_space, input_action_space, **kwargs)
        self.gamma, self.lambda_, self.bonus_weight = gamma, lambda_, bonus_weight

    def __call__(self, *, rl_module, batch: dict[str, Any], episodes, **kwargs) -> Any:
        policy = batch[DEFAULT_MODULE_ID]
        with torch.no_grad():
            values = rl_module[DEFAULT_MODULE_ID].compute_values(policy)
        device = values.device
        values = values.cpu().numpy().astype(np.float32)
        flags = {k: policy[k].cpu().numpy().astype(np.float32) for k in (Columns.TERMINATEDS, Columns.TRUNCATEDS)}
        targets = []
        for stream, rewards in enumerate((policy[Columns.REWARDS], policy[BONUS_REWARDS])):
            targets.append(
                compute_value_targets(
                    values=values[:, stream],
                    rewards=rewards.cpu().numpy().astype(np.float32),
                    terminateds=flags[Columns.TERMINATEDS],
                    truncateds=flags[Columns.TRUNCATEDS],
                    gamma=self.gamma,
                    lambda_=self.lambda_,
                )
            )
        targets = np.stack(targets, axis=-1)
        if STREAM_WEIGHTS in policy:
            weights = policy[STREAM_WEIGHTS].cpu().numpy().astype(np.float32)
            advantages = weights[:, 0] * (targets[:, 0] - values[:, 0]) + weights[:, 1] * (targets[:, 1] - values[:, 1])
        else:
            advantages = (targets[:, 0] - values[:, 0]) + self.bonus_weight * (targets[:, 1] - values[:, 1])
        advantages = (advantages - advantages.mean()) / max(1e-4, advantages.std())
        policy[Postprocessing.ADVANTAGES] = torch.as_tensor(advantages, device=device)
        policy[Postprocessing.VALUE_TARGETS] = torch.as_tensor(targets, device=device)
        return batch
