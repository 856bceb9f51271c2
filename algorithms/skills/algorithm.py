"""SkillPPO: PPO over skill episodes, plus a near-greedy skill evaluation and namespaced method metrics.

The training step is PPO's; afterwards the learner's discriminator figures are re-logged as top-level
result keys `<method>/<name>` (e.g. result["disdain"]["bonus_mean"]), and every `evaluation_interval`
iterations the skills are evaluated inside the learner (it holds both the policy and the discriminator).
"""

from __future__ import annotations

import torch
from ray.rllib.algorithms.ppo import PPO, PPOConfig
from ray.rllib.core import DEFAULT_MODULE_ID
from ray.rllib.core.columns import Columns
from ray.rllib.utils.metrics import LEARNER_RESULTS

from armillary.algorithms.skills.connectors import REWARD_METRICS
from armillary.algorithms.skills.env import SkillEnv
from armillary.algorithms.skills.evaluation import rollout_skills, skill_metrics
from armillary.algorithms.skills.learner import SkillPPOLearner
from armillary.algorithms.skills.method import SkillMethod
from armillary.algorithms.skills.module import DISCRIMINATOR_MODULE_ID, skill_method

LEARNER_METRICS = REWARD_METRICS + ("discriminator_loss", "discriminator_accuracy", "relative_loss", "absolute_loss")
EVALUATION_ENVS = 64  # envs stepped in lockstep during evaluation


class SkillPPOConfig(PPOConfig):
    def __init__(self, algo_class=None):
        super().__init__(algo_class=algo_class or SkillPPO)

    def get_default_learner_class(self):
        return SkillPPOLearner


def evaluate_on_learner(learner, episodes_per_skill: int, epsilon: float, seed: int, record_frames: bool = False):
    """Runs inside a Learner: roll out every skill with the current policy, score with the discriminator."""
    envs = getattr(learner, "_skill_evaluation_envs", None)
    if envs is None:
        envs = [SkillEnv(learner.config.env_config) for _ in range(EVALUATION_ENVS)]
        learner._skill_evaluation_envs = envs
    policy = learner.module[DEFAULT_MODULE_ID].unwrapped()
    discriminator = learner.module[DISCRIMINATOR_MODULE_ID].unwrapped()
    device = next(policy.parameters()).device

    def act(obs: torch.Tensor) -> torch.Tensor:
        return policy.forward_inference({Columns.OBS: obs.to(device)})[Columns.ACTION_DIST_INPUTS].cpu()

    def discriminate(final_obs: torch.Tensor) -> dict:
        outputs, _ = discriminator.discriminate_observations(final_obs.to(device))
        return {k: v.cpu() for k, v in outputs.items()}

    rollouts = rollout_skills(envs, act, episodes_per_skill, epsilon=epsilon, seed=seed, record_frames=record_frames)
    return rollouts, skill_metrics(rollouts, discriminator.method, discriminate)


class SkillPPO(PPO):
    @classmethod
    def get_default_config(cls) -> SkillPPOConfig:
        return SkillPPOConfig()

    @property
    def skill_method(self) -> SkillMethod:
        return skill_method(self.config)

    def training_step(self) -> None:
        super().training_step()
        namespace = self.skill_method.namespace
        for name in LEARNER_METRICS:
            key = (LEARNER_RESULTS, DISCRIMINATOR_MODULE_ID, name)
            if key in self.metrics:
                self.metrics.log_value((namespace, name), float(self.metrics.peek(key)), window=1)
        interval = self.skill_method.hp.evaluation_interval
        if interval and (self.iteration + 1) % interval == 0:
            for name, value in self.evaluate_skills()[1].items():
                self.metrics.log_value((namespace, name), value, window=1)

    def evaluate_skills(self, episodes_per_skill: int | None = None, record_frames: bool = False):
        """(SkillRollouts, figures) from the first learner's current policy and discriminator."""
        hp = self.skill_method.hp
        episodes = episodes_per_skill or hp.evaluation_episodes_per_skill
        epsilon, seed = hp.evaluation_epsilon, int(self.iteration) * 100_003
        results = self.learner_group.foreach_learner(
            lambda learner: evaluate_on_learner(learner, episodes, epsilon, seed, record_frames)
        )
        first = next(iter(results))
        if not first.ok:
            raise first.get()
        return first.get()
