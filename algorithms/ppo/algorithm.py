"""The `ppo` algorithm's RLlib classes: RLlib's PPO with Armillary's lean learner and env runner, sampling in rounds.

The lean learner and env runner do what RLlib's would, with less per-step and per-minibatch Python
(algorithms/ppo/learner.py, algorithms/ppo/env_runner.py; measured in benchmarks/README.md), and hand over to RLlib's
generic code for set-ups they do not cover. They are the defaults of this config class, not set by
`armillary.algorithms.ppo.configure.apply`, because other algorithms (domino, skills) reuse `apply` on their own
config classes with their own learners; an explicit learner_class set there would override theirs.

`ArmillaryPPO.training_step` is RLlib's (new API stack) with one change that makes results independent of the
resources layout (README.md, "Layout invariance"): it samples exactly one round from the env runners, each env taking
the same number of slots, instead of repeating rounds until the sampled steps reach the train batch (a reset slot is
not a step, so a round falls short by its episode ends, and a second round would double the batch).
"""

from __future__ import annotations

from ray.rllib.algorithms.ppo import PPO, PPOConfig
from ray.rllib.core import ALL_MODULES
from ray.rllib.execution.rollout_ops import synchronous_parallel_sample
from ray.rllib.utils.metrics import (
    ENV_RUNNER_RESULTS,
    ENV_RUNNER_SAMPLING_TIMER,
    LEARNER_RESULTS,
    LEARNER_UPDATE_TIMER,
    NUM_ENV_STEPS_SAMPLED_LIFETIME,
    NUM_MODULE_STEPS_TRAINED_LIFETIME,
    SYNCH_WORKER_WEIGHTS_TIMER,
    TIMERS,
)


class ArmillaryPPO(PPO):
    def samples_in_one_round(self) -> bool:
        """Whether the env runners are the lean ones (a fixed number of slots per env per sample())."""
        from armillary.algorithms.ppo.env_runner import LeanSingleAgentEnvRunner

        runner_class = self.config.env_runner_cls
        return (self.config.enable_env_runner_and_connector_v2 and isinstance(runner_class, type)
                and issubclass(runner_class, LeanSingleAgentEnvRunner) and self.config.count_steps_by == "env_steps")

    def training_step(self) -> None:
        if not self.samples_in_one_round():
            return super().training_step()
        # RLlib's PPO.training_step (new API stack, ray 2.60), sampling one round.
        with self.metrics.log_time((TIMERS, ENV_RUNNER_SAMPLING_TIMER)):
            # max_env_steps=1: every runner samples once (its envs' fixed share), whatever the steps come to.
            episodes, env_runner_results = synchronous_parallel_sample(
                worker_set=self.env_runner_group, max_env_steps=1, sample_timeout_s=self.config.sample_timeout_s,
                _uses_new_env_runners=True, _return_metrics=True)
            if not episodes:
                return
            self.metrics.aggregate(env_runner_results, key=ENV_RUNNER_RESULTS)
        with self.metrics.log_time((TIMERS, LEARNER_UPDATE_TIMER)):
            learner_results = self.learner_group.update(
                episodes=episodes,
                timesteps={
                    NUM_ENV_STEPS_SAMPLED_LIFETIME: self.metrics.peek(
                        (ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME)),
                    NUM_MODULE_STEPS_TRAINED_LIFETIME: self.metrics.peek(
                        (LEARNER_RESULTS, ALL_MODULES, NUM_MODULE_STEPS_TRAINED_LIFETIME), default=0),
                },
                num_epochs=self.config.num_epochs, minibatch_size=self.config.minibatch_size,
                shuffle_batch_per_epoch=self.config.shuffle_batch_per_epoch)
            self.metrics.aggregate(learner_results, key=LEARNER_RESULTS)
        with self.metrics.log_time((TIMERS, SYNCH_WORKER_WEIGHTS_TIMER)):
            modules_to_update = set(learner_results[0].keys()) - {ALL_MODULES}
            self.env_runner_group.sync_weights(from_worker_or_learner_group=self.learner_group,
                                               policies=modules_to_update, inference_only=True)


class ArmillaryPPOConfig(PPOConfig):
    def __init__(self, algo_class=None):
        super().__init__(algo_class=algo_class or ArmillaryPPO)
        from armillary.algorithms.ppo.env_runner import LeanSingleAgentEnvRunner

        self.env_runner_cls = LeanSingleAgentEnvRunner

    def get_default_learner_class(self):
        if self.framework_str == "torch":
            from armillary.algorithms.ppo.learner import LeanPPOTorchLearner

            return LeanPPOTorchLearner
        return super().get_default_learner_class()
