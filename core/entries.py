"""What the catalogs hold: an algorithm entry and an environment entry (with the base of its typed options).

An algorithm entry's `apply` sets only algorithm semantics (losses, batch sizes, networks). Everything about
where the work runs (env runners, learners, GPUs) is set by armillary.platform.rllib_config from the
resources profile, so moving an experiment from a laptop to a cluster never changes what it learns.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from armillary.core.hyperparameters import Hyperparameters
from armillary.core.strict import StrictModel

if TYPE_CHECKING:  # keep this module importable without Ray or gymnasium
    import gymnasium as gym
    from ray.rllib.algorithms.algorithm_config import AlgorithmConfig


class EnvOptions(StrictModel):
    """Base class of every environment's options: typed, unknown fields, booleans for numbers and non-finite floats
    rejected."""


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
class EnvEntry:
    name: str
    options: type[EnvOptions]
    make: Callable[[Any], "gym.Env"]
    description: str
    family: str  # "classic", "grid", "atari", "dmc", "language-goal", ...
    smoke: dict[str, Any] = field(default_factory=dict)
    # Suggested RLlib `model_config` for this observation type (e.g. conv filters for pixels).
    model_config: dict[str, Any] = field(default_factory=dict)
    # Optional: the lowest and highest episode return possible with these options, e.g. CartPole-v1 (0, 500).
    # Reports clip the confidence intervals of the return to it.
    return_range: Callable[[Any], tuple[float, float]] | None = None

    def build(self, options: dict[str, Any] | EnvOptions | None = None) -> "gym.Env":
        if not isinstance(options, EnvOptions):
            options = self.options.model_validate(options or {})
        return self.make(options)


@dataclass(frozen=True)
class AlgorithmEntry:
    name: str
    hyperparameters: type[Hyperparameters]
    # Returns the RLlib config class to start from (imported lazily: Ray is heavy).
    config_class: Callable[[], type["AlgorithmConfig"]]
    # apply(config, hyperparameters, env_entry, num_learners) -> config with the algorithm's semantics set.
    apply: Callable[["AlgorithmConfig", Any, EnvEntry, int], "AlgorithmConfig"]
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
    # The algorithm's own figures (`<algorithm>/<name>`; fnmatch patterns such as "domino/lagrange/*"), reported on top
    # of RLLIB_METRICS: together, the names `tune.metric` and `stop.metric` may use (checked by validate).
    metrics: tuple[str, ...] = ()

    def reported_metric_names(self) -> list[str]:
        return [*RLLIB_METRICS, *self.metrics]

    def reports(self, name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, pattern) for pattern in self.reported_metric_names())
