"""DOMiNO's pure-torch math on hand-checkable tensors (no Ray, milliseconds)."""

from __future__ import annotations

import math

import pytest
import torch

from armillary.algorithms.domino import losses
from armillary.algorithms.domino.config import DominoHyperparameters
from armillary.algorithms.domino.losses import DiversityKind, Mixing
from armillary.algorithms.domino.networks import DominoState

# Three policies on a line in a 2-d feature space: 0 at the origin, 1 at (1, 0), 2 at (3, 0).
PSI = torch.tensor([[0.0, 0.0], [1.0, 0.0], [3.0, 0.0]])


def domino_state(*, feature_dim: int, **fields) -> DominoState:
    """A DominoState for F = feature_dim from DominoHyperparameters(**fields) (the config's defaults otherwise)."""
    return DominoState(DominoHyperparameters(**fields), feature_dim=feature_dim)


def test_nearest_neighbour_excludes_itself():
    nearest, distance = losses.nearest_neighbours(PSI)
    assert nearest.tolist() == [1, 0, 1]
    assert distance.tolist() == [1.0, 1.0, 2.0]
    assert losses.min_pairwise_distance(PSI).item() == 1.0
    with pytest.raises(ValueError):
        losses.nearest_neighbours(PSI[:1])


def test_pairwise_distances_are_euclidean():
    d = losses.pairwise_distances(torch.tensor([[0.0, 0.0], [3.0, 4.0]]))
    assert torch.allclose(d, torch.tensor([[0.0, 5.0], [5.0, 0.0]]))


def test_van_der_waals_coefficient_repels_below_target_and_attracts_above():
    d = torch.tensor([0.0, 1.0, 2.0, 4.0])
    c = losses.van_der_waals_coefficient(d, target_distance=2.0)  # d/ℓ0 = 0, 0.5, 1, 2
    assert torch.allclose(c, torch.tensor([0.5, 0.5 * (1 - 0.125), 0.0, 0.5 * (1 - 8)]))
    assert torch.equal(losses.repulsion_coefficient(d, 2.0), torch.ones(4))
    with pytest.raises(ValueError, match="target_distance"):
        losses.van_der_waals_coefficient(d, 0.0)


def test_diversity_reward_repulsion_by_hand():
    direction, nearest, _ = losses.diversity_directions(PSI, DiversityKind.REPULSION, target_distance=1.0)
    # Δψ: 0 − 1 = (−1, 0); 1 − 0 = (1, 0); 2 − 1 = (2, 0)
    assert torch.equal(direction, torch.tensor([[-1.0, 0.0], [1.0, 0.0], [2.0, 0.0]]))
    phi = torch.tensor([[2.0, 5.0], [2.0, 5.0], [1.0, 1.0]])
    policy = torch.tensor([0, 1, 2])
    r = losses.diversity_reward(phi, policy, direction)
    # φ·Δψ / dim φ: (−2)/2, 2/2, 2/2
    assert torch.allclose(r, torch.tensor([-1.0, 1.0, 1.0]))


def test_diversity_reward_van_der_waals_by_hand():
    direction, _, distance = losses.diversity_directions(PSI, DiversityKind.VAN_DER_WAALS, target_distance=2.0)
    # policy 2: d = 2/2 = 1, c = 0: at the target distance there is no push either way
    assert torch.allclose(direction[2], torch.zeros(2))
    # policy 1: d = 1/2, c = ½(1 − 1/8) = 7/16, Δψ = (1, 0)
    assert torch.allclose(direction[1], torch.tensor([7 / 16, 0.0]))
    # far beyond ℓ0 the coefficient turns negative: attraction back towards the neighbour
    far = torch.tensor([[0.0, 0.0], [4.0, 0.0]])
    direction_far, _, _ = losses.diversity_directions(far, DiversityKind.VAN_DER_WAALS, target_distance=1.0)
    assert direction_far[1, 0] < 0 and direction_far[0, 0] > 0


