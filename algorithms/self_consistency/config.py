"""Hyperparameters of the self-consistency studies and of the control agent (typed; invalid values rejected at
construction)."""

from __future__ import annotations

import enum

from pydantic import Field, field_validator, model_validator

from armillary.algorithms.ppo.config import PPOHyperparameters
from armillary.core.hyperparameters import Hyperparameters


def increasing_sizes(sizes: tuple[int, ...]) -> tuple[int, ...]:
    if not sizes or any(n < 1 for n in sizes) or list(sizes) != sorted(set(sizes)):
        raise ValueError(f"dataset_sizes must be positive and strictly increasing, got {sizes}")
    return sizes


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
    step_grid: tuple[float, ...] = Field(
        (0.03, 0.1, 0.3),
        description="candidate SGD steps of the value table v̂ (Q for model-free control): for each method and dataset "
                    "size, the one with the lowest mean figure on the validation seeds is used on the reported seeds")
    validation_seeds: int = Field(10, ge=1, description="draws used only to choose the step (never reported)")
    validation_first_seed: int = Field(1000, ge=0, description="the validation draws use seeds from here on")
    model_step_ratio: float = Field(3.0, gt=0.0, description="step of the transition logits and reward table of m̂ "
                                                             "relative to the value step")
    sc_weight: float = Field(1.0, gt=0.0, description="weight of the Dyna / self-consistency loss")

    @field_validator("dataset_sizes")
    @classmethod
    def _sizes_increase(cls, sizes: tuple[int, ...]) -> tuple[int, ...]:
        return increasing_sizes(sizes)

    @model_validator(mode="after")
    def _branching_fits(self) -> "TabularStudyConfig":
        if self.branching > self.num_states:
            raise ValueError(f"branching must be ≤ num_states ({self.num_states}), got {self.branching}")
        if not self.methods or len(set(self.methods)) != len(self.methods):
            raise ValueError(f"methods must be a non-empty list without repeats, got {self.methods}")
        if not self.step_grid or any(step <= 0 for step in self.step_grid):
            raise ValueError(f"step_grid must hold positive steps, got {self.step_grid}")
        test, validation = range(self.first_seed, self.first_seed + self.seeds), range(
            self.validation_first_seed, self.validation_first_seed + self.validation_seeds)
        if len(self.step_grid) > 1 and set(test) & set(validation):
            raise ValueError(f"validation seeds {validation} overlap the reported seeds {test}: "
                             f"move validation_first_seed or first_seed")
        return self


class EvaluationEnv(str, enum.Enum):
    """Small classic-control environments whose simulator state can be set (for Monte Carlo values from a state)."""

    CARTPOLE = "CartPole-v1"
    MOUNTAIN_CAR = "MountainCar-v0"


class LatentEvaluationConfig(Hyperparameters):
    """Policy evaluation with the latent model (function approximation): v̂(h(s)) against Monte Carlo v^π(s).

    Method.TD here means "none": the same value-equivalent agent with its grounded losses and no imagined-rollout
    term (the model is still learned, there is no model-free agent in this study)."""

    env: EvaluationEnv = Field(EvaluationEnv.CARTPOLE, description="the environment")
    methods: tuple[Method, ...] = Field(tuple(Method), description="the variants compared (td = none: no SC term)")
    gamma: float = Field(0.95, gt=0.0, lt=1.0, description="γ, the discount")
    policy_temperature: float = Field(1.0, gt=0.0, description="temperature of the fixed softmax policy π "
                                                               "(evaluation.fixed_policy); higher = more random")
    dataset_sizes: tuple[int, ...] = Field((1000,), description="real transitions collected under π (nested per seed)")
    max_episode_steps: int = Field(200, ge=1, description="data episodes are truncated here (not terminal: bootstrapped)")
    seeds: int = Field(5, ge=1, description="independent (data, initialisation) draws")
    first_seed: int = Field(0, ge=0, description="the draws use seeds first_seed, first_seed + 1, …")
    eval_states: int = Field(128, ge=2, description="held-out on-policy states where v̂ is compared with Monte Carlo")
    mc_rollouts: int = Field(16, ge=1, description="Monte Carlo rollouts of π from each evaluation state")
    mc_tolerance: float = Field(0.01, gt=0.0, lt=1.0, description="rollouts stop at the horizon H with γ^H ≤ this")
    rollout_depth: int = Field(3, ge=1, description="K: imagined steps (SC) and unrolled real steps (grounding)")
    td_steps: int = Field(5, ge=1, description="n of the n-step return targets of the grounded value loss")
    steps: int = Field(1000, ge=1, description="Adam steps per run")
    batch_size: int = Field(64, ge=1, description="segments (and imagined rollouts) per step")
    learning_rate: float = Field(1e-3, gt=0.0, description="Adam step on all parameters")
    sc_weight: float = Field(1.0, gt=0.0, description="weight of the Dyna / SC loss")
    latent_dim: int = Field(32, ge=1, description="size of z")
    hidden: int = Field(64, ge=1, description="width of every MLP")

    @field_validator("dataset_sizes")
    @classmethod
    def _sizes_increase(cls, sizes: tuple[int, ...]) -> tuple[int, ...]:
        return increasing_sizes(sizes)

    @field_validator("methods")
    @classmethod
    def _methods_unique(cls, methods: tuple[Method, ...]) -> tuple[Method, ...]:
        if not methods or len(set(methods)) != len(methods):
            raise ValueError(f"methods must be a non-empty list without repeats, got {methods}")
        return methods


