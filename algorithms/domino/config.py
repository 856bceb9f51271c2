"""DOMiNO hyperparameters: PPO's (the policy learner) plus the paper's N, α, ℓ0, the diversity variant, the
moving-average decays and the multiplier learning rate. Baselines are configurations of the same algorithm:

  mixing='lagrange'  DOMiNO: policy i ≥ 1 maximises σ(λ_i) r_e + (1 − σ(λ_i)) r_d, λ keeps v_i ≥ α v_0.
  mixing='none'      no diversity: every policy maximises r_e (ψ is still tracked, for the figures).
  mixing='fixed'     the paper's multi-objective baseline: policy i ≥ 1 maximises c_e r_e + c_d r_d.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from armillary.algorithms.domino.losses import DiversityKind, Mixing, MultiplierOptimizer, SuccessorFeatureEstimator
from armillary.algorithms.ppo.config import PPOHyperparameters


class DominoHyperparameters(PPOHyperparameters):
    # --- the set of policies ----------------------------------------------------------------------------
    num_policies: int = Field(4, ge=2, le=64, description="N: policies (one network, one-hot latent); policy 0 is extrinsic only.")
    features: str = Field(
        "observation",
        min_length=1,
        description="Where φ(s) comes from: 'observation' (the flattened observation) or the name of an info key "
        "holding a float vector (e.g. 'features' for multi-goal-room's (x, y), 'state' for DMC's state).",
    )
    # --- diversity reward r_d = c(d) φ(s)·(ψ_i − ψ_j*) / dim φ --------------------------------------------
    diversity: DiversityKind = Field(
        DiversityKind.VAN_DER_WAALS, description="c(d): 'vdw' Van der Waals ½(1 − d³), d = ‖ψ_i − ψ_j*‖/ℓ0; 'repulsion' c = 1."
    )
    target_distance: float = Field(1.0, gt=0, description="ℓ0: Van der Waals target distance in ψ space (unused by 'repulsion').")
    diversity_scale: float = Field(
        1.0, gt=0, description="A constant factor on r_d (not in the paper, which is 1): brings r_d to the scale of r_e "
        "when φ is small, so PPO's shared advantage normalisation does not drown it.",
    )
    successor_features: SuccessorFeatureEstimator = Field(
        SuccessorFeatureEstimator.MOVING_AVERAGE, description="How ψ_i is estimated: 'moving_average' of φ over policy i's on-policy rows "
        "(decay sf_decay), or 'network': a successor-feature head ψ̃_θ(s, i) trained by TD on φ "
        "(ψ̃(s) ← (1 − γ_ψ) φ(s') + γ_ψ ψ̃(s')), ψ_i = its mean over policy i's rows of each batch (the paper's SF option).",
    )
    sf_decay: float = Field(0.99, ge=0, lt=1, description="Decay of the moving average ψ_i of φ over policy i's data (paper ≈ 0.99). "
                            "Unused by successor_features='network'.")
    sf_discount: float = Field(
        0.9, ge=0, lt=1, description="γ_ψ: discount of the successor-feature head's TD target (successor_features='network'). "
        "Averaged over on-policy states, (1 − γ_ψ) ψ_γ equals the average-reward ψ for any γ_ψ; a smaller γ_ψ "
        "propagates faster and is less noisy (README).",
    )
    sf_lr: float = Field(1e-3, gt=0, description="Adam learning rate of the successor-feature head (successor_features='network').")
    sf_hidden_sizes: list[int] = Field(
        [64, 64], min_length=1, description="Hidden layers (tanh) of the successor-feature head (successor_features='network')."
    )
    # --- constraint v_i ≥ α v_0 -----------------------------------------------------------------------------
    optimality_ratio: float = Field(0.9, gt=0, le=1, description="α: each policy i ≥ 1 must keep v_i ≥ α v_0 (paper: 0.9).")
    target_margin: float = Field(
        0.0, ge=0, lt=1, description="δ: the multipliers aim at v̄_i/v̄_0 = min(α + δ, 1) instead of α, so that the "
        "policies' fluctuation around the target stays above α (constraint tightening); the logged margins and 'met' "
        "still use α.",
    )
    value_decay: float = Field(0.9, ge=0, lt=1, description="Decay of the moving average v̄_i of r_e per step (paper ≈ 0.9).")
    multiplier_lr: float = Field(
        0.01, gt=0, description="Learning rate of the multipliers λ_i (one step per training iteration); for 'pi' the "
        "integral gain K_I (λ units per unit of normalised violation per iteration).",
    )
    multiplier_optimizer: MultiplierOptimizer = Field(
        MultiplierOptimizer.ADAM, description="'adam' on Σ σ(λ_i)(v̄_i − α v̄_0) (the paper); 'sgd' on the same loss divided by |v̄_0|; "
        "'pi' a proportional-integral update on the normalised violation e_i = α − v̄_i/v̄_0: I_i += K_I e_i, "
        "λ_i = I_i + K_P e_i, both clipped to ±Λ (K_I = multiplier_lr, K_P = multiplier_proportional, "
        "Λ = multiplier_bound; damps the swing of σ(λ), see README).",
    )
    multiplier_proportional: float = Field(
        0.0, ge=0, description="K_P: proportional gain of the 'pi' multiplier update (0: pure integral, i.e. dual "
        "ascent on the normalised violation). Unused by 'adam' and 'sgd'.",
    )
    multiplier_bound: float = Field(
        5.0, gt=0, le=20, description="Λ: the 'pi' update keeps λ_i and its integral in [−Λ, Λ] (anti-windup; 5 "
        "keeps σ(λ_i) in [0.007, 0.993]). Unused by 'adam' and 'sgd'.",
    )
    initial_lagrange: float = Field(0.0, ge=-20, le=20, description="λ_i at the start (0: σ(λ) = ½).")
    # --- reward mixing and the baselines --------------------------------------------------------------------
    mixing: Mixing = Field(
        Mixing.LAGRANGE, description="'lagrange': σ(λ_i) r_e + (1 − σ(λ_i)) r_d (DOMiNO); 'none': r_e for every policy; "
        "'fixed': c_e r_e + c_d r_d (multi-objective baseline). Policy 0 always maximises r_e."
    )
    extrinsic_weight: float = Field(0.5, ge=0, description="c_e: weight of r_e for i ≥ 1 when mixing='fixed'.")
    diversity_weight: float = Field(0.5, ge=0, description="c_d: weight of r_d for i ≥ 1 when mixing='fixed'.")
    # --- the end-of-training figures (final_artifacts) --------------------------------------------------
    summary_episodes: int = Field(4, ge=1, description="Greedy episodes per policy for the final figures (JSON, occupancy).")
    clip_steps: int = Field(200, ge=0, description="Agent steps in each policy's clip (rendered envs such as the walker; 0: none).")

    @property
    def target_ratio(self) -> float:
        """The ratio v̄_i/v̄_0 the multipliers aim at: α tightened by δ, capped at 1 (no policy beats policy 0 for long)."""
        return min(self.optimality_ratio + self.target_margin, 1.0)

    @model_validator(mode="after")
    def _positive_hidden_sizes(self):
        if any(size <= 0 for size in self.sf_hidden_sizes):
            raise ValueError(f"sf_hidden_sizes must be positive, got {self.sf_hidden_sizes}")
        return self

    @model_validator(mode="after")
    def _fixed_mix_needs_a_weight(self):
        if self.mixing is Mixing.FIXED and self.extrinsic_weight + self.diversity_weight <= 0:
            raise ValueError("mixing='fixed' needs extrinsic_weight + diversity_weight > 0 (c_e, c_d both zero)")
        return self
