"""Skill discriminators: q(z | x) for x an encoded state (or a start and end state side by side).

Pure torch, no Ray. All networks return log-probabilities (log-softmax) over the N skills.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn


def mlp(input_dim: int, hidden_sizes: Sequence[int], output_dim: int, activation: str = "relu") -> nn.Sequential:
    act = {"relu": nn.ReLU, "tanh": nn.Tanh}[activation]
    layers: list[nn.Module] = []
    width = input_dim
    for hidden in hidden_sizes:
        layers += [nn.Linear(width, hidden), act()]
        width = hidden
    layers.append(nn.Linear(width, output_dim))
    return nn.Sequential(*layers)


def discriminator_inputs(final_state: torch.Tensor, start_state: torch.Tensor | None) -> torch.Tensor:
    """[s_T, s_0] side by side (or s_T alone): the network learns any relation between them."""
    return final_state if start_state is None else torch.cat([final_state, start_state], dim=-1)


class SkillDiscriminator(nn.Module):
    """One classifier q(z | x): an MLP on the encoded input, log-softmax over N skills. [B, D] → [B, N]."""

    def __init__(self, input_dim: int, num_skills: int, hidden_sizes: Sequence[int] = (64,), activation: str = "relu"):
        super().__init__()
        self.num_skills = num_skills
        self.net = mlp(input_dim, hidden_sizes, num_skills, activation)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return torch.log_softmax(self.net(inputs), dim=-1)


class DiscriminatorEnsemble(nn.Module):
    """E classifiers with independent initialisation (DISDAIN's source of disagreement). [B, D] → [E, B, N].

    Members share nothing, not even the torso: each nn.Linear draws its own initial weights, so members
    agree where training data pins them down and disagree elsewhere.
    """

    def __init__(
        self,
        input_dim: int,
        num_skills: int,
        ensemble_size: int,
        hidden_sizes: Sequence[int] = (64,),
        activation: str = "relu",
    ):
        super().__init__()
        if ensemble_size < 1:
            raise ValueError(f"ensemble_size must be ≥ 1, got {ensemble_size}")
        self.num_skills = num_skills
        self.members = nn.ModuleList(
            SkillDiscriminator(input_dim, num_skills, hidden_sizes, activation) for _ in range(ensemble_size)
        )

    @property
    def ensemble_size(self) -> int:
        return len(self.members)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return torch.stack([member(inputs) for member in self.members], dim=0)


def ensemble_cross_entropy(member_log_probs: torch.Tensor, skills: torch.Tensor) -> torch.Tensor:
    """Σ_e mean_b −log q_e(z_b | x_b): every member is trained on the same (x, z) pairs. [E, B, N], [B] → []."""
    picked = member_log_probs.gather(-1, skills.long().view(1, -1, 1).expand(member_log_probs.shape[0], -1, 1))
    return -picked.squeeze(-1).mean(-1).sum()
