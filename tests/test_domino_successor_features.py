"""The successor-feature head of DOMiNO (successor_features="network"): the TD target, its fixed point on a small
Markov chain where ψ has a closed form, the stationary-average identity that lets the per-policy batch mean of
ψ̃ stand in for the average-reward ψ, and the state's use of the head. Pure torch, no Ray, about a second."""

from __future__ import annotations

import pytest
import torch

from armillary.algorithms.domino import losses
from armillary.algorithms.domino.config import DominoHyperparameters
from armillary.algorithms.domino.networks import DominoState, SuccessorFeatureNetwork

# A 4-state chain with self-loops (aperiodic, ergodic): s → s+1 mostly, state 3 back to 0 half the time.
P = torch.tensor([
    [0.1, 0.9, 0.0, 0.0],
    [0.0, 0.1, 0.9, 0.0],
    [0.0, 0.0, 0.1, 0.9],
    [0.5, 0.0, 0.0, 0.5],
], dtype=torch.float64)
PHI = torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]], dtype=torch.float64)
GAMMA = 0.9


def closed_form(discount: float) -> torch.Tensor:
    """ψ̃(s) = (1 − γ) Σ_k γ^k E[φ(s_{t+1+k}) | s_t = s] = (1 − γ) (I − γP)⁻¹ P Φ."""
    eye = torch.eye(P.shape[0], dtype=P.dtype)
    return (1 - discount) * torch.linalg.solve(eye - discount * P, P @ PHI)


def stationary_distribution() -> torch.Tensor:
    eigenvalues, eigenvectors = torch.linalg.eig(P.T)
    d = eigenvectors[:, torch.argmin((eigenvalues - 1).abs())].real
    return d / d.sum()


