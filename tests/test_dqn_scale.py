"""The asynchronous DQN (algorithms/dqn/scale.py): the loss, the limited replay, and runs with actors on Ray."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from armillary.algorithms.dqn.config import RateLimiterConfig, ScaleDQNConfig
from armillary.algorithms.dqn.losses import double_dqn_loss
from armillary.algorithms.dqn.rate_limiter import LimiterState
from armillary.algorithms.dqn.replay import LimitedReplay


def test_double_dqn_loss_on_hand_checked_numbers():
    q = torch.tensor([[1.0, 2.0], [0.5, 0.0]], requires_grad=True)
    # online picks action 0 in s'_0 and action 1 in s'_1; the target network evaluates them
    q_next_online = torch.tensor([[3.0, 1.0], [0.0, 1.0]])
    q_next_target = torch.tensor([[10.0, -5.0], [7.0, 2.0]])
    loss, stats = double_dqn_loss(q, torch.tensor([1, 0]), torch.tensor([1.0, 0.5]), torch.tensor([0.5, 0.0]),
                                  q_next_online, q_next_target)
    # targets: 1 + 0.5·10 = 6 (double Q: not max_a Q_target = 10 either way here), 0.5 + 0 (terminal) = 0.5
    # errors: 6 − 2 = 4 (Huber: 4 − 0.5 = 3.5), 0.5 − 0.5 = 0
    assert loss.item() == pytest.approx((3.5 + 0.0) / 2)
    loss.backward()
    assert q.grad[0, 1] < 0 and q.grad[0, 0] == 0 and q.grad[1].abs().sum() == 0
    # double Q uses the online argmax: with target values swapped the target changes
    loss_swapped, _ = double_dqn_loss(q.detach(), torch.tensor([1, 0]), torch.tensor([1.0, 0.5]),
                                      torch.tensor([0.5, 0.0]), q_next_online, q_next_target.flip(1))
    assert loss_swapped.item() != pytest.approx(loss.item())


def test_limited_replay_evicts_and_the_limiter_counts_it():
    replay = LimitedReplay(capacity=10, limiter=LimiterState(1.0, 5, 100.0), seed=0)
    for start in range(0, 10, 2):
        replay.insert({"rewards": np.arange(start, start + 2, dtype=np.float32)})
    assert replay.size == 10 and replay.sampleable() > 0
    for _ in range(4):
        replay.sample(1)
    replay.insert({"rewards": np.array([100.0, 101.0], dtype=np.float32)})
    assert replay.size == 10 and replay.limiter.deletes == 2
    assert set(replay.storage["rewards"]) == set(range(2, 10)) | {100.0, 101.0}


def test_config_refuses_what_cannot_run():
    with pytest.raises(ValidationError, match="samples_per_insert: must be > 0"):
        RateLimiterConfig(samples_per_insert=0, min_size_to_sample=10)
    with pytest.raises(ValidationError, match=r"error_buffer: 2\.0 can block"):
        RateLimiterConfig(samples_per_insert=4, min_size_to_sample=10, error_buffer=2.0)
    with pytest.raises(ValidationError, match="min_size_to_sample: 2000 is more than the replay holds"):
        ScaleDQNConfig(replay_capacity=1000, limiter={"samples_per_insert": 4, "min_size_to_sample": 2000})
    assert RateLimiterConfig(samples_per_insert=8, min_size_to_sample=1000).effective_error_buffer == 800


SMALL = {"env_steps": 800, "num_actors": 2, "cpus_per_actor": 0.5, "batch_size": 16, "replay_capacity": 5000,
         "limiter": {"samples_per_insert": 4.0, "min_size_to_sample": 200, "error_buffer": 16.0},
         "hidden_sizes": [32], "epsilon_steps": 1000, "target_update_period": 50}


def _check_ratio(out: dict, config: ScaleDQNConfig) -> None:
    final, limiter = out["final"], config.limiter
    counted = final["inserts"] - limiter.min_size_to_sample
    # the limiter's own invariant, and what the learner really did: every update took batch_size samples
    assert final["min_diff"] - 1e-9 <= final["diff"] <= final["max_diff"] + 1e-9, final
    assert abs(final["samples"] - counted * limiter.samples_per_insert) <= limiter.effective_error_buffer + 1e-9
    assert final["samples"] == out["updates"] * config.batch_size
    assert out["updates"] > 0


@pytest.mark.ray
def test_actors_and_learner_hold_the_samples_per_insert(local_ray):
    from armillary.algorithms.dqn.scale import learn

    config = ScaleDQNConfig(**SMALL)
    out = learn(config, log=lambda *_: None)
    _check_ratio(out, config)
    assert out["final"]["inserts"] >= config.env_steps and out["returns"]
    # updates per env step follow spi / batch: (800 − 200) · 4 / 16 = 150 give or take the buffer
    assert out["updates"] == pytest.approx((out["final"]["inserts"] - 200) * 4 / 16, abs=16 / 16 + 1)
    # the run's learning curve is recorded (the study plots return vs env steps and wall clock from these rows)
    rows = out["rows"]
    assert len(rows) >= 3 and config.env_steps <= rows[-1]["env_steps"] <= out["final"]["inserts"]
    assert all(a["env_steps"] <= b["env_steps"] and a["time_s"] <= b["time_s"] for a, b in zip(rows, rows[1:]))
    assert [row["updates"] for row in rows] == list(range(0, 50 * len(rows), 50))
    logged = [row["return_mean"] for row in rows if row["return_mean"] is not None]
    assert len(logged) >= 2 and all(0 < r <= 500 for r in logged)  # CartPole returns


@pytest.mark.ray
@pytest.mark.slow
def test_a_killed_actor_is_replaced_and_the_ratio_holds(local_ray):
    from armillary.algorithms.dqn.scale import learn

    config = ScaleDQNConfig(**{**SMALL, "env_steps": 2000, "fail_actor_at": 30})
    out = learn(config, log=lambda *_: None)
    assert out["replaced"] == 1
    _check_ratio(out, config)
    assert out["final"]["inserts"] >= config.env_steps
