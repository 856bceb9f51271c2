"""The algorithm registry: a spec names an algorithm; this says what its hyperparameters are and how
they become an RLlib AlgorithmConfig.

An entry's `apply` sets only algorithm semantics (losses, batch sizes, networks). Everything about
where the work runs (env runners, learners, GPUs) is set by armillary.platform.rllib_config from the
resources profile, so moving an experiment from a laptop to a cluster never changes what it learns.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from armillary.platform.catalog import Catalog
from armillary.platform.strict import StrictModel

if TYPE_CHECKING:  # keep this module importable without Ray
    from ray.rllib.algorithms.algorithm_config import AlgorithmConfig

    from armillary.envs.registry import EnvEntry


class Hyperparameters(StrictModel):
    """Base class of every algorithm's hyperparameters: typed, documented, unknown fields, booleans for numbers and
    non-finite floats rejected."""

    def layout_problems(self, num_learners: int, num_env_runners: int) -> list[str]:
        """What cannot run with this many learners and env runners (e.g. a batch that does not split over the
        learners), one 'algorithm.config.field: what is wrong' line each. Checked when the spec is validated."""
        return []


# What RLlib's results hold (new API stack, flattened by platform.metrics.summarize): the names a Tune metric or a stop
# criterion may use besides the algorithm's own (AlgorithmEntry.metrics). Episode and bookkeeping figures by exact name,
# so a typo or an old-API name (`episode_reward_mean`) is refused; RLlib's per-module learner and replay-buffer figures,
# whose names depend on module ids and settings, by namespace. tests/test_presets.py checks them against real results.
RLLIB_METRICS: tuple[str, ...] = (
    "training_iteration", "iterations_since_restore", "time_this_iter_s", "time_total_s", "time_since_restore",
    "timestamp", "done", "num_env_steps_sampled_lifetime", "num_training_step_calls_per_iteration",
    "throughput/env_steps_per_second",
    *(f"env_runners/{name}" for name in (
        "episode_return_mean", "episode_return_min", "episode_return_max", "episode_len_mean", "episode_len_min",
        "episode_len_max", "episode_duration_sec_mean", "num_episodes", "num_episodes_lifetime", "num_env_steps_sampled",
        "num_env_steps_sampled_lifetime", "agent_episode_return_mean/*", "module_episode_return_mean/*",
        "num_agent_steps_sampled/*", "num_agent_steps_sampled_lifetime/*", "num_module_steps_sampled/*",
        "num_module_steps_sampled_lifetime/*", "sample", "time_between_sampling", "env_to_module_sum_episodes_length_in",
        "env_to_module_sum_episodes_length_out")),
    "learners/*", "replay_buffer/*", "perf/*", "env_runner_group/*",
)


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
    # The algorithm's own figures (`<algorithm>/<name>`; fnmatch patterns such as "domino/lagrange/*"), reported on top
    # of RLLIB_METRICS: together, the names `tune.metric` and `stop.metric` may use (checked by validate).
    metrics: tuple[str, ...] = ()

    def reported_metric_names(self) -> list[str]:
        return [*RLLIB_METRICS, *self.metrics]

    def reports(self, name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, pattern) for pattern in self.reported_metric_names())


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
