"""Learner connector for a policy with K value streams (module.MultiValuePPOModule): replaces RLlib's GAE piece.

A reward connector earlier in the pipeline writes each row's stream rewards (STREAM_REWARDS, [B, K]) and stream
weights (STREAM_WEIGHTS, [B, K]); MultiStreamAdvantages then runs RLlib's GAE per stream with that stream's value
output, mixes the advantages A = Σ_k w_k A_k (losses.mixed_advantages), standardises A as RLlib does, and writes
value targets [B, K] so that the loss trains every stream's value output on its own target. Non-recurrent modules
only. The lean learner computes the same batch from rollout arrays (rollout.train_batch).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from ray.rllib.connectors.connector_v2 import ConnectorV2
from ray.rllib.core import DEFAULT_MODULE_ID
from ray.rllib.core.columns import Columns
from ray.rllib.evaluation.postprocessing import Postprocessing
from ray.rllib.utils.postprocessing.value_predictions import compute_value_targets

from armillary.algorithms.ppo.losses import mixed_advantages

STREAM_REWARDS = "value_stream_rewards"  # [B, K]: each row's reward of every stream
STREAM_WEIGHTS = "value_stream_weights"  # [B, K]: each row's weights w_k of the streams' advantages


class MultiStreamAdvantages(ConnectorV2):
    def __init__(self, input_observation_space=None, input_action_space=None, *, gamma: float, lambda_: float,
                 **kwargs):
        super().__init__(input_observation_space, input_action_space, **kwargs)
        self.gamma, self.lambda_ = gamma, lambda_

    def __call__(self, *, rl_module, batch: dict[str, Any], episodes, **kwargs) -> Any:
        policy = batch[DEFAULT_MODULE_ID]
        with torch.no_grad():
            values = rl_module[DEFAULT_MODULE_ID].compute_values(policy)
        device = values.device
        values = values.cpu().numpy().astype(np.float32)
        rewards = policy[STREAM_REWARDS].cpu().numpy().astype(np.float32)
        flags = {k: policy[k].cpu().numpy().astype(np.float32) for k in (Columns.TERMINATEDS, Columns.TRUNCATEDS)}
        targets = np.stack([
            compute_value_targets(values=values[:, k], rewards=rewards[:, k], terminateds=flags[Columns.TERMINATEDS],
                                  truncateds=flags[Columns.TRUNCATEDS], gamma=self.gamma, lambda_=self.lambda_)
            for k in range(values.shape[-1])
        ], axis=-1)
        advantages = mixed_advantages(targets, values, policy[STREAM_WEIGHTS].cpu().numpy().astype(np.float32))
        advantages = (advantages - advantages.mean()) / max(1e-4, advantages.std())
        policy[Postprocessing.ADVANTAGES] = torch.as_tensor(advantages, device=device)
        policy[Postprocessing.VALUE_TARGETS] = torch.as_tensor(targets, device=device)
        return batch
