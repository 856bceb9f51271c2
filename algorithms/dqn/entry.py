"""DQN (RLlib's implementation): the off-policy, replay-based baseline (double Q, dueling, n-step)."""

from __future__ import annotations

from armillary.algorithms.dqn.config import DQNHyperparameters
from armillary.algorithms.dqn.configure import apply
from armillary.algorithms.registry import register
from armillary.core.entries import AlgorithmEntry


def _config_class():
    from ray.rllib.algorithms.dqn import DQNConfig

    return DQNConfig


ENTRY = register(
    AlgorithmEntry(
        name="dqn",
        hyperparameters=DQNHyperparameters,
        config_class=_config_class,
        apply=apply,
        description="Deep Q-Network (RLlib): prioritized replay, double Q, dueling heads, n-step returns.",
        smoke={"learning_starts": 64, "train_batch_size": 32, "replay_capacity": 1000, "epsilon_steps": 200},
    )
)
