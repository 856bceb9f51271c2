"""DISDAIN registered with the platform: `armillary run disdain/four-rooms`."""

from __future__ import annotations

from armillary.algorithms.disdain.config import DisdainHyperparameters
from armillary.algorithms.registry import AlgorithmEntry, register


def _config_class():
    from armillary.algorithms.skills.algorithm import SkillPPOConfig

    return SkillPPOConfig


def apply(config, hp: DisdainHyperparameters, env_entry, num_learners: int):
    from armillary.algorithms.disdain.losses import DisdainMethod
    from armillary.algorithms.skills.configure import configure_skill_algorithm

    return configure_skill_algorithm(config, hp, env_entry, num_learners, DisdainMethod, include_start=False)


def final_artifacts(algo, folder) -> None:
    from armillary.algorithms.skills.artifacts import write_skill_artifacts

    write_skill_artifacts(algo, folder)


ENTRY = register(
    AlgorithmEntry(
        name="disdain",
        hyperparameters=DisdainHyperparameters,
        config_class=_config_class,
        apply=apply,
        description="DISDAIN: VIC-style skills with an ensemble discriminator and a disagreement bonus (PPO learner).",
        smoke={"train_batch_size": 256, "minibatch_size": 64, "num_epochs": 1, "evaluation_episodes_per_skill": 2},
        final_artifacts=final_artifacts,
    )
)
