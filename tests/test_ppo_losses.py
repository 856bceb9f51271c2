"""PPO's loss with K value streams (algorithms/ppo/losses.py) on small hand-checked tensors. No Ray."""

import math

import numpy as np
import pytest
import torch

from armillary.algorithms.ppo import losses

CLIP = dict(clip_param=0.2, vf_clip_param=10.0)


def test_the_surrogate_clips_the_ratio_on_the_side_the_advantage_favours():
    # ratios 1.5, 0.5, 1.5, 0.5 against advantages +1, +1, -1, -1
    logp = torch.log(torch.tensor([1.5, 0.5, 1.5, 0.5]))
    advantages = torch.tensor([1.0, 1.0, -1.0, -1.0])
    surrogate = losses.clipped_surrogate(logp, torch.zeros(4), advantages, clip_param=0.2)
    # A > 0: min(1.5, 1.2) = 1.2 (clipped), min(0.5, 0.8) = 0.5 (not); A < 0: min(-1.5, -1.2) = -1.5, min(-0.5, -0.8) = -0.8
    assert torch.allclose(surrogate, torch.tensor([1.2, 0.5, -1.5, -0.8]))


def test_one_stream_loss_by_hand():
    logp = torch.log(torch.tensor([1.5, 0.5]))
    advantages = torch.tensor([1.0, -1.0])
    entropy = torch.tensor([0.6, 0.2])
    values, targets = torch.tensor([0.0, 1.0]), torch.tensor([2.0, 5.0])  # errors 4 and 16 (clipped at 10)
    total, stats = losses.ppo_loss(logp, torch.zeros(2), advantages, entropy, values, targets, vf_loss_coeff=0.5,
                                   entropy_coeff=0.1, with_stats=True, **CLIP)
    # surrogate (1.2, -0.8); per row -surrogate + 0.5 * clipped error - 0.1 * entropy
    expected = ((-1.2 + 0.5 * 4 - 0.06) + (0.8 + 0.5 * 10 - 0.02)) / 2
    assert float(total) == pytest.approx(expected)
    assert float(stats["policy_loss"]) == pytest.approx(-0.2)
    assert float(stats["vf_loss"]) == pytest.approx(7.0) and float(stats["vf_loss_unclipped"]) == pytest.approx(10.0)
    assert float(stats["entropy"]) == pytest.approx(0.4) and float(stats["mean_kl_loss"]) == 0.0
    # explained variance 1 - Var(y - v) / Var(y) with y = (2, 5), y - v = (2, 4): 1 - 2 / 4.5
    assert float(stats["vf_explained_var"]) == pytest.approx(1 - 2 / 4.5, rel=1e-5)


def test_one_stream_as_k_equals_one_is_plain_ppo():
    torch.manual_seed(0)
    logp, old, advantages, entropy = torch.randn(32), torch.randn(32), torch.randn(32), torch.rand(32)
    values, targets = 3 * torch.randn(32), 3 * torch.randn(32)
    args = dict(vf_loss_coeff=0.5, entropy_coeff=0.01, with_stats=True, **CLIP)
    plain, plain_stats = losses.ppo_loss(logp, old, advantages, entropy, values, targets, **args)
    one, one_stats = losses.ppo_loss(logp, old, advantages, entropy, values[:, None], targets[:, None],
                                     stream_names=("reward",), **args)
    assert torch.equal(plain, one)
    for key, value in plain_stats.items():
        assert torch.allclose(value, one_stats[key]), key
    assert torch.allclose(one_stats["vf_loss_reward"], plain_stats["vf_loss"])


def test_k_streams_sum_their_own_clipped_errors():
    logp = torch.zeros(2)  # ratio 1: the surrogate is the advantage
    advantages = torch.tensor([1.0, 3.0])
    values = torch.tensor([[0.0, 1.0], [2.0, 0.0]])
    targets = torch.tensor([[1.0, 5.0], [2.0, 2.0]])  # errors [[1, 16 -> 10], [0, 4]]
    total, stats = losses.ppo_loss(logp, torch.zeros(2), advantages, torch.zeros(()), values, targets,
                                   vf_loss_coeff=0.5, entropy_coeff=0.0, stream_names=("extrinsic", "diversity"),
                                   with_stats=True, **CLIP)
    assert float(total) == pytest.approx(((-1 + 0.5 * 11) + (-3 + 0.5 * 4)) / 2)
    assert float(stats["vf_loss_extrinsic"]) == pytest.approx(0.5)  # mean(1, 0)
    assert float(stats["vf_loss_diversity"]) == pytest.approx(7.0)  # mean(10, 4)
    assert float(stats["vf_loss"]) == pytest.approx(7.5) and float(stats["vf_loss_unclipped"]) == pytest.approx(10.5)
    # each stream's value output gets the gradient of its own error only: d/dV_k of 0.5 * mean_rows(Σ_k err)
    values.requires_grad_(True)
    losses.ppo_loss(logp, torch.zeros(2), advantages, torch.zeros(()), values, targets, vf_loss_coeff=0.5,
                    entropy_coeff=0.0, stream_names=("extrinsic", "diversity"), **CLIP)[0].backward()
    # 0.5 * (1/2) * 2 (V - target) where not clipped; 0 where the error is clipped (row 0, stream 1)
    assert torch.allclose(values.grad, torch.tensor([[-0.5, 0.0], [0.0, -1.0]]))


