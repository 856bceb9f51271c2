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


def batch_problems(train_batch_size: int, num_learners: int, minibatch_size: int | None = None) -> list[str]:
    """A total batch must split evenly over the learners, and a minibatch fit in one learner's share (RLlib refuses
    both, but only once Ray runs)."""
    learners = max(1, num_learners)
    if train_batch_size % learners:
        return [f"algorithm.config.train_batch_size: {train_batch_size} does not split evenly over {learners} learners "
                "(resources.num_learners); use a multiple of the number of learners"]
    if minibatch_size is not None and minibatch_size > train_batch_size // learners:
        share = "" if learners == 1 else f" / {learners} learners = {train_batch_size // learners}"
        return [f"algorithm.config.minibatch_size: {minibatch_size} is larger than a learner's train batch "
                f"(train_batch_size {train_batch_size}{share}); use at most that"]
    return []


def split_batch(total: int, num_learners: int) -> int:
    """Per-learner share of a total batch, so the effective batch is the same on any number of learners."""
    learners = max(1, num_learners)
    if total % learners:
        raise ValueError(f"batch size {total} does not split evenly over {learners} learners")
    return total // learners
