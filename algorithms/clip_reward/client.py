"""The caller's side of the reward deployment: many frames → a few large requests, retried on replica failure.

An env runner scores a whole sample (thousands of frames) at once. Sending it as one request per frame would
pay Serve's per-request cost thousands of times (benchmarks/clip_reward_serving.py: single-frame requests
reach ~3% of the in-process model, 128-frame requests ~40%), so `RewardClient.score` cuts the frames into
requests of `frames_per_request` and sends them all before waiting on any, letting the replicas (and
@serve.batch) work on several at once.

Failures: a request whose replica died (killed, OOM, node lost) or that timed out is sent again, with a
growing pause (0.5 s doubling, at most 5 s), until `retry_window_s` has passed since its first failure —
long enough for Serve's controller to start a replacement replica (seconds to tens of seconds: a new
process imports torch and loads the model). The retries and the
seconds spent waiting are counted so that the gap shows in the training metrics. A `RewardInputError` (the
request itself is wrong) is raised at once: sending it again would fail again.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from armillary.algorithms.clip_reward.reward import RewardInputError


@dataclass
class ScoreStats:
    """What one `score` call cost: requests sent, requests sent again after a failure, seconds waited."""

    requests: int = 0
    retries: int = 0
    wait_s: float = 0.0
    failures: list[str] = field(default_factory=list)


def derangement(goals: Sequence[str], seed: int) -> dict[str, str]:
    """A fixed map goal → a *different* goal of the set (the shuffled-goal control): the reward model is then
    asked about another object than the one the agent was told to reach, so the reward carries no information
    about the real goal. Deterministic in `seed`; needs at least two goals."""
    goals = list(goals)
    if len(goals) < 2:
        raise ValueError("shuffling goals needs at least two goals in the goal set")
    rng = np.random.default_rng(seed)
    while True:
        order = rng.permutation(len(goals))
        if not np.any(order == np.arange(len(goals))):
            return {goals[i]: goals[j] for i, j in enumerate(order)}


class RewardClient:
    """Scores frames through the Serve application `app_name` (looked up lazily, so it pickles to workers)."""

    def __init__(self, app_name: str, frames_per_request: int = 512, retry_window_s: float = 180.0,
                 timeout_s: float = 120.0, backoff_s: float = 0.5, max_backoff_s: float = 5.0, handle=None):
        if frames_per_request < 1 or retry_window_s < 0:
            raise ValueError("frames_per_request must be >= 1 and retry_window_s >= 0")
        self.app_name = app_name
        self.frames_per_request = frames_per_request
        self.retry_window_s = retry_window_s
        self.timeout_s = timeout_s
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self._handle = handle

    @property
    def handle(self):
        if self._handle is None:
            from ray import serve

            self._handle = serve.get_app_handle(self.app_name)
        return self._handle

    def score(self, frames: np.ndarray, goals: Sequence[str], goal_set: Sequence[str]) -> tuple[np.ndarray, np.ndarray, ScoreStats]:
        """(reward float32 [N], P(goal | frame) float32 [N], stats) for frames uint8 [N, H, W, 3], one goal each."""
        started = time.perf_counter()
        stats = ScoreStats()
        goals = list(goals)
        goal_set = list(goal_set)
        spans = [(a, min(a + self.frames_per_request, len(goals))) for a in range(0, len(goals), self.frames_per_request)]
        reward = np.zeros(len(goals), dtype=np.float32)
        probability = np.zeros(len(goals), dtype=np.float32)
        pending = {span: self._send(frames, goals, goal_set, span) for span in spans}
        stats.requests = len(spans)
        attempt = {span: 1 for span in spans}
        first_failure: dict[tuple[int, int], float] = {}
        while pending:
            span, response = next(iter(pending.items()))
            try:
                answer = response.result(timeout_s=self.timeout_s)
            except RewardInputError:
                raise
            except Exception as error:  # replica died, actor unavailable, timeout: send again
                failing_for = time.perf_counter() - first_failure.setdefault(span, time.perf_counter())
                if failing_for >= self.retry_window_s:
                    raise RuntimeError(
                        f"reward model {self.app_name!r}: frames {span[0]}:{span[1]} still failing after {attempt[span]} "
                        f"attempts over {failing_for:.0f} s (retry_window_s={self.retry_window_s}); last error: {error!r}"
                    ) from error
                stats.retries += 1
                stats.failures.append(type(error).__name__)
                time.sleep(min(self.max_backoff_s, self.backoff_s * 2 ** (attempt[span] - 1)))
                attempt[span] += 1
                pending[span] = self._send(frames, goals, goal_set, span)
                continue
            del pending[span]
            reward[span[0]:span[1]] = answer["reward"]
            probability[span[0]:span[1]] = answer["probability"]
        stats.wait_s = time.perf_counter() - started
        return reward, probability, stats

    def _send(self, frames, goals, goal_set, span):
        a, b = span
        return self.handle.score.remote(frames[a:b], goals[a:b], goal_set)
