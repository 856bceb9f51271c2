"""PPO (RLlib's implementation), the baseline every Armillary method is compared against."""

from __future__ import annotations

from armillary.algorithms.ppo.config import PPOHyperparameters
from armillary.algorithms.ppo.configure import apply
from armillary.algorithms.registry import register
from armillary.core.entries import AlgorithmEntry


def _config_class():
    # RLlib's PPOConfig whose default learner and env runner do the same work with less per-minibatch and
    # per-step Python (algorithms/ppo/algorithm.py, learner.py, env_runner.py).
    from armillary.algorithms.ppo.algorithm import ArmillaryPPOConfig

    return ArmillaryPPOConfig


ENTRY = register(
    AlgorithmEntry(
        name="ppo",
        hyperparameters=PPOHyperparameters,
        config_class=_config_class,
        apply=apply,
        description="Proximal Policy Optimization (RLlib), clipped objective with GAE.",
        smoke={"train_batch_size": 256, "minibatch_size": 64, "num_epochs": 1},
    )
)
