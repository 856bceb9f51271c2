"""SCoRe hyperparameters: each field documented with its paper symbol (arXiv 2409.12917, PAPERS.md §5).

Defaults are the paper's maths settings; the code settings differ in lr (1e-5) and β2 (0.25). Baselines are
chosen by `variant` (see losses.Variant): stage1, stage2 (SCoRe's second stage), naive_multi_turn,
single_turn. No Ray import.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from armillary.algorithms.registry import Hyperparameters
from armillary.algorithms.score.losses import KLEstimator, Variant


class ScoreHyperparameters(Hyperparameters):
    # --- the policy --------------------------------------------------------------------------------------------
    model: str = Field(..., min_length=1, description="π_θ's initial weights: a local transformers folder or a hub name.")
    # --- the objective -----------------------------------------------------------------------------------------
    variant: Variant = Field(Variant.STAGE2, description="Which per-turn rewards/KL coefficients (losses.Variant).")
    alpha: float = Field(10.0, ge=0, description="α: weight of the progress bonus α·(r̂(y2) − r̂(y1)) on turn 2 (paper: 10).")
    beta1: float = Field(0.01, ge=0, description="β1: KL(π_θ ‖ π_ref) coefficient per turn (paper: 0.01).")
    beta2: float = Field(0.1, ge=0, description="β2: Stage I's strong KL coefficient on turn 1 (paper: 0.1 maths, 0.25 code).")
    kl_estimator: KLEstimator = Field(KLEstimator.K1, description="Per-token KL estimate in the reward: k1 (log-ratio) or k3.")
    group_size: int = Field(4, ge=2, description="k: samples per problem for the leave-one-out baseline.")
    # --- optimisation and sampling -----------------------------------------------------------------------------
    lr: float = Field(5e-6, gt=0, description="Adam learning rate (paper: 5e-6 maths, 1e-5 code).")
    temperature: float = Field(1.0, gt=0, description="Sampling temperature in training (paper: 1.0; evaluation is greedy).")
    max_new_tokens: int = Field(64, ge=1, description="Cap on the tokens of each attempt.")
    problems_per_iteration: int = Field(32, ge=1, description="Problems per training iteration (× group_size episodes).")

    @model_validator(mode="after")
    def _stage1_needs_a_stronger_turn1_kl(self):
        if self.variant is Variant.STAGE1 and self.beta2 < self.beta1:
            raise ValueError(f"beta2: Stage I keeps turn 1 near π_ref with β2 ≥ β1={self.beta1}, got {self.beta2}")
        return self

    def loss_kwargs(self) -> dict:
        """The keyword arguments of losses.score_loss."""
        return dict(variant=self.variant, group_size=self.group_size, alpha=self.alpha, beta1=self.beta1,
                    beta2=self.beta2, kl_estimator=self.kl_estimator)
