"""The latent, value-equivalent model of the function-approximation agent (pure torch, no Ray).

    encoder      z_0 = h(s)
    transition   z_{k+1} = g(z_k, a_k) = z_k + f([z_k, onehot(a_k)])        (residual MLP)
    reward       r̂(z, a)
    continuation ĉ(z, a) = sigmoid(·): the probability that the episode goes on after (z, a)
    policy       π̂(a | z): fit to the real actions (the evaluated policy, seen only through its data)
    value        v̂(z); the value of a real state is v̂(h(s))

Parameter groups: the *value* is the value head alone; the *model* is everything else (encoder, transition,
reward, continuation, policy). Dyna moves only the value group; SC moves the model through the imagined
states (losses.latent_consistency_loss).
"""

from __future__ import annotations

import torch
from torch import nn


def mlp(inputs: int, hidden: int, outputs: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(inputs, hidden), nn.ELU(), nn.Linear(hidden, hidden), nn.ELU(), nn.Linear(hidden, outputs))


class LatentModel(nn.Module):
    """h, g, r̂, ĉ, π̂, v̂ on a latent state of size latent_dim (module docstring)."""

    MODEL_PARTS = ("encoder", "transition", "reward", "continuation", "policy")
    VALUE_PARTS = ("value",)

    def __init__(self, observation_dim: int, num_actions: int, latent_dim: int = 32, hidden: int = 64):
        super().__init__()
        self.num_actions = num_actions
        self.encoder = mlp(observation_dim, hidden, latent_dim)
        self.transition = mlp(latent_dim + num_actions, hidden, latent_dim)
        self.reward = mlp(latent_dim + num_actions, hidden, 1)
        self.continuation = mlp(latent_dim + num_actions, hidden, 1)
        self.policy = mlp(latent_dim, hidden, num_actions)
        self.value = mlp(latent_dim, hidden, 1)

    def _with_action(self, z: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return torch.cat([z, nn.functional.one_hot(action.long(), self.num_actions).to(z.dtype)], -1)

    def encode(self, observation: torch.Tensor) -> torch.Tensor:
        return self.encoder(observation)

    def step(self, z: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return z + self.transition(self._with_action(z, action))

    def predict_reward(self, z: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return self.reward(self._with_action(z, action)).squeeze(-1)

    def continuation_logit(self, z: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return self.continuation(self._with_action(z, action)).squeeze(-1)

    def reward_and_continuation_logit(self, z: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(predict_reward(z, a), continuation_logit(z, a)) on one shared (z, onehot(a)) input."""
        inputs = self._with_action(z, action)
        return self.reward(inputs).squeeze(-1), self.continuation(inputs).squeeze(-1)

    def predict_value(self, z: torch.Tensor) -> torch.Tensor:
        return self.value(z).squeeze(-1)

    def policy_logits(self, z: torch.Tensor) -> torch.Tensor:
        return self.policy(z)

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """{'model': [...], 'value': [...]}: the two groups the SC variants treat differently."""
        return {"model": [p for part in self.MODEL_PARTS for p in getattr(self, part).parameters()],
                "value": [p for part in self.VALUE_PARTS for p in getattr(self, part).parameters()]}
