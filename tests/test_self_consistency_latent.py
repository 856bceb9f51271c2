"""Self-consistency with a latent model (function approximation): which parameters each variant moves, the gradient
values on a hand-checkable scalar model, the grounded losses' masks and the n-step targets. Pure torch, no Ray."""

import numpy as np
import pytest
import torch
from torch import nn

from armillary.algorithms.self_consistency.config import LatentEvaluationConfig, Method
from armillary.algorithms.self_consistency.evaluation import (
    Dataset,
    SegmentSampler,
    monte_carlo_values,
    read_rows,
    run_study,
)
from armillary.algorithms.self_consistency.losses import (
    Segments,
    control_losses,
    grounded_losses,
    imagine,
    latent_consistency_loss,
)
from armillary.algorithms.self_consistency.networks import LatentModel

GAMMA = 0.5


class ScalarModel(nn.Module):
    """z_0 = w_h s, z' = w_g z, r̂ = w_r z, v̂ = w_v z, ĉ ≡ 1 (no parameter), one action: every path is one number."""

    def __init__(self):
        super().__init__()
        self.w_h, self.w_g, self.w_r, self.w_v = (nn.Parameter(torch.tensor(x, dtype=torch.float64)) for x in (1.0, 2.0, 1.0, 1.0))

    def encode(self, s):
        return self.w_h * s

    def step(self, z, a):
        return self.w_g * z

    def predict_reward(self, z, a):
        return (self.w_r * z).squeeze(-1)

    def continuation_logit(self, z, a):
        return torch.full(z.shape[:1], 100.0, dtype=z.dtype)  # sigmoid = 1 in float64

    def predict_value(self, z):
        return (self.w_v * z).squeeze(-1)

    def policy_logits(self, z):
        return torch.zeros(z.shape[0], 1, dtype=z.dtype)


def _scalar_grads(method: Method, depth: int) -> dict[str, float]:
    model = ScalarModel()
    states, actions = imagine(model, model.encode(torch.ones(1, 1, dtype=torch.float64)), depth)
    loss = latent_consistency_loss(method, model, states, actions, GAMMA)
    grads = torch.autograd.grad(loss, [model.w_h, model.w_g, model.w_r, model.w_v], allow_unused=True)
    return {name: 0.0 if g is None else float(g) for name, g in zip(("h", "g", "r", "v"), grads)}


# By hand, s = 1, w = (h 1, g 2, r 1, v 1), γ = ½: z = (1, 2, 4), r̂ = (1, 2), v̂ = (1, 2, 4);
#   δ_0 = 1 + ½·2 − 1 = 1,  δ_1 = 2 + ½·4 − 2 = 2.
# K = 1. Direct (target stopped): −δ_0 ∂v̂_0:  v: −z_0 = −1, h: −w_v s = −1, g and r: 0.
#        Reverse (prediction stopped): δ_0 ∂(r̂_0 + γ v̂_1):  r: z_0 = 1, v: γ z_1 = 1, g: γ w_v z_0 = ½, h: w_r + γ w_v w_g = 2.
#        Residual = Direct + Reverse.  Dyna: v only, −z_0 = −1.
@pytest.mark.parametrize("method, expected", [
    (Method.SC_DIRECT, {"h": -1.0, "g": 0.0, "r": 0.0, "v": -1.0}),
    (Method.SC_REVERSE, {"h": 2.0, "g": 0.5, "r": 1.0, "v": 1.0}),
    (Method.SC_RESIDUAL, {"h": 1.0, "g": 0.5, "r": 1.0, "v": 0.0}),
    (Method.DYNA, {"h": 0.0, "g": 0.0, "r": 0.0, "v": -1.0}),
])
def test_one_step_gradients_by_hand(method, expected):
    assert _scalar_grads(method, depth=1) == pytest.approx(expected)


# K = 2, Direct adds −δ_1 ∂v̂_1 with v̂_1 = w_v w_g w_h s:  v: −2·2 = −4, g: −2·1 = −2, h: −2·2 = −4, r: 0.
# Dyna adds only v: −δ_1 z_1 = −4.
def test_two_step_sc_direct_reaches_the_transition_through_the_imagined_state_and_dyna_does_not():
    assert _scalar_grads(Method.SC_DIRECT, depth=2) == pytest.approx({"h": -5.0, "g": -2.0, "r": 0.0, "v": -5.0})
    assert _scalar_grads(Method.DYNA, depth=2) == pytest.approx({"h": 0.0, "g": 0.0, "r": 0.0, "v": -5.0})