def test_per_policy_means_and_moving_average():
    values = torch.tensor([1.0, 3.0, 10.0])
    means, counts = losses.per_policy_means(values, torch.tensor([0, 0, 2]), 3)
    assert means.tolist() == [2.0, 0.0, 10.0] and counts.tolist() == [2.0, 0.0, 1.0]
    average = torch.tensor([1.0, 1.0, 1.0])
    present = torch.tensor([True, False, True])
    initialised = torch.tensor([True, True, False])
    updated = losses.moving_average(average, torch.tensor([2.0, 5.0, 7.0]), 0.9, present, initialised)
    # 0: 0.9·1 + 0.1·2; 1: absent, unchanged; 2: first sight, takes the sample
    assert torch.allclose(updated, torch.tensor([1.1, 1.0, 7.0]))


def test_lagrange_loss_and_gradient_signs():
    value = torch.tensor([1.0, 0.95, 0.5])  # α = 0.9: policy 1 meets the constraint, policy 2 does not
    lagrange = torch.zeros(3)
    loss = losses.lagrange_loss(lagrange, value, 0.9)
    assert math.isclose(loss.item(), 0.5 * (0.95 - 0.9) + 0.5 * (0.5 - 0.9), rel_tol=1e-6)
    gradient = losses.lagrange_gradient(lagrange, value, 0.9)
    # σ'(0) = ¼; policy 0 has no multiplier
    assert torch.allclose(gradient, torch.tensor([0.0, 0.25 * 0.05, 0.25 * -0.4]))
    # descent: met → λ_1 falls (more diversity), violated → λ_2 rises (more reward)
    new, *_ = losses.adam_step(lagrange, gradient, torch.zeros(3), torch.zeros(3), torch.zeros(()), lr=0.1)
    assert new[0] == 0 and new[1] < 0 < new[2]
    assert torch.allclose(new[1:].abs(), torch.tensor([0.1, 0.1]), atol=1e-5)  # Adam's first step is lr·sign


def test_adam_step_matches_torch_adam():
    param = torch.tensor([0.3, -1.0])
    torch_param = param.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([torch_param], lr=0.05)
    first, second, step = torch.zeros(2), torch.zeros(2), torch.zeros(())
    for gradient in (torch.tensor([1.0, -2.0]), torch.tensor([0.5, 0.1]), torch.tensor([-3.0, 0.0])):
        param, first, second, step = losses.adam_step(param, gradient, first, second, step, lr=0.05)
        torch_param.grad = gradient.clone()
        optimizer.step()
    assert torch.allclose(param, torch_param.detach(), atol=1e-6)


def test_mixing_weights_and_mixed_reward():
    lagrange = torch.tensor([5.0, 0.0, math.log(3.0)])  # σ = ·, ½, ¾
    weights = losses.mixing_weights(lagrange, Mixing.LAGRANGE, 0.7, 0.3)
    assert torch.allclose(weights, torch.tensor([[1.0, 0.0], [0.5, 0.5], [0.75, 0.25]]))
    assert torch.equal(losses.mixing_weights(lagrange, Mixing.NONE, 0.7, 0.3), torch.tensor([[1.0, 0.0]] * 3))
    assert torch.equal(losses.mixing_weights(lagrange, Mixing.FIXED, 0.7, 0.3)[1:], torch.tensor([[0.7, 0.3]] * 2))
    assert torch.equal(losses.mixing_weights(lagrange, Mixing.FIXED, 0.7, 0.3)[0], torch.tensor([1.0, 0.0]))
    r = losses.mixed_reward(torch.tensor([1.0, 1.0, 1.0]), torch.tensor([4.0, 4.0, 4.0]), torch.tensor([0, 1, 2]), weights)
    assert torch.allclose(r, torch.tensor([1.0, 2.5, 1.75]))
    with pytest.raises(ValueError, match="Mixing"):
        losses.mixing_weights(lagrange, "sum", 0.7, 0.3)


