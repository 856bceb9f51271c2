"""The `ppo` algorithm's RLlib config class: RLlib's PPOConfig with Armillary's lean learner and env runner.

Both do what RLlib's own would, with less per-step and per-minibatch Python (algorithms/ppo/learner.py,
algorithms/ppo/env_runner.py; measured in benchmarks/README.md), and hand over to RLlib's generic code for
set-ups they do not cover. They are the defaults of this config class, not set by
`armillary.algorithms.ppo.configure.apply`, because other algorithms (domino, skills) reuse `apply` on their own
config classes with their own learners; an explicit learner_class set there would override theirs.
"""

from __future__ import annotations

from ray.rllib.algorithms.ppo import PPOConfig


class ArmillaryPPOConfig(PPOConfig):
    def __init__(self, algo_class=None):
        super().__init__(algo_class=algo_class)
        from armillary.algorithms.ppo.env_runner import LeanSingleAgentEnvRunner

        self.env_runner_cls = LeanSingleAgentEnvRunner

    def get_default_learner_class(self):
        if self.framework_str == "torch":
            from armillary.algorithms.ppo.learner import LeanPPOTorchLearner

            return LeanPPOTorchLearner
        return super().get_default_learner_class()
