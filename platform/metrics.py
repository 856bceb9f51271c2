"""Result summaries with stable names, and their export to Prometheus through ray.util.metrics.

Names: RLlib's own keys (flattened with "/") for everything RLlib measures; `<algorithm>/<name>` for
method-specific figures (top-level result keys named after the algorithm); `throughput/...` for the
platform's own. The same few figures are exported as Ray metrics, so the Ray dashboard and Grafana see
them (Ray prefixes `ray_`): armillary_env_steps_total, armillary_env_steps_per_second,
armillary_episode_return_mean, armillary_training_iteration, armillary_algorithm_metric{name=...}.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

ENV_STEPS = "env_runners/num_env_steps_sampled_lifetime"
EPISODE_RETURN = "env_runners/episode_return_mean"
STEPS_PER_SECOND = "throughput/env_steps_per_second"

# Flattened RLlib keys kept in summaries: the learning signal, not per-connector timers.
_DROP_PARTS = ("timer", "_throughput", "throughput_since", "weights_seq_no", "connector", "config", "hostname",
               "node_ip", "pid", "date", "trial_id", "num_healthy_workers", "num_remote_worker_restarts",
               "num_env_runners_dropped")


def flatten(tree: Mapping[str, Any], prefix: str = "", sep: str = "/") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}{sep}", sep))
        else:
            flat[name] = value
    return flat


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number


def summarize(result: Mapping[str, Any], previous_env_steps: float | None = None) -> dict[str, float]:
    """The numeric figures of one RLlib training result, with stable names."""
    summary: dict[str, float] = {}
    for key, value in flatten(result).items():
        if key.startswith("config/") or any(part in key for part in _DROP_PARTS):
            continue
        number = _number(value)
        if number is not None:
            summary[key] = number
    steps = summary.get(ENV_STEPS, 0.0)
    elapsed = summary.get("time_this_iter_s", 0.0)
    if previous_env_steps is not None and elapsed > 0:
        summary[STEPS_PER_SECOND] = (steps - previous_env_steps) / elapsed
    # Always present, so Tune schedulers and stoppers never miss the metric before the first episode ends.
    summary.setdefault(EPISODE_RETURN, math.nan)
    summary.setdefault(ENV_STEPS, 0.0)
    return summary


class RayMetrics:
    """Gauges in Ray's metrics system for one trial (created lazily inside a Ray worker)."""

    TAG_KEYS = ("experiment", "trial", "algorithm", "env")

    def __init__(self, tags: dict[str, str]):
        from ray.util.metrics import Gauge

        self.tags = {k: str(tags.get(k, "")) for k in self.TAG_KEYS}
        self._steps = Gauge("armillary_env_steps_total", "Env steps sampled so far by the trial.", self.TAG_KEYS)
        self._rate = Gauge("armillary_env_steps_per_second", "Env steps per second over the last iteration.", self.TAG_KEYS)
        self._return = Gauge("armillary_episode_return_mean", "Mean episode return (RLlib's smoothing window).", self.TAG_KEYS)
        self._iteration = Gauge("armillary_training_iteration", "Training iterations completed.", self.TAG_KEYS)
        self._algorithm = Gauge(
            "armillary_algorithm_metric", "Method-specific figures, named <algorithm>/<name>.", self.TAG_KEYS + ("name",)
        )

    def publish(self, summary: Mapping[str, float], algorithm: str, iteration: int) -> None:
        def _set(gauge, value, extra=None):
            if value is not None and math.isfinite(value):
                gauge.set(value, tags={**self.tags, **(extra or {})})

        _set(self._steps, summary.get(ENV_STEPS))
        _set(self._rate, summary.get(STEPS_PER_SECOND))
        _set(self._return, summary.get(EPISODE_RETURN))
        _set(self._iteration, float(iteration))
        for key, value in summary.items():
            if key.startswith(f"{algorithm}/"):
                _set(self._algorithm, value, {"name": key})
