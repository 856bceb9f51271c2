"""RVIC registered with the platform: `armillary run rvic/open-room`."""

from __future__ import annotations

from armillary.algorithms.registry import AlgorithmEntry, register
from armillary.algorithms.rvic.config import RvicHyperparameters


def _config_class():
    from armillary.algorithms.skills.algorithm import SkillPPOConfig

    return SkillPPOConfig


def apply(config, hp: RvicHyperparameters, env_entry, num_learners: int):
    from armillary.algorithms.rvic.losses import RvicMethod
    from armillary.algorithms.skills.configure import configure_skill_algorithm

    return configure_skill_algorithm(config, hp, env_entry, num_learners, RvicMethod, include_start=True)


def final_artifacts(algo, folder) -> None:
    from armillary.algorithms.skills.artifacts import write_skill_artifacts

    write_skill_artifacts(algo, folder)


ENTRY = register(
    AlgorithmEntry(
        name="rvic",
        hyperparameters=RvicHyperparameters,
        config_class=_config_class,
        apply=apply,
        description="RVIC: skills that change the agent's relation to its surroundings, reward log q_rel − log q_abs (PPO learner).",
        smoke={"train_batch_size": 256, "minibatch_size": 64, "num_epochs": 1, "evaluation_episodes_per_skill": 2},
        final_artifacts=final_artifacts,
    )
)