def test_domino_state_tracks_averages_and_steps_multipliers():
    state = domino_state(num_policies=3, feature_dim=2, sf_decay=0.5, value_decay=0.5, multiplier_lr=0.1)
    phi = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0], [0.0, 4.0]])
    reward = torch.tensor([1.0, 1.0, 0.2, 0.4])
    policy = torch.tensor([0, 1, 2, 2])
    state.update_multipliers()  # no data yet: λ stays put
    assert torch.equal(state.lagrange, torch.zeros(3))
    counts = state.observe(phi, reward, policy)
    assert counts.tolist() == [1, 1, 2]
    assert torch.allclose(state.psi, torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 3.0]]))
    assert torch.allclose(state.value, torch.tensor([1.0, 1.0, 0.3]))
    state.observe(torch.tensor([[2.0, 0.0]]), torch.tensor([0.0]), torch.tensor([0]))  # only policy 0 moves
    assert torch.allclose(state.psi[0], torch.tensor([1.0, 0.0])) and torch.allclose(state.value, torch.tensor([0.5, 1.0, 0.3]))
    state.update_multipliers()  # α v̄_0 = 0.45: policy 1 meets it (λ falls), policy 2 does not (λ rises)
    assert state.lagrange[0] == 0 and state.lagrange[1] < 0 < state.lagrange[2]
    assert state.adam_step.item() == 1
    figures = state.figures()
    assert math.isclose(figures["value_ratio/1"], 2.0) and math.isclose(figures["constraint_margin/2"], 0.3 - 0.45, abs_tol=1e-6)
    assert math.isclose(figures["min_pairwise_sf_distance"], 0.0) and figures["constraints_met"] == 0.5
    names = set(state.state_dict())
    assert {"psi", "value", "lagrange", "adam_first", "adam_second", "adam_step", "seen"} <= names
    rewards = state.rewards(phi, reward, policy)
    assert rewards["diversity"].shape == (4,) and rewards["weights"].shape == (4, 2)


def test_baseline_modes_keep_multipliers_fixed():
    state = domino_state(num_policies=2, feature_dim=1, mixing="none")
    state.observe(torch.tensor([[1.0], [0.0]]), torch.tensor([1.0, 0.0]), torch.tensor([0, 1]))
    state.update_multipliers()
    assert torch.equal(state.lagrange, torch.zeros(2))
    assert state.figures()["lagrange/1"] == 1.0  # all weight on the extrinsic reward


def test_sgd_multiplier_step_is_proportional_to_the_relative_margin():
    state = domino_state(num_policies=3, feature_dim=1, multiplier_lr=2.0, multiplier_optimizer="sgd")
    state.observe(torch.zeros(3, 1), torch.tensor([0.5, 0.5, 0.25]), torch.tensor([0, 1, 2]))
    state.update_multipliers()
    # relative margins v̄_i/v̄_0 − α: 1 − 0.9 = 0.1 and 0.5 − 0.9 = −0.4; σ'(0) = ¼; λ ← λ − lr·¼·margin
    assert torch.allclose(state.lagrange, torch.tensor([0.0, -2.0 * 0.25 * 0.1, 2.0 * 0.25 * 0.4]))
    assert state.adam_step.item() == 1
    assert torch.equal(losses.sgd_step(torch.tensor([1.0]), torch.tensor([0.5]), lr=2.0), torch.tensor([0.0]))


def test_normalised_violation_by_hand():
    # α = 0.9, v̄_0 = 0.2: policy 1 at ratio 1 (met by 0.1), policy 2 at ratio 0.5 (violated by 0.4)
    violation = losses.normalised_violation(torch.tensor([0.2, 0.2, 0.1]), 0.9)
    assert torch.allclose(violation, torch.tensor([0.0, -0.1, 0.4]))
    # v̄_0 = 0 (an untrained policy 0): the ratio is meaningless, the violation is clipped instead of exploding
    violation = losses.normalised_violation(torch.tensor([0.0, 0.1, 0.0]), 0.9)
    assert torch.allclose(violation, torch.tensor([0.0, -1.0, 0.9]))


