"""Hyperparameters shared by the skill-discovery algorithms (VIC, DISDAIN, RVIC), on top of PPO's.

The policy learner is PPO (RLlib): the papers' tabular SARSA (DISDAIN) or actor-critic (VIC, RVIC) becomes
a policy-gradient learner over skill episodes. Each method's config.py adds its own fields.
"""

from __future__ import annotations

import enum

from pydantic import Field, model_validator

from armillary.algorithms.ppo.config import PPOHyperparameters


class DiscriminatorOptimizer(str, enum.Enum):
    ADAM = "adam"
    SGD = "sgd"


class SkillHyperparameters(PPOHyperparameters):
    # --- skills --------------------------------------------------------------------------------------------
    num_skills: int = Field(24, ge=2, description="N: number of skills; z ~ Uniform(N) once per episode.")
    skill_length: int | None = Field(
        None, ge=1, description="T: steps per skill, the episode terminates at T (None: the env's max_episode_steps)."
    )
    include_time: bool = Field(
        False, description="Append t/T to the policy's observation (not in the papers: their policies see (s, z)).",
    )
    # --- discriminator q(z | ·) ----------------------------------------------------------------------------
    discriminator_hidden_sizes: list[int] = Field(
        default_factory=lambda: [64], min_length=0, description="MLP widths of each discriminator (q_φ)."
    )
    discriminator_lr: float = Field(4e-3, gt=0, description="Learning rate of the discriminator(s).")
    discriminator_optimizer: DiscriminatorOptimizer = Field(
        DiscriminatorOptimizer.ADAM, description="Optimizer of the discriminator(s). Adam's step is about lr for any input however rarely "
        "seen, so ensemble members agree on rare states sooner than with SGD (the DISDAIN reference uses SGD).",
    )
    clip_skill_reward_at_zero: bool = Field(
        True, description="max(r_skill, 0) before learning values, as in the DISDAIN reference code."
    )
    # --- evaluation (effective number of skills with near-greedy acting) -----------------------------------
    evaluation_interval: int = Field(
        1, ge=0, description="Evaluate skills every this many iterations (0: never; the training-batch estimate is always logged)."
    )
    evaluation_episodes_per_skill: int = Field(16, ge=1, description="Episodes per skill in each evaluation.")
    evaluation_epsilon: float = Field(0.001, ge=0, le=1, description="ε of the ε-greedy acting in evaluation (paper: 0.001).")
    final_episodes_per_skill: int = Field(
        32, ge=1, description="Episodes per skill for the pictures and figures logged when training ends."
    )
    # --- PPO defaults suited to short skill episodes ---------------------------------------------------------
    gamma: float = Field(0.99, gt=0, le=1, description="Discount γ (paper: 0.99).")
    train_batch_size: int = Field(1024, gt=0, description="Env steps per training iteration, over all learners.")
    minibatch_size: int = Field(256, gt=0, description="SGD minibatch size (per learner).")
    entropy_coeff: float = Field(0.01, ge=0, description="Entropy bonus weight of the policy.")

    @model_validator(mode="after")
    def _batch_holds_whole_skills(self):
        if self.skill_length is not None and self.train_batch_size < self.skill_length:
            raise ValueError(f"train_batch_size ({self.train_batch_size}) must hold at least one skill of T={self.skill_length} steps")
        return self