def fit_tabular_td(bootstrap_from_next: bool = True, steps: int = 1500, batch: int = 2048, seed: int = 0) -> torch.Tensor:
    """Semi-gradient TD with successor_feature_td_loss on sampled transitions of the chain, a table as ψ̃.
    bootstrap_from_next=False is the classic bug (bootstrapping from ψ̃(s) instead of ψ̃(s'))."""
    generator = torch.Generator().manual_seed(seed)
    table = torch.zeros(4, 2, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.SGD([table], lr=4.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0 / (1.0 + step / 150))
    for _ in range(steps):
        s = torch.randint(0, 4, (batch,), generator=generator)
        s_next = torch.multinomial(P[s], 1, generator=generator).squeeze(-1)
        psi = table[s]
        psi_next = table[s_next] if bootstrap_from_next else table[s]
        loss = losses.successor_feature_td_loss(psi, psi_next, PHI[s_next], torch.zeros(batch), torch.ones(batch, dtype=torch.bool), GAMMA)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
    return table.detach()


def test_td_target_by_hand():
    phi_next = torch.tensor([[1.0, 2.0], [4.0, 0.0]])
    psi_next = torch.tensor([[10.0, 20.0], [30.0, 40.0]])
    target = losses.successor_feature_targets(phi_next, psi_next, torch.tensor([False, True]), discount=0.5)
    # row 0: ½ φ' + ½ ψ'; row 1 ends in a terminal state: ½ φ' only
    assert torch.allclose(target, torch.tensor([[5.5, 11.0], [2.0, 0.0]]))
    with pytest.raises(ValueError, match="discount"):
        losses.successor_feature_targets(phi_next, psi_next, torch.tensor([False, False]), discount=1.0)


def test_td_loss_is_semi_gradient_and_masked():
    psi = torch.tensor([[1.0, 1.0], [5.0, 5.0]], requires_grad=True)
    psi_next = psi * 2  # the bootstrap: no gradient may flow through it
    loss = losses.successor_feature_td_loss(psi, psi_next, torch.zeros(2, 2), torch.zeros(2), torch.tensor([True, False]), discount=0.5)
    loss.backward()
    # row 0 only: target = ½ ψ' = ½ · 2 = 1 = ψ → no error and no gradient (through ψ' there would be none either here)
    assert loss.item() == pytest.approx(0.0)
    assert torch.equal(psi.grad, torch.zeros(2, 2))
    psi.grad = None
    loss = losses.successor_feature_td_loss(psi, psi * 2 + 1, torch.zeros(2, 2), torch.zeros(2), torch.tensor([True, False]), discount=0.5)
    loss.backward()
    # target row 0 = ½ (2 + 1) = 1.5, error −0.5 on each feature: ∂/∂ψ mean((ψ − t)²) = 2 (ψ − t) / F = −0.5 with
    # the target held fixed (through the target it would add −2 · ½ · 2 · (ψ − t) / F = +0.5 and cancel to 0)
    assert torch.allclose(psi.grad, torch.tensor([[-0.5, -0.5], [0.0, 0.0]]))
    empty = losses.successor_feature_td_loss(psi, psi, torch.zeros(2, 2), torch.zeros(2), torch.zeros(2, dtype=torch.bool), 0.5)
    assert empty.item() == 0.0


def test_td_converges_to_the_closed_form_on_a_markov_chain():
    exact = closed_form(GAMMA)
    learned = fit_tabular_td()
    assert (learned - exact).abs().max() < 0.02, (learned, exact)


def test_bootstrapping_from_the_wrong_state_misses_the_closed_form():
    """The same procedure with the bootstrap taken at s instead of s' converges elsewhere (to P Φ): the test
    above can tell a right bootstrap from a wrong one."""
    exact = closed_form(GAMMA)
    wrong = fit_tabular_td(bootstrap_from_next=False)
    assert torch.allclose(wrong, P @ PHI, atol=0.03)
    assert (wrong - exact).abs().max() > 0.1


@pytest.mark.parametrize("discount", [0.0, 0.5, 0.9, 0.99])
def test_stationary_average_of_normalised_sf_is_the_average_reward_sf(discount):
    """Σ_s d(s) ψ̃(s) = Σ_s d(s) φ(s) for the stationary d and any γ (d P = d): the per-policy mean of ψ̃ over
    on-policy states estimates the average-reward ψ = E_d[φ]. From the start state alone it does so only as γ → 1
    (the bias shrinks like (1 − γ) × the mixing time): at the γ we use it is biased towards what follows the start."""
    d = stationary_distribution()
    psi = closed_form(discount)
    assert torch.allclose(d @ psi, d @ PHI, atol=1e-10)
    start_bias = (psi[0] - d @ PHI).abs().max()
    assert start_bias > 0.05 if discount <= 0.9 else start_bias < 0.01


def test_network_head_learns_the_chain_successor_features():
    torch.manual_seed(0)
    network = SuccessorFeatureNetwork(input_dim=4, feature_dim=2, hidden_sizes=(32,)).double()
    assert torch.equal(network(torch.eye(4, dtype=torch.float64)), torch.zeros(4, 2))  # ψ = 0 at the start
    optimizer = torch.optim.Adam(network.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(1)
    eye = torch.eye(4, dtype=torch.float64)
    for _ in range(1500):
        s = torch.randint(0, 4, (512,), generator=generator)
        s_next = torch.multinomial(P[s], 1, generator=generator).squeeze(-1)
        both = network(torch.cat((eye[s], eye[s_next])))
        loss = losses.successor_feature_td_loss(both[:512], both[512:], PHI[s_next], torch.zeros(512), torch.ones(512, dtype=torch.bool), GAMMA)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    learned = network(eye).detach()
    assert (learned - closed_form(GAMMA)).abs().max() < 0.03


def settings(**overrides) -> DominoHyperparameters:
    return DominoHyperparameters(**{"num_policies": 3, "successor_features": "network", "sf_hidden_sizes": [8], **overrides})


def test_state_takes_psi_from_the_head_per_policy_and_keeps_absent_policies():
    state = DominoState(settings(), feature_dim=2, observation_dim=5)
    assert state.sf_network is not None and sum(p.numel() for p in state.parameters()) > 0
    state.psi.copy_(torch.tensor([[9.0, 9.0], [9.0, 9.0], [7.0, 7.0]]))
    phi = torch.zeros(4, 2)  # ignored by the network estimate
    heads = torch.tensor([[1.0, 0.0], [3.0, 2.0], [0.5, 0.5], [0.0, 0.0]])
    counts = state.observe(phi, torch.ones(4), torch.tensor([0, 0, 1, 1]), successor_features=heads)
    assert counts.tolist() == [2, 2, 0]
    assert torch.allclose(state.psi, torch.tensor([[2.0, 1.0], [0.25, 0.25], [7.0, 7.0]]))  # policy 2 absent: kept
    with pytest.raises(ValueError, match="needs the head"):
        state.observe(phi, torch.ones(4), torch.tensor([0, 0, 1, 1]))


def test_moving_average_mode_has_no_head_and_network_mode_needs_the_width():
    assert DominoState(settings(successor_features="moving_average"), feature_dim=2).sf_network is None
    with pytest.raises(ValueError, match="observation width"):
        DominoState(settings(), feature_dim=2)
    with pytest.raises(ValueError):
        DominoState(settings(successor_features="table"), feature_dim=2, observation_dim=5)


def test_config_fields_are_validated():
    from armillary.algorithms.domino.config import DominoHyperparameters

    hp = DominoHyperparameters(successor_features="network", sf_discount=0.8, sf_lr=1e-3, sf_hidden_sizes=[16])
    assert hp.successor_features == "network"
    for bad in ({"successor_features": "table"}, {"sf_discount": 1.0}, {"sf_lr": 0.0}, {"sf_hidden_sizes": [0]}, {"sf_hidden_sizes": []}):
        with pytest.raises(ValueError):
            DominoHyperparameters(**bad)
