"""PPO's hyperparameters (RLlib's PPO, with Armillary's lean learner and env runner): typed, each documented."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from armillary.core.hyperparameters import Hyperparameters, batch_problems


class PPOHyperparameters(Hyperparameters):
    lr: float = Field(3e-4, gt=0, description="Adam learning rate.")
    lr_schedule: list[tuple[int, float]] | None = Field(
        None,
        description="Piecewise-linear learning rate over env steps sampled, [[0, lr_0], [steps_1, lr_1], …] "
        "(RLlib's format; constant after the last point). Replaces lr when given.",
    )
    gamma: float = Field(0.99, gt=0, le=1, description="Discount factor γ.")
    gae_lambda: float = Field(0.95, ge=0, le=1, description="GAE λ.")
    clip_param: float = Field(0.2, gt=0, description="PPO ratio clip ε.")
    vf_loss_coeff: float = Field(0.5, ge=0, description="Weight of the value loss.")
    vf_clip_param: float = Field(10.0, gt=0, description="Clip of the value-function error.")
    entropy_coeff: float = Field(0.0, ge=0, description="Entropy bonus weight.")
    use_kl_loss: bool = Field(False, description="Add RLlib's adaptive KL penalty on top of clipping.")
    grad_clip: float | None = Field(0.5, gt=0, description="Global gradient-norm clip (None: off).")
    train_batch_size: int = Field(4000, gt=0, description="Env steps per training iteration, over all learners.")
    minibatch_size: int = Field(128, gt=0, description="SGD minibatch size (per learner).")
    num_epochs: int = Field(4, gt=0, description="Passes over each train batch.")
    hidden_sizes: list[int] = Field(default_factory=lambda: [64, 64], min_length=1, description="MLP head layer widths.")
    activation: Literal["tanh", "relu"] = "tanh"

    def layout_problems(self, num_learners: int, num_env_runners: int) -> list[str]:
        return batch_problems(self.train_batch_size, num_learners, self.minibatch_size)

    @field_validator("lr_schedule")
    @classmethod
    def _schedule_is_piecewise_linear(cls, schedule):
        if schedule is None:
            return schedule
        steps = [step for step, _ in schedule]
        if not schedule or steps[0] != 0:
            raise ValueError("must start with a point at env step 0, e.g. [[0, 1e-3], [400000, 1e-4]]")
        if any(later <= earlier for earlier, later in zip(steps, steps[1:])):
            raise ValueError(f"env steps must increase strictly, got {steps}")
        if any(lr <= 0 for _, lr in schedule):
            raise ValueError(f"every learning rate must be > 0, got {[lr for _, lr in schedule]}")
        return schedule