def test_td_has_no_consistency_loss():
    model = ScalarModel()
    states, actions = imagine(model, model.encode(torch.ones(1, 1, dtype=torch.float64)), 1)
    with pytest.raises(ValueError, match="no model rollouts"):
        latent_consistency_loss(Method.TD, model, states, actions, GAMMA)


def _parts_with_gradient(loss: torch.Tensor, model: LatentModel) -> set[str]:
    model.zero_grad()
    loss.backward()
    return {part for part in (*LatentModel.MODEL_PARTS, *LatentModel.VALUE_PARTS)
            if any(p.grad is not None and p.grad.abs().sum() > 0 for p in getattr(model, part).parameters())}


# Which parts of the real network each variant moves (the policy head only chooses the imagined actions).
@pytest.mark.parametrize("method, depth, parts", [
    (Method.DYNA, 3, {"value"}),
    (Method.SC_DIRECT, 3, {"value", "encoder", "transition"}),
    (Method.SC_DIRECT, 1, {"value", "encoder"}),  # K = 1: only z_0 = h(s) is predicted, the transition is in the target
    (Method.SC_REVERSE, 3, {"value", "encoder", "transition", "reward", "continuation"}),
    (Method.SC_RESIDUAL, 3, {"value", "encoder", "transition", "reward", "continuation"}),
])
def test_each_variant_moves_exactly_its_parameter_groups(method, depth, parts):
    torch.manual_seed(0)
    model = LatentModel(4, 2, latent_dim=8, hidden=16)
    states, actions = imagine(model, model.encode(torch.randn(16, 4)), depth, torch.Generator().manual_seed(0))
    assert _parts_with_gradient(latent_consistency_loss(method, model, states, actions, 0.9), model) == parts
    groups = model.parameter_groups()
    assert {id(p) for p in groups["value"]} == {id(p) for p in model.value.parameters()}
    assert len(groups["model"]) + len(groups["value"]) == len(list(model.parameters()))


def _segments(valid: torch.Tensor, targets: torch.Tensor) -> Segments:
    torch.manual_seed(1)
    return Segments(observations=torch.randn(4, 3, 4), actions=torch.tensor([[0, 1]] * 4), rewards=torch.randn(4, 2),
                    continues=torch.ones(4, 2), valid=valid, value_targets=targets)


def test_grounded_losses_reach_every_part_and_ignore_masked_positions():
    torch.manual_seed(0)
    model = LatentModel(4, 2, latent_dim=8, hidden=16)
    valid = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0], [1.0, 0.0, 0.0], [1.0, 1.0, 1.0]])
    targets = torch.randn(4, 3)
    terms = grounded_losses(model, _segments(valid, targets))
    assert _parts_with_gradient(sum(terms.values()), model) == {*LatentModel.MODEL_PARTS, *LatentModel.VALUE_PARTS}
    moved = targets.clone()
    moved[1, 2], moved[2, 1] = 1e3, -1e3  # targets of positions past the episode's end
    assert float(grounded_losses(model, _segments(valid, moved))["value"]) == pytest.approx(float(terms["value"]))
    moved[0, 2] = 1e3  # a real position
    assert float(grounded_losses(model, _segments(valid, moved))["value"]) > float(terms["value"]) + 1e4


def test_n_step_targets_and_episode_masks_by_hand():
    # Two episodes: transitions 0-2 (terminated after 2), 3-4 (truncated after 4); rewards 1, 2, 3, 4, 5.
    observations = np.arange(5, dtype=np.float32)[:, None].repeat(4, 1)
    data = Dataset(observations=observations, actions=np.zeros(5, np.float32), rewards=np.arange(1, 6, dtype=np.float32),
                   terminated=np.array([0, 0, 1, 0, 0], np.float32), last=np.array([0, 0, 1, 0, 1], np.float32),
                   next_observations=observations + 0.5, states=np.zeros((5, 4)))
    sampler = SegmentSampler(data, LatentEvaluationConfig(gamma=0.5, td_steps=2, rollout_depth=2))
    torch.testing.assert_close(sampler.partial, torch.tensor([1 + 0.5 * 2, 2 + 0.5 * 3, 3.0, 4 + 0.5 * 5, 5.0]))
    torch.testing.assert_close(sampler.bootstrap_discount, torch.tensor([0.25, 0.0, 0.0, 0.25, 0.5]))
    torch.testing.assert_close(sampler.bootstrap_obs[:, 0], torch.tensor([1.5, 2.5, 2.5, 4.5, 4.5]))
    torch.testing.assert_close(sampler.valid, torch.tensor([[1, 1, 1], [1, 1, 0], [1, 0, 0], [1, 1, 0], [1, 0, 0]],
                                                           dtype=torch.float32))


