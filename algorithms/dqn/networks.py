"""Q-networks (pure torch): an MLP for state vectors, the Nature-DQN torso for stacked frames."""

from __future__ import annotations

import torch
from torch import nn


class QNetwork(nn.Module):
    def __init__(self, observation_shape: tuple[int, ...], num_actions: int, hidden_sizes: list[int]):
        super().__init__()
        layers: list[nn.Module] = []
        if len(observation_shape) == 3:  # frames [H, W, C] (channels last, as the Atari wrappers give them)
            channels = observation_shape[-1]
            self.torso = nn.Sequential(
                nn.Conv2d(channels, 32, 8, stride=4), nn.ReLU(), nn.Conv2d(32, 64, 4, stride=2), nn.ReLU(),
                nn.Conv2d(64, 64, 3, stride=1), nn.ReLU(), nn.Flatten())
            with torch.no_grad():
                width = self.torso(torch.zeros(1, channels, *observation_shape[:2])).shape[1]
            self.pixels = True
        else:
            self.torso, width, self.pixels = nn.Flatten(), int(torch.tensor(observation_shape).prod()), False
        for size in hidden_sizes:
            layers += [nn.Linear(width, size), nn.ReLU()]
            width = size
        layers.append(nn.Linear(width, num_actions))
        self.head = nn.Sequential(*layers)

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        x = observations.float()
        if observations.dtype == torch.uint8:
            x = x / 255.0
        if self.pixels:
            x = x.permute(0, 3, 1, 2)
        return self.head(self.torso(x))
