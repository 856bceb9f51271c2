"""DQN's hyperparameters (RLlib's DQN: prioritized replay, double Q, dueling heads, n-step returns)."""

from __future__ import annotations

from pydantic import Field, model_validator

from armillary.algorithms.dqn.rate_limiter import limiter_problems
from armillary.core.hyperparameters import Hyperparameters, batch_problems
from armillary.core.strict import StrictModel


class DQNHyperparameters(Hyperparameters):
    lr: float = Field(5e-4, gt=0, description="Adam learning rate.")
    gamma: float = Field(0.99, gt=0, le=1, description="Discount factor γ.")
    train_batch_size: int = Field(32, gt=0, description="Replay samples per gradient step, over all learners.")
    replay_capacity: int = Field(50_000, gt=0, description="Transitions kept in the replay buffer.")
    learning_starts: int = Field(1_000, ge=0, description="Env steps sampled before the first update.")
    target_network_update_freq: int = Field(500, gt=0, description="Env steps between target-network syncs.")
    n_step: int = Field(3, ge=1, description="n of the n-step return.")
    double_q: bool = True
    dueling: bool = True
    epsilon_start: float = Field(1.0, ge=0, le=1)
    epsilon_end: float = Field(0.02, ge=0, le=1)
    epsilon_steps: int = Field(10_000, gt=0, description="Env steps over which ε decays linearly.")
    training_intensity: float | None = Field(
        None, gt=0, description="Replayed : sampled steps (the samples-per-insert rate); None keeps RLlib's natural rate."
    )
    hidden_sizes: list[int] = Field(default_factory=lambda: [256], min_length=1)

    def layout_problems(self, num_learners: int, num_env_runners: int) -> list[str]:
        return batch_problems(self.train_batch_size, num_learners)

    @model_validator(mode="after")
    def _epsilon_decreases(self):
        if self.epsilon_end > self.epsilon_start:
            raise ValueError("epsilon_end must be <= epsilon_start")
        return self


class RateLimiterConfig(StrictModel):
    """Reverb's SampleToInsertRatio limiter (rate_limiter.py), as Acme's agents configure it."""

    samples_per_insert: float = Field(
        description="Learner samples per inserted transition (Acme's samples_per_insert): replay ratio = this / "
        "train_batch_size gradient steps per env step.")
    min_size_to_sample: int = Field(description="Transitions in replay before the learner may sample (Acme's "
                                    "min_replay_size).")
    error_buffer: float | None = Field(
        None, description="How far |inserts·spi − samples| may drift (after the first min_size_to_sample inserts) "
        "before the side that runs ahead waits. None: Acme's min_size_to_sample × samples_per_insert × 0.1, at least "
        "max(1, samples_per_insert).")

    @property
    def effective_error_buffer(self) -> float:
        if self.error_buffer is not None:
            return self.error_buffer
        return max(1.0, self.samples_per_insert, 0.1 * self.min_size_to_sample * self.samples_per_insert)

    @model_validator(mode="after")
    def _usable(self):
        problems = limiter_problems(self.samples_per_insert, self.min_size_to_sample, self.effective_error_buffer,
                                    prefix="")
        if problems:
            raise ValueError("; ".join(problems))
        return self


class ScaleDQNConfig(StrictModel):
    """The asynchronous DQN (scale.py): N actors insert into a replay actor, one learner samples under the limiter."""

    env: str = Field("CartPole-v1", description="A registered environment (armillary list).")
    num_actors: int = Field(2, ge=1, description="Acting processes (Ray actors), each with one env.")
    cpus_per_actor: float = Field(1.0, gt=0, description="Ray CPUs each actor asks for (fractions share cores).")
    seed: int = Field(0, ge=0)
    env_steps: int = Field(20_000, gt=0, description="Stop once the actors have inserted this many transitions.")
    lr: float = Field(5e-4, gt=0, description="Adam learning rate.")
    gamma: float = Field(0.99, gt=0, le=1, description="Discount factor γ.")
    batch_size: int = Field(32, gt=0, description="Transitions per gradient step (each counts as one sample).")
    replay_capacity: int = Field(50_000, gt=0, description="Transitions the replay keeps.")
    limiter: RateLimiterConfig = Field(
        default_factory=lambda: RateLimiterConfig(samples_per_insert=8.0, min_size_to_sample=1_000),
        description="Samples per insert (spi / batch_size gradient steps per env step), min size, error buffer.")
    target_update_period: int = Field(250, gt=0, description="Gradient steps between target-network copies.")
    weights_push_period: int = Field(10, gt=0, description="Gradient steps between weight pushes to the actors.")
    insert_chunk: int = Field(8, gt=0, description="Transitions an actor sends per insert call.")
    epsilon_start: float = Field(1.0, ge=0, le=1)
    epsilon_end: float = Field(0.05, ge=0, le=1)
    epsilon_steps: int = Field(5_000, gt=0, description="Inserted transitions (over all actors) over which ε decays.")
    hidden_sizes: list[int] = Field(default_factory=lambda: [128, 128], min_length=1)
    fail_actor_at: int | None = Field(None, gt=0, description="Kill actor 0 after this many gradient steps (the fault "
                                      "test); it is replaced by a new actor with the same index.")

    @model_validator(mode="after")
    def _consistent(self):
        if self.limiter.min_size_to_sample > self.replay_capacity:
            raise ValueError(f"limiter.min_size_to_sample: {self.limiter.min_size_to_sample} is more than the replay "
                             f"holds (replay_capacity {self.replay_capacity}); the learner would never sample")
        if self.epsilon_end > self.epsilon_start:
            raise ValueError("epsilon_end must be <= epsilon_start")
        return self