def test_monte_carlo_value_of_a_falling_pole_is_its_one_reward_and_bounded_elsewhere():
    config = LatentEvaluationConfig(env="CartPole-v1", gamma=0.9, mc_rollouts=3)
    falling = np.array([0.0, 0.0, 0.25, 0.0])  # θ past 12°: the first step terminates with reward 1
    upright = np.array([0.0, 0.0, 0.0, 0.0])
    values, errors = monte_carlo_values(config, np.stack([falling, upright]), seed=0)
    assert values[0] == 1.0 and errors[0] == 0.0
    assert 1.0 < values[1] <= 1 / (1 - 0.9)


def test_the_study_runs_end_to_end_and_scores_every_method_and_seed():
    config = LatentEvaluationConfig(env="CartPole-v1", methods=["td", "sc_direct"], seeds=2, dataset_sizes=(200,),
                                    steps=3, eval_states=4, mc_rollouts=2, policy_temperature=8.0)
    rows = run_study(config)
    assert [(r["method"], r["seed"]) for r in rows] == [("td", 0), ("sc_direct", 0), ("td", 1), ("sc_direct", 1)]
    assert all(np.isfinite(r["value_error"]) and r["value_error"] > 0 for r in rows)
    assert np.isnan(rows[0]["loss_consistency"]) and np.isfinite(rows[1]["loss_consistency"])


def test_bad_settings_are_rejected_naming_the_field():
    with pytest.raises(ValueError, match="dataset_sizes"):
        LatentEvaluationConfig(dataset_sizes=(1000, 10))
    with pytest.raises(ValueError, match="env"):
        LatentEvaluationConfig(env="Pong-v5")


def test_merging_seed_shards_needs_exactly_the_configured_rows(tmp_path):
    header = "env,method,dataset_size,seed,value_error\n"
    for seed in (0, 1):
        (tmp_path / f"{seed}.csv").write_text(header + f"CartPole-v1,td,1000,{seed},{1.5 + seed}\n")
    config = LatentEvaluationConfig(methods=["td"], seeds=2)
    rows = read_rows([str(tmp_path / "0.csv"), str(tmp_path / "1.csv")], config)
    assert [(r["seed"], r["value_error"]) for r in rows] == [(0, 1.5), (1, 2.5)]
    with pytest.raises(ValueError, match="rows-from"):
        read_rows([str(tmp_path / "0.csv")], config)  # seed 1 missing
    with pytest.raises(ValueError, match="rows-from"):
        read_rows([str(tmp_path / "0.csv"), str(tmp_path / "0.csv")], LatentEvaluationConfig(methods=["td"], seeds=2))


@pytest.mark.parametrize("method", list(Method))
def test_the_control_agents_fused_losses_are_the_grounded_and_consistency_losses(method):
    """control_losses (one transition call per step for the real and imagined chains, each head once) against the
    functions it fuses, on the same imagined actions: the same terms and the same gradient on every parameter. A
    fused pass that mixed the chains, shifted a step or dropped a stop-gradient would fail it."""
    torch.manual_seed(0)
    model = LatentModel(4, 3, latent_dim=8, hidden=16).double()
    depth, batch = 3, 6
    valid = (torch.rand(batch, depth + 1) > 0.3).double()
    valid[:, 0] = 1.0
    segments = Segments(observations=torch.randn(batch, depth + 1, 4, dtype=torch.float64),
                        actions=torch.randint(3, (batch, depth)), rewards=torch.randn(batch, depth, dtype=torch.float64),
                        continues=(torch.rand(batch, depth) > 0.2).double(), valid=valid,
                        value_targets=torch.randn(batch, depth + 1, dtype=torch.float64))
    z0 = model.encode(segments.observations[:, 0])
    expected = grounded_losses(model, segments, z0=z0, include_policy=False, first_value_step=1)
    if method is not Method.TD:
        states, actions = imagine(model, z0, depth, torch.Generator().manual_seed(3))
        expected["consistency"] = latent_consistency_loss(method, model, states, actions, 0.9)
    logits = model.policy_logits(z0)  # as PPO's forward hands them over (with gradient: the fused pass must stop it)
    got = control_losses(model, segments, z0, method, 0.9, torch.Generator().manual_seed(3), logits)
    assert got.keys() == expected.keys()
    params = list(model.parameters())
    for name in expected:
        torch.testing.assert_close(got[name], expected[name])
        want = torch.autograd.grad(expected[name], params, allow_unused=True, retain_graph=True)
        have = torch.autograd.grad(got[name], params, allow_unused=True, retain_graph=True)
        for p, w, h in zip(params, want, have):
            torch.testing.assert_close(torch.zeros_like(p) if h is None else h, torch.zeros_like(p) if w is None else w)
