"""PPO on the VLM reward: env runners send their rendered frames to the reward deployment and write its reward
into the episodes before the learner sees them.

Where the reward is computed: `ClipRewardCallback.on_sample_end`, on the env runner, once per sample — every
frame of the sample goes out in a few large requests (client.RewardClient) and the answers overwrite the
episodes' rewards in place. It runs before the env runner reports its episode metrics, so RLlib's
`env_runners/episode_return_mean` is the return under the VLM reward. The env's own reward is 0 (its
`reward="external"` option) and success does not end an episode, so the learner sees the ground truth through
neither; the ground truth (`info["success"]`, `info["reached"]`) is only counted for the metrics, and the
frames and ground-truth fields are dropped from the infos once scored, so they never travel to a learner.

Metrics (`clip-reward-ppo/<name>`, per training iteration): see the README's table.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from ray.rllib.algorithms.ppo import PPO, PPOConfig
from ray.rllib.callbacks.callbacks import RLlibCallback
from ray.rllib.utils.metrics import ENV_RUNNER_RESULTS

from armillary.algorithms.clip_reward.client import RewardClient, derangement

NAMESPACE = "clip-reward-ppo"  # top-level result keys, the platform's <algorithm>/<name> scheme
_RUNNER = "clip_reward"  # the env runners' own sub-key, under env_runners/
# Per-sample sums on each env runner ("sum" restarts at each reduce: the algorithm sees one iteration's totals).
_COUNTS = ("steps", "fires", "on_goal", "fires_on_goal", "requests", "retries", "wait_s")
# Ground-truth fields that must not reach a learner.
_HIDDEN_INFO = ("frame", "success", "reached", "standing_on", "agent_pos", "goal_index")


class ClipRewardPPOConfig(PPOConfig):
    def __init__(self, algo_class=None):
        super().__init__(algo_class=algo_class or ClipRewardPPO)
        # Read by the callback on every env runner: app_name, frames_per_request, retry_window_s, timeout_s,
        # shuffled_goals, goal_set.
        self.clip_reward: dict[str, Any] = {}


class ClipRewardPPO(PPO):
    @classmethod
    def get_default_config(cls) -> ClipRewardPPOConfig:
        return ClipRewardPPOConfig()

    def training_step(self) -> None:
        super().training_step()
        for name, value in iteration_figures(self.metrics).items():
            self.metrics.log_value((NAMESPACE, name), value, window=1)


def iteration_figures(metrics) -> dict[str, float]:
    """The per-iteration figures from the env runners' sums (NaN where a denominator is 0)."""

    def peek(*key, default=0.0):
        full = (ENV_RUNNER_RESULTS, _RUNNER, *key)
        return float(metrics.peek(full)) if full in metrics else default

    counts = {name: peek(name) for name in _COUNTS}
    steps = counts["steps"]
    if not steps:
        return {}

    def ratio(a: float, b: float) -> float:
        return a / b if b else float("nan")

    return {
        "firing_rate": counts["fires"] / steps,
        "gt_on_goal_rate": counts["on_goal"] / steps,
        "reward_precision": ratio(counts["fires_on_goal"], counts["fires"]),
        "reward_recall": ratio(counts["fires_on_goal"], counts["on_goal"]),
        "gt_success_rate": peek("gt_success", default=float("nan")),
        "gt_on_goal_at_end": peek("gt_on_goal_at_end", default=float("nan")),
        "reward_requests": counts["requests"],
        "reward_retries": counts["retries"],
        "reward_wait_s": counts["wait_s"],
        "reward_wait_ms_per_step": 1000.0 * counts["wait_s"] / steps,
    }


class ClipRewardCallback(RLlibCallback):
    """Scores each sample's frames through the reward deployment (see the module docstring)."""

    def __init__(self):
        super().__init__()
        self._client: RewardClient | None = None
        self._asked: dict[str, str] | None = None

    def _setup(self, env_runner) -> tuple[RewardClient, dict[str, Any]]:
        settings = env_runner.config.clip_reward
        if self._client is None:
            self._client = RewardClient(settings["app_name"], frames_per_request=settings["frames_per_request"],
                                        retry_window_s=settings["retry_window_s"], timeout_s=settings["timeout_s"])
            goals = settings["goal_set"]
            # The control: ask the model about a fixed other goal, so the reward says nothing about the real one.
            self._asked = derangement(goals, env_runner.config.seed or 0) if settings["shuffled_goals"] else {g: g for g in goals}
        return self._client, settings

    def on_episode_end(self, *, episode, metrics_logger, **kwargs) -> None:
        info = episode.get_infos(-1)
        metrics_logger.log_value((_RUNNER, "gt_success"), float(info["reached"]), window=100)
        metrics_logger.log_value((_RUNNER, "gt_on_goal_at_end"), float(info["success"]), window=100)

    def on_sample_end(self, *, env_runner, metrics_logger, samples, **kwargs) -> None:
        client, settings = self._setup(env_runner)
        # Reward r_t belongs to the step into s_{t+1}: it scores the frame in info t+1 (info 0 is the reset's).
        step_infos = [episode.get_infos()[1:] for episode in samples]
        flat = [info for infos in step_infos for info in infos]
        if not flat:
            return
        frames = np.stack([info["frame"] for info in flat])
        asked = [self._asked[info["goal"]] for info in flat]
        reward, _, stats = client.score(frames, asked, settings["goal_set"])
        on_goal = np.array([info["success"] for info in flat], dtype=bool)

        start = 0
        for episode, infos in zip(samples, step_infos):
            stop = start + len(infos)
            episode.set_rewards(new_data=reward[start:stop].astype(np.float32))
            start = stop
        for episode in samples:
            for info in episode.get_infos():
                for key in _HIDDEN_INFO:
                    info.pop(key, None)

        fires = reward > 0.5
        sums = {"steps": len(flat), "fires": int(fires.sum()), "on_goal": int(on_goal.sum()),
                "fires_on_goal": int((fires & on_goal).sum()), "requests": stats.requests, "retries": stats.retries,
                "wait_s": stats.wait_s}
        for name, value in sums.items():
            metrics_logger.log_value((_RUNNER, name), value, reduce="sum")  # "sum" restarts each iteration
