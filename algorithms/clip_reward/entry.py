"""PPO on the VLM reward only, registered with the platform: `armillary run clip-reward/ppo-language-goals`
(hyperparameters: config.py; apply() and prepare(): configure.py)."""

from __future__ import annotations

from armillary.algorithms.clip_reward.config import ClipRewardPPOHyperparameters
from armillary.algorithms.clip_reward.configure import apply, prepare
from armillary.algorithms.clip_reward.quick_model import BUILTIN_PREFIX
from armillary.algorithms.registry import register
from armillary.core.entries import AlgorithmEntry


def _config_class():
    from armillary.algorithms.clip_reward.algorithm import ClipRewardPPOConfig

    return ClipRewardPPOConfig


ENTRY = register(
    AlgorithmEntry(
        name="clip-reward-ppo",
        hyperparameters=ClipRewardPPOHyperparameters,
        config_class=_config_class,
        apply=apply,
        description="PPO on a language-goal reward from a CLIP model served by Ray Serve (r = 1[P(goal|frame) > β]).",
        # A smoke run serves the built-in untrained tiny model: the real path, without `clip-reward/fit` first.
        smoke={"train_batch_size": 256, "minibatch_size": 64, "num_epochs": 1, "frames_per_request": 64,
               "reward_model": {"model": f"{BUILTIN_PREFIX}tiny-untrained"}},
        prepare=prepare,
        progress_metrics={"clip-reward-ppo/gt_success_rate": "success (ground truth)",
                          "clip-reward-ppo/firing_rate": "reward firing rate"},
        metrics=("clip-reward-ppo/*", "env_runners/clip_reward/*"),
    )
)
