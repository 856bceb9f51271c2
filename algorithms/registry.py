"""The algorithm registry: a spec names an algorithm; its entry (armillary.core.entries.AlgorithmEntry) says
what its hyperparameters are and how they become an RLlib AlgorithmConfig.
"""

from __future__ import annotations

from armillary.core.catalog import Catalog
from armillary.core.entries import AlgorithmEntry
from armillary.envs import registry as environments

# Modules whose import registers algorithms (imported on first lookup).
_CATALOG: Catalog[AlgorithmEntry] = Catalog(
    "algorithm",
    (
        "armillary.algorithms.ppo.entry",
        "armillary.algorithms.dqn.entry",
        "armillary.algorithms.vic.entry",
        "armillary.algorithms.disdain.entry",
        "armillary.algorithms.rvic.entry",
        "armillary.algorithms.domino.entry",
        "armillary.algorithms.score.entry",
        "armillary.algorithms.clip_reward.entry",
        "armillary.algorithms.self_consistency.entry",
    ),
)

# Environments an algorithm brings with it: SCoRe's tasks are its environments (see that module's docstring).
environments.CATALOG.include(("armillary.algorithms.score.task_env",))


def register(entry: AlgorithmEntry) -> AlgorithmEntry:
    return _CATALOG.add(entry.name, entry)


def names() -> list[str]:
    return _CATALOG.names()


def get(name: str) -> AlgorithmEntry:
    return _CATALOG.get(name)


def split_batch(total: int, num_learners: int) -> int:
    """Per-learner share of a total batch, so the effective batch is the same on any number of learners."""
    learners = max(1, num_learners)
    if total % learners:
        raise ValueError(f"batch size {total} does not split evenly over {learners} learners")
    return total // learners
