"""What SCoRe's algorithm, learner and env runners read from their config: a `ScoreRun`, set by configure.apply()."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from armillary.algorithms.score.config import ScoreHyperparameters

NAMESPACE = "score"  # the key of the ScoreRun in learner_config_dict, and the algorithm's metric namespace


@dataclass(frozen=True)
class ScoreRun:
    """The typed hyperparameters, and what apply() resolved for them on the driver: the model folder every learner
    and runner loads, the task env, its train/eval splits and the trial's seed."""

    hp: ScoreHyperparameters
    model_source: str
    env_name: str
    env_options: dict[str, Any] = field(default_factory=dict)
    train_split: str = "train"
    eval_split: str = "test"
    seed: int = 0

    @property
    def loss_kwargs(self) -> dict[str, Any]:
        """losses.score_loss's keyword arguments but the variant (the algorithm picks it per iteration: Stage I, then
        `hp.variant`, and sends it with each batch)."""
        loss = self.hp.loss_kwargs()
        loss.pop("variant")
        return loss


def score_run(config) -> ScoreRun:
    """The ScoreRun an AlgorithmConfig carries (set by apply())."""
    run = config.learner_config_dict.get(NAMESPACE)
    if not isinstance(run, ScoreRun):
        raise TypeError(f"learner_config_dict[{NAMESPACE!r}]: a ScoreRun set by score's apply() expected, got {type(run)}")
    return run
