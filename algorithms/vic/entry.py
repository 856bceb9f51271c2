"""VIC registered with the platform: `armillary run vic/four-rooms`."""

from __future__ import annotations

from armillary.algorithms.registry import AlgorithmEntry, register
from armillary.algorithms.vic.config import VicHyperparameters


def _config_class():
    from armillary.algorithms.skills.algorithm import SkillPPOConfig

    return SkillPPOConfig


def apply(config, hp: VicHyperparameters, env_entry, num_learners: int):
    from armillary.algorithms.skills.configure import configure_skill_algorithm
    from armillary.algorithms.vic.losses import VicMethod

    return configure_skill_algorithm(config, hp, env_entry, num_learners, VicMethod, include_start=hp.condition_on_start)


def final_artifacts(algo, folder) -> None:
    from armillary.algorithms.skills.artifacts import write_skill_artifacts

    write_skill_artifacts(algo, folder)


ENTRY = register(
    AlgorithmEntry(
        name="vic",
        hyperparameters=VicHyperparameters,
        config_class=_config_class,
        apply=apply,
        description="VIC: skills that maximise log q(z | s_0, s_T) − log p(z) at the final state (PPO learner).",
        smoke={"train_batch_size": 256, "minibatch_size": 64, "num_epochs": 1, "evaluation_episodes_per_skill": 2},
        final_artifacts=final_artifacts,
    )
)
