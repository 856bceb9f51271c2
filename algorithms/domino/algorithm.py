"""DominoPPO: PPO's training step (the multiplier and ψ/v̄ updates happen inside the learner); each iteration's
result then carries the learner's DOMiNO figures as top-level `domino/<name>` keys, e.g.
result["domino"]["lagrange"]["1"] (flattened by the platform to `domino/lagrange/1`)."""

from __future__ import annotations

from ray.rllib.utils.metrics import LEARNER_RESULTS

from armillary.algorithms.domino.learner import DominoPPOLearner, domino_hyperparameters
from armillary.algorithms.domino.module import DOMINO_MODULE_ID
from armillary.algorithms.ppo.algorithm import ArmillaryPPO, ArmillaryPPOConfig

NAMESPACE = "domino"
PER_POLICY = ("lagrange", "value_ratio", "constraint_margin", "nearest_sf_distance", "value")
SET_FIGURES = ("min_pairwise_sf_distance", "constraints_met", "diversity_reward_mean", "mixed_reward_mean", "extrinsic_reward_mean",
               "sf_td_loss", "sf_network_gap")  # the last two with successor_features="network" only


class DominoPPOConfig(ArmillaryPPOConfig):  # the `ppo` algorithm's lean env runner (and learner path)
    def __init__(self, algo_class=None):
        super().__init__(algo_class=algo_class or DominoPPO)

    def get_default_learner_class(self):
        return DominoPPOLearner


def figure_names(num_policies: int) -> list[str]:
    names = list(SET_FIGURES)
    for name in PER_POLICY:
        first = 0 if name in ("nearest_sf_distance", "value") else 1
        names += [f"{name}/{i}" for i in range(first, num_policies)]
    return names


class DominoPPO(ArmillaryPPO):  # the lean env runner's one-round sampling (ppo/algorithm.py)
    @classmethod
    def get_default_config(cls) -> DominoPPOConfig:
        return DominoPPOConfig()

    def step(self) -> dict:
        """PPO's iteration; then the learner's DOMiNO figures, already reduced in its results, are copied into the
        result's `domino` namespace (a copy of the reduced values, not a second set of logged metrics)."""
        results = super().step()
        learner_figures = results.get(LEARNER_RESULTS, {}).get(DOMINO_MODULE_ID, {})
        num_policies = domino_hyperparameters(self.config).num_policies
        namespace = results.setdefault(NAMESPACE, {})
        for name in figure_names(num_policies):
            if name in learner_figures:
                *groups, leaf = name.split("/")
                target = namespace
                for group in groups:
                    target = target.setdefault(group, {})
                target[leaf] = float(learner_figures[name])
        return results
