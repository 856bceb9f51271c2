"""Hyperparameters of the tabular self-consistency study (typed; invalid values rejected at construction)."""

from __future__ import annotations

import enum

from pydantic import Field, field_validator, model_validator

from armillary.algorithms.registry import Hyperparameters


class Method(str, enum.Enum):
    """How the value v̂ (and the model m̂) learn; every method but TD also has the grounded model update."""

    TD = "td"  # model-free TD(0) on the real transitions only
    DYNA = "dyna"  # + v̂ moves toward model targets on imagined rollouts (the model is not moved by them)
    SC_DIRECT = "sc_direct"  # + (⊥(r̂_k + γ v̂_{k+1}) − v̂_k)²: into v̂_k and, through the imagined state, the model
    SC_REVERSE = "sc_reverse"  # + (r̂_k + γ v̂_{k+1} − ⊥v̂_k)²: into the reward, the next imagined state and v̂_{k+1}
    SC_RESIDUAL = "sc_residual"  # + (r̂_k + γ v̂_{k+1} − v̂_k)²: no stop-gradient, into everything


class Setting(str, enum.Enum):
    EVALUATION = "evaluation"  # learn v^π of a fixed π from transitions collected under π
    CONTROL = "control"  # learn a greedy policy from transitions collected under the uniform policy


# Per-method value steps: for each setting and method, the best of {0.03, 0.1, 0.3} by the primary figure averaged
# over the dataset sizes on 10 validation seeds (first_seed=1000), made by `study --sweep-steps` (README,
# results/self_consistency/step-sizes-<setting>/).
DEFAULT_STEP_SIZES = {
    Setting.EVALUATION: {Method.TD: 0.03, Method.DYNA: 0.03, Method.SC_DIRECT: 0.1, Method.SC_REVERSE: 0.03,
                         Method.SC_RESIDUAL: 0.03},
    Setting.CONTROL: {Method.TD: 0.03, Method.DYNA: 0.03, Method.SC_DIRECT: 0.1, Method.SC_REVERSE: 0.1,
                      Method.SC_RESIDUAL: 0.03},
}


class TabularStudyConfig(Hyperparameters):
    """One tabular figure: every method on the same random MDPs and datasets, over dataset sizes and seeds."""

    setting: Setting = Field(Setting.EVALUATION, description="policy evaluation, or control (greedy policy's value)")
    methods: tuple[Method, ...] = Field(tuple(Method), description="the methods compared (each its own run)")
    num_states: int = Field(20, ge=2, description="|S|")
    num_actions: int = Field(3, ge=1, description="|A|")
    branching: int = Field(5, ge=1, description="successor states per (s, a); P(·|s,a) ~ Dirichlet(1) on them")
    reward_noise: float = Field(0.5, ge=0.0, description="std of the observed reward around r(s, a) ~ N(0, 1)")
    gamma: float = Field(0.9, gt=0.0, lt=1.0, description="γ, the discount")
    dataset_sizes: tuple[int, ...] = Field((10, 20, 40, 80, 160, 320, 640),
                                           description="numbers of real transitions (nested: each a prefix of the next)")
    seeds: int = Field(30, ge=1, description="independent (MDP, policy, dataset) draws per dataset size")
    first_seed: int = Field(0, ge=0, description="the draws use seeds first_seed, first_seed + 1, …")
    steps: int = Field(300, ge=1, description="full-batch gradient steps per method")
    rollout_depth: int = Field(3, ge=1, description="K: imagined steps; SC/Dyna terms k = 0 … K−1 on z_0 … z_K")
    step_sizes: dict[Method, float] = Field(
        None,
        description="SGD step of the value table v̂ (Q for model-free control) per method, chosen per method on "
                    "validation seeds (README); the model's tables take model_step_ratio × this step")
    model_step_ratio: float = Field(3.0, gt=0.0, description="step of the transition logits and reward table of m̂ "
                                                             "relative to the value step")
    sc_weight: float = Field(1.0, gt=0.0, description="weight of the Dyna / self-consistency loss")

    @model_validator(mode="before")
    @classmethod
    def _default_steps_of_the_setting(cls, data):
        if isinstance(data, dict) and data.get("step_sizes") is None:
            data = {**data, "step_sizes": DEFAULT_STEP_SIZES[Setting(data.get("setting", Setting.EVALUATION))]}
        return data

    @field_validator("dataset_sizes")
    @classmethod
    def _sizes_increase(cls, sizes: tuple[int, ...]) -> tuple[int, ...]:
        if not sizes or any(n < 1 for n in sizes) or list(sizes) != sorted(set(sizes)):
            raise ValueError(f"dataset_sizes must be positive and strictly increasing, got {sizes}")
        return sizes

    @model_validator(mode="after")
    def _branching_fits(self) -> "TabularStudyConfig":
        if self.branching > self.num_states:
            raise ValueError(f"branching must be ≤ num_states ({self.num_states}), got {self.branching}")
        if not self.methods or len(set(self.methods)) != len(self.methods):
            raise ValueError(f"methods must be a non-empty list without repeats, got {self.methods}")
        missing = [m.value for m in self.methods if m not in self.step_sizes]
        if missing or any(step <= 0 for step in self.step_sizes.values()):
            raise ValueError(f"step_sizes needs a positive step for every method, missing or not positive: "
                             f"{missing or self.step_sizes}")
        return self