def test_k_streams_need_their_names():
    with pytest.raises(ValueError, match="stream_names"):
        losses.ppo_loss(torch.zeros(2), torch.zeros(2), torch.ones(2), torch.zeros(()), torch.zeros(2, 2),
                        torch.zeros(2, 2), vf_loss_coeff=0.5, entropy_coeff=0.0, stream_names=("one",), **CLIP)


def test_no_critic_leaves_only_the_policy_terms():
    logp = torch.log(torch.tensor([1.5, 0.5]))
    entropy = torch.tensor([0.6, 0.2])
    total, stats = losses.ppo_loss(logp, torch.zeros(2), torch.tensor([1.0, -1.0]), entropy, None, None,
                                   vf_loss_coeff=0.5, entropy_coeff=0.1, with_stats=True, **CLIP)
    assert float(total) == pytest.approx(((-1.2 - 0.06) + (0.8 - 0.02)) / 2)
    assert float(stats["vf_loss"]) == 0.0 and float(stats["vf_explained_var"]) == 0.0


def test_mixed_advantages_weigh_each_stream_per_row():
    targets = np.array([[2.0, 1.0], [0.0, 4.0]], dtype=np.float32)
    values = np.array([[1.0, 0.0], [1.0, 2.0]], dtype=np.float32)  # stream advantages [[1, 1], [-1, 2]]
    # mixed weights: row 0 = DISDAIN's (1, λ = 20), row 1 = a DOMiNO policy's (σ(λ_i), 1 − σ(λ_i)) = (0.75, 0.25)
    weights = np.array([[1.0, 20.0], [0.75, 0.25]], dtype=np.float32)
    mixed = losses.mixed_advantages(targets, values, weights)
    assert mixed.dtype == np.float32
    np.testing.assert_allclose(mixed, [21.0, -0.75 + 0.5])
    # one stream with weight 1 is the plain advantage
    np.testing.assert_array_equal(losses.mixed_advantages(targets[:, :1], values[:, :1], np.ones((2, 1), np.float32)),
                                  targets[:, 0] - values[:, 0])


def test_mixing_the_advantages_is_the_advantage_of_the_mixed_reward():
    """GAE is linear in rewards and values: Σ_k w_k GAE(r_k, V_k) == GAE(Σ_k w_k r_k, Σ_k w_k V_k)."""
    rng = np.random.default_rng(0)
    rewards, values = rng.normal(size=(6, 2)), rng.normal(size=(7, 2))
    gamma, lambda_, w = 0.9, 0.8, np.array([0.3, 0.7])

    def gae(r, v):
        advantages, running = np.zeros(len(r)), 0.0
        for t in reversed(range(len(r))):
            running = r[t] + gamma * v[t + 1] - v[t] + gamma * lambda_ * running
            advantages[t] = running
        return advantages

    per_stream = np.stack([gae(rewards[:, k], values[:, k]) for k in range(2)], -1)
    mixed = losses.mixed_advantages((per_stream + values[:-1]).astype(np.float32), values[:-1].astype(np.float32),
                                    np.broadcast_to(w, (6, 2)).astype(np.float32))
    np.testing.assert_allclose(mixed, gae(rewards @ w, values @ w), rtol=1e-5, atol=1e-5)


def test_explained_variance():
    y, prediction = torch.tensor([1.0, 2.0, 3.0, 4.0]), torch.tensor([1.0, 2.0, 2.0, 5.0])
    # residuals (0, 0, 1, -1): unbiased variances 2/3 and 5/3 (RLlib's torch.var)
    assert float(losses.explained_variance(y, prediction)) == pytest.approx(1 - (2 / 3) / (5 / 3 + 1e-6))
    assert float(losses.explained_variance(y, y)) == pytest.approx(1.0)
    assert float(losses.explained_variance(y, 10 * y)) == -1.0  # floored
    assert math.isfinite(float(losses.explained_variance(torch.ones(4), torch.zeros(4))))
