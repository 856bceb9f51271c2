"""The control agent's RLlib classes: Armillary's PPO (lean learner and env runner, one sampling round) with the
self-consistent learner; after each training step the learner's model figures are re-logged as top-level
`self-consistency-ppo/<name>` results."""

from __future__ import annotations

from ray.rllib.core import DEFAULT_MODULE_ID
from ray.rllib.utils.metrics import LEARNER_RESULTS

from armillary.algorithms.ppo.algorithm import ArmillaryPPO, ArmillaryPPOConfig
from armillary.algorithms.self_consistency.learner import FIGURES, SelfConsistentPPOLearner

NAMESPACE = "self-consistency-ppo"


class SelfConsistentPPOConfig(ArmillaryPPOConfig):
    def __init__(self, algo_class=None):
        super().__init__(algo_class=algo_class or SelfConsistentPPO)

    def get_default_learner_class(self):
        return SelfConsistentPPOLearner


class SelfConsistentPPO(ArmillaryPPO):
    @classmethod
    def get_default_config(cls) -> SelfConsistentPPOConfig:
        return SelfConsistentPPOConfig()

    def training_step(self) -> None:
        super().training_step()
        for name in FIGURES:
            key = (LEARNER_RESULTS, DEFAULT_MODULE_ID, name)
            if key in self.metrics:
                self.metrics.log_value((NAMESPACE, name), float(self.metrics.peek(key)), window=1)
