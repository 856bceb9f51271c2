"""Hyperparameters of `clip-reward-ppo`: PPO's, the served reward model's, and how the reward is asked for."""

from __future__ import annotations

from pydantic import Field

from armillary.algorithms.clip_reward.model_settings import ServeConfig
from armillary.algorithms.ppo.config import PPOHyperparameters


class ClipRewardPPOHyperparameters(PPOHyperparameters):
    reward_model: ServeConfig = Field(description="The served reward model: model path, replicas, batching, β, τ, negatives.")
    shuffled_goals: bool = Field(
        False, description="Control: ask the reward model about a fixed *other* goal (a derangement of the goal set)."
    )
    frames_per_request: int = Field(512, ge=1, description="Frames per request to the deployment (a sample is split into these).")
    reward_retry_window_s: float = Field(
        180.0, ge=0, description="How long a failing request (replica died, timeout) is retried before the iteration fails."
    )
    reward_timeout_s: float = Field(120.0, gt=0, description="Longest wait for one request's answer before it is sent again.")