def test_pi_multiplier_step_by_hand():
    integral = torch.tensor([0.0, 1.0, -4.9])
    violation = torch.tensor([0.0, 0.1, -1.0])
    lagrange, new_integral = losses.pi_multiplier_step(integral, violation, integral_gain=0.5, proportional_gain=2.0, bound=5.0)
    # I: 0, 1 + 0.05, −4.9 − 0.5 → clipped to −5 (anti-windup);  λ = I + 2e: 0, 1.25, −7 → clipped to −5
    assert torch.allclose(new_integral, torch.tensor([0.0, 1.05, -5.0]))
    assert torch.allclose(lagrange, torch.tensor([0.0, 1.25, -5.0]))
    # once the violation is gone the proportional part is gone too: λ falls back to the integral
    lagrange, _ = losses.pi_multiplier_step(new_integral, torch.zeros(3), 0.5, 2.0, 5.0)
    assert torch.equal(lagrange, new_integral)
    with pytest.raises(ValueError, match="bound"):
        losses.pi_multiplier_step(integral, violation, 0.5, 2.0, 0.0)


def test_pi_with_equal_gains_is_the_optimistic_gradient_step_on_the_multipliers():
    # λ_t − λ_{t−1} = K_I e_t + K_P (e_t − e_{t−1}); with K_P = K_I = η that is optimistic gradient ascent on the
    # violation, λ_t = λ_{t−1} + η (2 e_t − e_{t−1}) (the dual half of ReLOAD, Moskovitz et al. 2023).
    eta, violations = 0.1, [torch.tensor([0.0, 0.3, -0.2]), torch.tensor([0.0, -0.1, 0.4]), torch.tensor([0.0, 0.2, 0.1])]
    integral, previous, optimistic = torch.zeros(3), torch.zeros(3), torch.zeros(3)
    for violation in violations:
        lagrange, integral = losses.pi_multiplier_step(integral, violation, eta, eta, bound=5.0)
        optimistic = optimistic + eta * (2 * violation - previous)
        previous = violation
        assert torch.allclose(lagrange, optimistic)


def test_domino_state_pi_update_keeps_its_integral_as_a_buffer():
    state = domino_state(num_policies=3, feature_dim=1, multiplier_optimizer="pi", multiplier_lr=0.5,
                         multiplier_proportional=2.0, initial_lagrange=0.25)
    state.observe(torch.zeros(3, 1), torch.tensor([0.5, 0.5, 0.25]), torch.tensor([0, 1, 2]))
    state.update_multipliers()
    # e = (0, 0.9 − 1, 0.9 − 0.5) = (0, −0.1, 0.4); I = 0.25 + 0.5 e; λ = I + 2 e
    assert torch.allclose(state.lagrange_integral, torch.tensor([0.25, 0.2, 0.45]))
    assert torch.allclose(state.lagrange, torch.tensor([0.25, 0.0, 1.25]), atol=1e-6)
    assert state.adam_step.item() == 1 and "lagrange_integral" in state.state_dict()
    # λ_0 is unused: policy 0's weights stay (1, 0) whatever λ_0 is
    assert torch.equal(state.weights()[0], torch.tensor([1.0, 0.0]))


def closed_loop(fields: dict, iterations: int = 240, dead_time: int = 15, lag: float = 20.0) -> tuple[list[float], list[float]]:
    """DominoState's multiplier updates against a model of how the policies respond to their weight.

    The model (an assumption, not RLlib): policy 1's true ratio v_1/v_0 relaxes towards f(w) = 0.4 + 0.6·min(1, 2w)
    (w = σ(λ_1) as it was `dead_time` iterations ago: PPO needs that long to relearn) with time constant `lag`
    iterations, and reaches v̄ through the state's own moving average. Policy 0 has v = 1. Below w = ½ the
    policy trades reward for diversity; at w → 0 it gives up the goals (ratio 0.4), as in the grid runs.
    `fields`: domino_state's arguments. Returns the per-iteration σ(λ_1) and v̄_1/v̄_0."""
    state = domino_state(**fields)
    history = [0.5] * dead_time
    ratio, weights, ratios = 1.0, [], []
    for _ in range(iterations):
        weight = float(torch.sigmoid(state.lagrange[1]))
        history.append(weight)
        ratio += (0.4 + 0.6 * min(1.0, 2.0 * history[-dead_time - 1]) - ratio) / lag
        state.observe(torch.zeros(2, 1), torch.tensor([1.0, ratio]), torch.tensor([0, 1]))
        state.update_multipliers()
        weights.append(float(torch.sigmoid(state.lagrange[1])))
        ratios.append(float(state.value[1] / state.value[0]))
    return weights, ratios


