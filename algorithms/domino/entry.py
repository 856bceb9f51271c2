"""DOMiNO registered with the platform: `armillary run domino/grid` (hyperparameters: config.py; apply() and
final_artifacts(): configure.py)."""

from __future__ import annotations

from armillary.algorithms.domino.config import DominoHyperparameters
from armillary.algorithms.domino.configure import apply, final_artifacts
from armillary.algorithms.registry import register
from armillary.core.entries import AlgorithmEntry


def _config_class():
    from armillary.algorithms.domino.algorithm import DominoPPOConfig

    return DominoPPOConfig


ENTRY = register(
    AlgorithmEntry(
        name="domino",
        hyperparameters=DominoHyperparameters,
        config_class=_config_class,
        apply=apply,
        description="DOMiNO: N latent-conditioned PPO policies, diverse in successor features, each kept near-optimal "
        "(v_i ≥ α v_0) by a Lagrange multiplier.",
        # Smoke: the final figures on one episode per policy and 20-step clips (the walker's 4 × 1000-step episodes per
        # policy and 200-step clips alone took ~40 s).
        smoke={"train_batch_size": 256, "minibatch_size": 64, "num_epochs": 1, "summary_episodes": 1, "clip_steps": 20},
        final_artifacts=final_artifacts,
        progress_metrics={"env_runners/episode_return_mean": "return", "domino/constraints_met": "constraints met",
                          "domino/min_pairwise_sf_distance": "min ψ distance"},
        metrics=("domino/*",),
    )
)
