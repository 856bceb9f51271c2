"""SCoRe registered with the platform: `armillary run score/arithmetic` (hyperparameters: config.py; apply(),
prepare() and final_artifacts(): configure.py)."""

from __future__ import annotations

from armillary.algorithms.registry import register
from armillary.algorithms.score.config import ScoreHyperparameters
from armillary.algorithms.score.configure import apply, final_artifacts, prepare
from armillary.core.entries import AlgorithmEntry


def _config_class():
    from armillary.algorithms.score.algorithm import ScoreConfig

    return ScoreConfig


ENTRY = register(
    AlgorithmEntry(
        name="score",
        hyperparameters=ScoreHyperparameters,
        config_class=_config_class,
        apply=apply,
        description="SCoRe: self-correction of a transformers LM by two-stage multi-turn RL (REINFORCE + per-turn KL; "
        "Stage I then Stage II with the progress bonus).",
        # A smoke run trains the built-in quick model (made in seconds) on single-digit sums (the env's smoke options).
        smoke={"model": "builtin:tiny-1digit", "problems_per_iteration": 4, "group_size": 4, "max_new_tokens": 16,
               "eval_problems": 4, "eval_every": 1, "lr": 1e-3},
        final_artifacts=final_artifacts,
        prepare=prepare,
        # An episode's "return" is meaningless here; the sampled batch's accuracies are in every result (the greedy
        # figures only every eval_every iterations).
        progress_metrics={"score/train/acc_t1": "acc@t1 (sampled)", "score/train/acc_t2": "acc@t2 (sampled)"},
        metric_ranges=lambda hp: {"score/train/acc_t1": (0.0, 1.0), "score/train/acc_t2": (0.0, 1.0)},
        metrics=("score/*",),
    )
)
