"""The algorithm registry: a spec names an algorithm; this says what its hyperparameters are and how
they become an RLlib AlgorithmConfig.

An entry's `apply` sets only algorithm semantics (losses, batch sizes, networks). Everything about
where the work runs (env runners, learners, GPUs) is set by armillary.platform.rllib_config from the
resources profile, so moving an experiment from a laptop to a cluster never changes what it learns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from pydantic import BaseModel, ConfigDict

from armillary.platform.catalog import Catalog

if TYPE_CHECKING:  # keep this module importable without Ray
    from ray.rllib.algorithms.algorithm_config import AlgorithmConfig

    from armillary.envs.registry import EnvEntry


class Hyperparameters(BaseModel):
    """Base class of every algorithm's hyperparameters: typed, documented, unknown fields rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class AlgorithmEntry:
    name: str
    hyperparameters: type[Hyperparameters]
    # Returns the RLlib config class to start from (imported lazily: Ray is heavy).
    config_class: Callable[[], type["AlgorithmConfig"]]
    # apply(config, hyperparameters, env_entry, num_learners) -> config with the algorithm's semantics set.
    apply: Callable[["AlgorithmConfig", Any, "EnvEntry", int], "AlgorithmConfig"]
    description: str
    smoke: dict[str, Any] = field(default_factory=dict)
    # Names of the RL modules whose weights make up the exported policy (plain torch state_dict).
    policy_modules: tuple[str, ...] = ("default_policy",)
    # Optional: write method-specific pictures/files (occupancy maps, clips, tables) for a trained
    # algorithm into a folder; the platform logs them to the trial's MLflow run at the end of training.
    final_artifacts: Callable[[Any, Any], None] | None = None
    # Optional: what must hold or run before any trial, done once with the hyperparameters by the driver (connected
    # to Ray, before any run folder or MLflow run): e.g. a model file must exist where the job runs, a Ray Serve
    # deployment of a reward model every trial shares must be up. Raises ValueError naming the field otherwise.
    prepare: Callable[[Any], None] | None = None
    # Optional: result key → column title of the few figures the live progress table shows instead of the mean
    # episode return (for algorithms whose episodes have no meaningful return, e.g. SCoRe's accuracies).
    progress_metrics: dict[str, str] | None = None
    # Optional: the values each bounded metric can take with these hyperparameters, metric key → (low, high), e.g.
    # an accuracy in [0, 1]. Reports clip their confidence intervals to these bounds.
    metric_ranges: Callable[[Any], dict[str, tuple[float, float]]] | None = None


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