class SelfConsistentPPOHyperparameters(PPOHyperparameters):
    """The control agent (`self-consistency-ppo`): PPO whose actor and critic sit on the latent state of the latent
    model, trained with the model's grounded losses and the method's self-consistency loss (README, "Function
    approximation: the control agent").

    Method.TD here means "none": the same agent, model and grounded model losses, without the imagined-rollout term.
    The networks are the latent model's MLPs (`latent_dim`, `hidden`): a changed PPO `hidden_sizes` or `activation`
    is refused rather than ignored."""

    method: Method = Field(Method.SC_DIRECT, description="the consistency variant on imagined rollouts (td = none)")
    rollout_depth: int = Field(3, ge=1, description="K: imagined steps under the current policy, and real steps the "
                                                    "model is unrolled along for its grounded losses")
    sc_weight: float = Field(1.0, gt=0.0, description="weight of the Dyna / self-consistency loss (not used by td)")
    model_loss_coeff: float = Field(1.0, ge=0.0, description="weight of the grounded model losses (reward, "
                                                             "continuation, values of the unrolled latent states)")
    latent_dim: int = Field(64, ge=1, description="size of z = h(s)")
    hidden: int = Field(64, ge=1, description="width of every MLP of the latent model (2 hidden layers, ELU)")
    model_row_fraction: float = Field(
        1.0, gt=0.0, le=1.0,
        description="fraction of each PPO minibatch's rows the grounded model and SC terms are computed on (the first "
                    "rows of the shuffled minibatch: a uniform random subset; their means over it estimate the "
                    "minibatch means without bias). 1 = every row; less trades gradient noise for speed")
    model_every: int = Field(
        1, ge=1,
        description="the grounded model and SC terms enter the loss on every n-th PPO minibatch of an update (the "
                    "first, the (n+1)-th, …), weighted n× there, so their expected contribution per minibatch is "
                    "unchanged (each minibatch is a random slice of the train batch); 1 = every minibatch")
    # CartPole-sized PPO defaults (those of the ppo/cartpole preset).
    train_batch_size: int = Field(2000, gt=0, description="Env steps per training iteration, over all learners.")
    minibatch_size: int = Field(250, gt=0, description="SGD minibatch size (per learner).")
    num_epochs: int = Field(6, gt=0, description="Passes over each train batch.")

    @model_validator(mode="after")
    def _networks_are_the_latent_models(self) -> "SelfConsistentPPOHyperparameters":
        # A resolved spec holds every field, so a changed value (not a set one) is what would be silently ignored.
        for name in ("hidden_sizes", "activation"):
            default = PPOHyperparameters.model_fields[name].get_default(call_default_factory=True)
            if getattr(self, name) != default:
                raise ValueError(f"{name}: not used by self-consistency-ppo, whose actor, critic and model are the latent "
                                 f"model's MLPs; leave it at {default!r} and set `hidden` (width) and `latent_dim`")
        if self.model_row_fraction * self.minibatch_size < 1:
            raise ValueError(f"model_row_fraction: {self.model_row_fraction} of a minibatch of {self.minibatch_size} rows "
                             f"leaves no row for the model terms; use at least {1 / self.minibatch_size:.3g}")
        minibatches = self.num_epochs * -(-self.train_batch_size // self.minibatch_size)
        if minibatches % self.model_every:
            raise ValueError(f"model_every: {self.model_every} must divide the {minibatches} minibatches of an update "
                             f"(num_epochs × ceil(train_batch_size / minibatch_size)), or the model terms' weight per "
                             f"update is not the same as with 1")
        if self.use_kl_loss:
            raise ValueError("use_kl_loss: self-consistency-ppo trains on the lean learner, which has no KL penalty; "
                             "set it to false")
        return self

    def model_rows(self, minibatch_rows: int) -> int:
        """How many of a minibatch's rows the model terms take: model_row_fraction of them, rounded down, at least one
        (a minibatch smaller than minibatch_size, when the train batch is, still has its model terms)."""
        return max(1, int(self.model_row_fraction * minibatch_rows + 1e-9))

    def layout_problems(self, num_learners: int, num_env_runners: int) -> list[str]:
        problems = super().layout_problems(num_learners, num_env_runners)
        if num_learners > 1:
            problems.append(f"resources.num_learners: self-consistency-ppo trains on one learner (its model terms need "
                            f"the lean learner's array path), got {num_learners}; use 0 or 1")
        return problems
