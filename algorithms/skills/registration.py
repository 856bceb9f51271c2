"""One registration for the skill algorithms: VIC, DISDAIN and RVIC differ only in their hyperparameters,
their method (rewards and discriminators, a SkillMethod in the method folder's losses.py) and whether the
start state is part of what the policy and the discriminator see. No Ray import: Ray loads on first use."""

from __future__ import annotations

import importlib
import math
from typing import Any, Callable

from armillary.algorithms.registry import register
from armillary.core.entries import AlgorithmEntry
from armillary.core.hyperparameters import Hyperparameters

# The final pictures on one episode per skill: at 32, Pong's 64 skills x 32 steps took over 5 minutes after the two
# iterations (the same 65k env steps as 128 training iterations of the smoke).
SMOKE = {"train_batch_size": 256, "minibatch_size": 64, "num_epochs": 1, "evaluation_episodes_per_skill": 2,
         "final_episodes_per_skill": 1}


def _config_class():
    from armillary.algorithms.skills.algorithm import SkillPPOConfig

    return SkillPPOConfig


def _final_artifacts(algo, folder) -> None:
    from armillary.algorithms.skills.artifacts import write_skill_artifacts

    write_skill_artifacts(algo, folder)


def _headline_metrics(name: str) -> dict[str, str]:
    return {f"{name}/effective_skills": "effective skills (eval)", f"{name}/effective_skills_train": "effective skills (train)",
            f"{name}/discriminator_accuracy": "discriminator acc"}


def _metric_ranges(name: str) -> Callable[[Any], dict[str, tuple[float, float]]]:
    """q(z|s_T) ≤ 1, so exp(E[log q + log N]) ≤ N; the plug-in I(Z; S_T) ≤ H(Z) = log2 N bits."""

    def ranges(hp) -> dict[str, tuple[float, float]]:
        n = float(hp.num_skills)
        return {f"{name}/effective_skills": (0.0, n), f"{name}/effective_skills_train": (0.0, n),
                f"{name}/discriminator_accuracy": (0.0, 1.0), f"{name}/mutual_information_final_bits": (0.0, math.log2(n))}

    return ranges


def register_skill_algorithm(*, name: str, hyperparameters: type[Hyperparameters], method: str,
                             include_start: bool | Callable[[Any], bool], description: str) -> AlgorithmEntry:
    """method: "module:Class" of the SkillMethod; include_start: a constant or a function of the hyperparameters."""

    def apply(config, hp, env_entry, num_learners: int):
        from armillary.algorithms.skills.configure import configure_skill_algorithm

        module, _, qualname = method.partition(":")
        method_class = getattr(importlib.import_module(module), qualname)
        start = include_start(hp) if callable(include_start) else include_start
        return configure_skill_algorithm(config, hp, env_entry, num_learners, method_class, include_start=start)

    return register(AlgorithmEntry(name=name, hyperparameters=hyperparameters, config_class=_config_class, apply=apply,
                                   description=description, smoke=dict(SMOKE), final_artifacts=_final_artifacts,
                                   progress_metrics=_headline_metrics(name), metric_ranges=_metric_ranges(name),
                                   metrics=(f"{name}/*",)))
