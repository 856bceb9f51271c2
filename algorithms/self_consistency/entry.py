"""The self-consistent control agent registered with the platform: `armillary run self-consistency/cartpole`
(hyperparameters: config.py; apply(): configure.py)."""

from __future__ import annotations

from armillary.algorithms.registry import register
from armillary.algorithms.self_consistency.config import SelfConsistentPPOHyperparameters
from armillary.algorithms.self_consistency.configure import apply
from armillary.core.entries import AlgorithmEntry


def _config_class():
    from armillary.algorithms.self_consistency.algorithm import SelfConsistentPPOConfig

    return SelfConsistentPPOConfig


ENTRY = register(
    AlgorithmEntry(
        name="self-consistency-ppo",
        hyperparameters=SelfConsistentPPOHyperparameters,
        config_class=_config_class,
        apply=apply,
        description="PPO on the latent state of a value-equivalent model, trained with the model's grounded losses and "
        "a self-consistency loss (SC-Direct, Dyna, …) on K-step rollouts imagined under the current policy.",
        smoke={"train_batch_size": 256, "minibatch_size": 64, "num_epochs": 1},
        metrics=("self-consistency-ppo/*",),
    )
)
