"""The control agent's RLModule: PPO's actor and critic on the latent state of the latent model (thin wrapper).

One module holds the whole `networks.LatentModel`: the actor is its policy head π(a|h(s)), the critic PPO uses is
its value head v̂(h(s)) — the value the grounded and self-consistency losses shape — and the encoder h is shared by
both and by the model (transition, reward, continuation). Being one RLModule, everything travels in its state, so
checkpoints save and restore the model with the policy and value. Discrete actions only (the model's transition
takes a one-hot action).

model_config: {"latent_dim": int, "hidden": int} (set by configure.apply from the typed hyperparameters).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import torch
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.apis.value_function_api import ValueFunctionAPI
from ray.rllib.core.rl_module.torch import TorchRLModule

from armillary.algorithms.self_consistency.networks import LatentModel


class SelfConsistentModule(TorchRLModule, ValueFunctionAPI):
    def setup(self):
        if not isinstance(self.action_space, gym.spaces.Discrete):
            raise ValueError(f"self-consistency-ppo needs a discrete action space (the model's transition takes a one-hot "
                             f"action), got {self.action_space}")
        if len(self.observation_space.shape) != 1:
            raise ValueError(f"self-consistency-ppo needs flat (vector) observations, got shape {self.observation_space.shape}")
        self.model = LatentModel(self.observation_space.shape[0], int(self.action_space.n),
                                 latent_dim=self.model_config["latent_dim"], hidden=self.model_config["hidden"])

    def _forward(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        z = self.model.encode(batch[Columns.OBS].float())
        return {Columns.ACTION_DIST_INPUTS: self.model.policy_logits(z), Columns.EMBEDDINGS: z}

    def _forward_inference(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        with torch.no_grad():
            return self._forward(batch)

    def _forward_exploration(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        with torch.no_grad():
            return self._forward(batch)

    def compute_values(self, batch: dict[str, Any], embeddings: Any | None = None) -> torch.Tensor:
        """PPO's critic: v̂(h(s)), the latent model's value head on the encoded real state."""
        z = self.model.encode(batch[Columns.OBS].float()) if embeddings is None else embeddings
        return self.model.predict_value(z)