def last_quarter_std(values: list[float]) -> float:
    tail = torch.tensor(values[-len(values) // 4:])
    return float(tail.std(unbiased=False))


@pytest.mark.parametrize("dead_time, lag", [(5, 10.0), (15, 20.0), (25, 25.0)])
def test_pi_multipliers_settle_where_the_integrator_swings(dead_time, lag):
    """The diagnosis of the grid runs' swinging σ(λ), on the model above: the paper's gradient step (an
    integrator, 'sgd' with lr 2.0 as the grid preset had) swings for a delay of 15 iterations, the 'pi' update
    settles for delays of 5–25 with v̄_1/v̄_0 within 0.03 of α at the end."""
    common = dict(num_policies=2, feature_dim=1, optimality_ratio=0.9, value_decay=0.9)
    weights, ratios = closed_loop(dict(**common, multiplier_optimizer="pi", multiplier_lr=0.1, multiplier_proportional=2.0),
                                  dead_time=dead_time, lag=lag)
    assert last_quarter_std(weights) < 0.02
    assert 0.05 < weights[-1] < 0.95
    assert abs(ratios[-1] - 0.9) < 0.03
    if dead_time == 15:
        swinging, _ = closed_loop(dict(**common, multiplier_optimizer="sgd", multiplier_lr=2.0), dead_time=dead_time, lag=lag)
        assert last_quarter_std(swinging) > 0.05


@pytest.mark.parametrize(
    "field, value",
    [("multiplier_bound", 0.0), ("multiplier_proportional", -1.0), ("target_margin", -0.1), ("multiplier_optimizer", "pid"), ("optimality_ratio", 1.5), ("optimality_ratio", 0.0), ("target_distance", 0.0), ("sf_decay", 1.0), ("value_decay", -0.1),
     ("num_policies", 1), ("multiplier_lr", 0.0), ("mixing", "sum"), ("diversity", "gravity"), ("diversity_scale", 0.0)],
)
def test_bad_hyperparameters_are_rejected_naming_the_field(field, value):
    from pydantic import ValidationError

    from armillary.algorithms.domino.config import DominoHyperparameters

    with pytest.raises(ValidationError, match=field):
        DominoHyperparameters(**{field: value})


def test_fixed_mix_needs_a_weight():
    from pydantic import ValidationError

    from armillary.algorithms.domino.config import DominoHyperparameters

    with pytest.raises(ValidationError, match="extrinsic_weight"):
        DominoHyperparameters(mixing="fixed", extrinsic_weight=0.0, diversity_weight=0.0)
    assert DominoHyperparameters(mixing="fixed", extrinsic_weight=0.0, diversity_weight=1.0).diversity_weight == 1.0


def test_target_margin_moves_the_multipliers_target_not_the_reported_constraint():
    """δ: the PI update acts on min(α + δ, 1) − v̄_i/v̄_0; the logged margins and 'met' stay those of v̄_i ≥ α v̄_0."""
    common = dict(num_policies=2, feature_dim=1, optimality_ratio=0.5, multiplier_optimizer="pi", multiplier_lr=1.0,
                  multiplier_proportional=0.0, value_decay=0.0)
    plain, tightened = domino_state(**common), domino_state(**common, target_margin=0.1)
    for state in (plain, tightened):
        state.observe(torch.zeros(2, 1), torch.tensor([1.0, 0.55]), torch.tensor([0, 1]))
        state.update_multipliers()
    assert plain.lagrange[1] == pytest.approx(-0.05) and tightened.lagrange[1] == pytest.approx(0.05)  # e = 0.5 − 0.55, 0.6 − 0.55
    assert plain.figures() == tightened.figures() | {"lagrange/1": plain.figures()["lagrange/1"]}
    assert tightened.figures()["constraints_met"] == 1.0
    fields = {key: value for key, value in common.items() if key != "feature_dim"}
    assert DominoHyperparameters(**{**fields, "optimality_ratio": 0.99}, target_margin=0.05).target_ratio == 1.0
