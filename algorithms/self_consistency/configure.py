"""The control agent's hyperparameters → RLlib config: PPO's semantics (ppo/configure.py), then the one RLModule
holding the latent model (actor, critic and model on h(s)) and the typed hyperparameters the learner reads
(learner_config_dict["self_consistency"]). No Ray import at module level. One learner and no KL penalty are checked
when the spec is validated (config.py)."""

from __future__ import annotations

from armillary.algorithms.ppo.configure import apply as apply_ppo
from armillary.algorithms.self_consistency.config import SelfConsistentPPOHyperparameters


def apply(config, hp: SelfConsistentPPOHyperparameters, env_entry, num_learners: int):
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec

    from armillary.algorithms.self_consistency.learner import CONFIG_KEY
    from armillary.algorithms.self_consistency.module import SelfConsistentModule

    apply_ppo(config, hp, env_entry, num_learners)
    config.learners(learner_config_dict={CONFIG_KEY: hp})
    config.rl_module(rl_module_spec=RLModuleSpec(module_class=SelfConsistentModule,
                                                 model_config={"latent_dim": hp.latent_dim, "hidden": hp.hidden}))
    return config
