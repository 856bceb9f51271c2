"""Turns a skill algorithm's hyperparameters into RLlib config: the shared body of each entry's apply().

PPO's own semantics come from ppo/configure.py; on top: the skill env wrapper, a MultiRLModule with the
policy and the learner-only discriminator module, the learner that trains both, and the settings the
learner and the evaluation read: the SkillMethod with its typed hyperparameters (learner_config_dict["skills"]).
"""

from __future__ import annotations

from ray.rllib.core import DEFAULT_MODULE_ID
from ray.rllib.core.rl_module.multi_rl_module import MultiRLModuleSpec
from ray.rllib.core.rl_module.rl_module import RLModuleSpec

from armillary.algorithms.ppo.configure import apply as apply_ppo
from armillary.algorithms.ppo.module import VALUE_STREAMS, MultiValuePPOModule
from armillary.algorithms.skills.config import SkillHyperparameters
from armillary.algorithms.skills.env import SkillEnv
from armillary.algorithms.skills.method import SkillMethod
from armillary.algorithms.skills.module import DISCRIMINATOR_MODULE_ID, DiscriminatorModule


def skill_length(hp: SkillHyperparameters, env_options: dict) -> int:
    if hp.skill_length is not None:
        return hp.skill_length
    if env_options.get("max_episode_steps"):
        return int(env_options["max_episode_steps"])
    raise ValueError("skill_length (T) is not set and the environment has no max_episode_steps to take it from")


def configure_skill_algorithm(config, hp: SkillHyperparameters, env_entry, num_learners: int, method: type[SkillMethod], include_start: bool):
    apply_ppo(config, hp, env_entry, num_learners)
    options = dict(config.env_config or {})
    env_config = {
        "env": env_entry.name,
        "options": options,
        "num_skills": hp.num_skills,
        "skill_length": skill_length(hp, options),
        "include_start": include_start,
        "include_time": hp.include_time,
    }
    probe = SkillEnv(env_config)  # validates the options now, on the driver, and gives the spaces
    skill_method = method(probe.layout, hp)
    probe.close()
    config.environment(env=SkillEnv, env_config=env_config)
    config.learners(learner_config_dict={"skills": skill_method})
    streams = skill_method.value_streams
    policy_model = dict(config.model_config)
    config.rl_module(
        rl_module_spec=MultiRLModuleSpec(
            rl_module_specs={
                DEFAULT_MODULE_ID: (
                    RLModuleSpec(module_class=MultiValuePPOModule, model_config={**policy_model, VALUE_STREAMS: list(streams)})
                    if streams
                    else RLModuleSpec(model_config=policy_model)
                ),
                DISCRIMINATOR_MODULE_ID: RLModuleSpec(
                    module_class=DiscriminatorModule,
                    learner_only=True,
                    observation_space=probe.observation_space,
                    action_space=probe.action_space,
                    model_config={"method": skill_method},
                ),
            }
        )
    )
    return config
