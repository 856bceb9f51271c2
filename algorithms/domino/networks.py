"""DominoState: the algorithm's state as a torch module (no Ray) — ψ, v̄, λ, the PI integral and λ's Adam moments
as buffers, and (successor_features="network") the successor-feature head ψ_θ(s, i).

Buffers, not parameters: none of them is trained by the PPO loss. ψ and v̄ are moving averages (or ψ is read off
the successor-feature head, which is the one trained part: by TD on φ, with its own optimizer) and λ takes
one update per training iteration (an Adam or SGD step on the Lagrangian, or the PI update). Being buffers of a module, they are part of its
state_dict, so RLlib checkpoints save and restore them with the learner-only module that holds this.
"""

from __future__ import annotations

import torch
from torch import nn

from armillary.algorithms.domino import losses
from armillary.algorithms.domino.config import DominoHyperparameters


class SuccessorFeatureNetwork(nn.Module):
    """ψ̃_θ(s, i) ∈ R^F: the normalised successor features (1 − γ) E[Σ_k γ^k φ(s_{t+1+k})] of the policy whose
    one-hot index is part of the observation (the DOMiNO observation [obs | φ | one-hot i] goes in whole).

    The output layer starts at zero, so every policy starts at ψ = 0: no diversity signal from the random
    initialisation of the head, as with identical policies."""

    def __init__(self, input_dim: int, feature_dim: int, hidden_sizes: tuple[int, ...] = (64, 64)):
        super().__init__()
        layers: list[nn.Module] = []
        width = input_dim
        for hidden in hidden_sizes:
            layers += [nn.Linear(width, hidden), nn.Tanh()]
            width = hidden
        output = nn.Linear(width, feature_dim)
        nn.init.zeros_(output.weight)
        nn.init.zeros_(output.bias)
        self.net = nn.Sequential(*layers, output)

    def forward(self, observation: torch.Tensor) -> torch.Tensor:
        return self.net(observation)


class DominoState(nn.Module):
    def __init__(self, hp: DominoHyperparameters, feature_dim: int, observation_dim: int | None = None):
        """feature_dim: F = dim φ; observation_dim: the width of the observations the successor-feature head reads
        (needed only for successor_features="network")."""
        super().__init__()
        self.hp = hp
        n, f = hp.num_policies, feature_dim
        self.sf_network: SuccessorFeatureNetwork | None = None
        if hp.successor_features is losses.SuccessorFeatureEstimator.NETWORK:
            if not observation_dim:
                raise ValueError("successor_features='network' needs the observation width for the successor-feature head")
            self.sf_network = SuccessorFeatureNetwork(observation_dim, f, tuple(hp.sf_hidden_sizes))
        self.register_buffer("psi", torch.zeros(n, f))  # ψ_i: moving average of φ on policy i's data
        self.register_buffer("value", torch.zeros(n))  # v̄_i: moving average of r_e per step
        self.register_buffer("seen", torch.zeros(n, dtype=torch.bool))  # policy i has contributed data
        self.register_buffer("lagrange", torch.full((n,), float(hp.initial_lagrange)))  # λ_i (λ_0 unused)
        # the integral term of the "pi" update (λ = I + K_P e); unused by "adam" and "sgd"
        self.register_buffer("lagrange_integral", torch.full((n,), float(hp.initial_lagrange)))
        self.register_buffer("adam_first", torch.zeros(n))
        self.register_buffer("adam_second", torch.zeros(n))
        self.register_buffer("adam_step", torch.zeros(()))

    @torch.no_grad()
    def observe(
        self, phi: torch.Tensor, extrinsic: torch.Tensor, policy: torch.Tensor, successor_features: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Fold one batch of on-policy rows (φ(s_{t+1}) [B, F], r_e [B], policy index [B]) into ψ and v̄.

        With successor_features="network", `successor_features` [B, F] is the head's ψ̃_θ(s_t, i) on the same rows,
        and ψ_i becomes its mean over policy i's rows (the estimate replaces the moving average; see README).
        Returns the row count of each policy [N]."""
        n = self.hp.num_policies
        phi_means, counts = losses.per_policy_means(phi.to(self.psi.dtype), policy, n)
        reward_means, _ = losses.per_policy_means(extrinsic.to(self.value.dtype), policy, n)
        present = counts > 0
        if self.sf_network is None:
            self.psi.copy_(losses.moving_average(self.psi, phi_means, self.hp.sf_decay, present, self.seen))
        else:
            if successor_features is None:
                raise ValueError("successor_features='network': observe() needs the head's ψ̃_θ(s, i) for the batch's rows")
            network_means, _ = losses.per_policy_means(successor_features.to(self.psi.dtype), policy, n)
            self.psi.copy_(torch.where(present[:, None], network_means, self.psi))
        self.value.copy_(losses.moving_average(self.value, reward_means, self.hp.value_decay, present, self.seen))
        self.seen |= present
        return counts

    @torch.no_grad()
    def directions(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(c(d_i)·Δψ_i [N, F], j* [N], ‖Δψ_i‖ [N]) for the current ψ."""
        return losses.diversity_directions(self.psi, self.hp.diversity, self.hp.target_distance)

    @torch.no_grad()
    def weights(self) -> torch.Tensor:
        """[N, 2] stream weights (w_e, w_d) per policy."""
        s = self.hp
        return losses.mixing_weights(self.lagrange, s.mixing, s.extrinsic_weight, s.diversity_weight)

    @torch.no_grad()
    def rewards(self, phi: torch.Tensor, extrinsic: torch.Tensor, policy: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per row: r_d, the stream weights and the mixed reward."""
        direction, _, _ = self.directions()
        diversity = self.hp.diversity_scale * losses.diversity_reward(phi.to(direction.dtype), policy, direction)
        weights = self.weights()
        mixed = losses.mixed_reward(extrinsic.to(direction.dtype), diversity, policy, weights)
        return {"diversity": diversity, "weights": weights[policy], "mixed": mixed}

    @torch.no_grad()
    def update_multipliers(self) -> None:
        """One step of λ per training iteration: Adam or SGD on Σ_{i≥1} σ(λ_i)(v̄_i − α v̄_0), or the PI update on
        the normalised violation (losses.pi_multiplier_step); only in 'lagrange' mode, and only once every policy
        has data (before that v̄ is meaningless)."""
        if self.hp.mixing is not losses.Mixing.LAGRANGE or not bool(self.seen.all()):
            return
        if self.hp.multiplier_optimizer is losses.MultiplierOptimizer.PI:
            s = self.hp
            violation = losses.normalised_violation(self.value, s.target_ratio)
            lagrange, integral = losses.pi_multiplier_step(
                self.lagrange_integral, violation, s.multiplier_lr, s.multiplier_proportional, s.multiplier_bound
            )
            self.lagrange.copy_(lagrange)
            self.lagrange_integral.copy_(integral)
            self.adam_step.add_(1)  # counts multiplier updates whatever the optimizer
            return
        gradient = losses.lagrange_gradient(self.lagrange, self.value, self.hp.target_ratio)
        if self.hp.multiplier_optimizer is losses.MultiplierOptimizer.SGD:
            # On the loss divided by |v̄_0| (the same constraint, v̄_i/v̄_0 ≥ α), so the learning rate does not
            # depend on the scale of the extrinsic reward.
            scale = self.value[0].abs().clamp(min=1e-8)
            self.lagrange.copy_(losses.sgd_step(self.lagrange, gradient / scale, self.hp.multiplier_lr))
            self.adam_step.add_(1)  # counts multiplier updates whatever the optimizer
            return
        lagrange, first, second, step = losses.adam_step(
            self.lagrange, gradient, self.adam_first, self.adam_second, self.adam_step, self.hp.multiplier_lr
        )
        self.lagrange.copy_(lagrange)
        self.adam_first.copy_(first)
        self.adam_second.copy_(second)
        self.adam_step.copy_(step)

    @torch.no_grad()
    def figures(self) -> dict[str, float]:
        """The logged figures: per-policy multipliers, value ratios, constraint margins, nearest distances."""
        s = self.hp
        _, _, nearest_distance = self.directions()
        extrinsic_weight = self.weights()[:, 0]  # σ(λ_i) in 'lagrange' mode, the fixed w_e in the baselines
        figures = {"min_pairwise_sf_distance": float(nearest_distance.min())}
        v0 = float(self.value[0])
        for i in range(s.num_policies):
            figures[f"nearest_sf_distance/{i}"] = float(nearest_distance[i])
            figures[f"value/{i}"] = float(self.value[i])
            if i == 0:
                continue
            figures[f"lagrange/{i}"] = float(extrinsic_weight[i])
            figures[f"value_ratio/{i}"] = float(self.value[i]) / v0 if v0 != 0 else float("nan")
            figures[f"constraint_margin/{i}"] = float(self.value[i]) - s.optimality_ratio * v0
        margins = [figures[f"constraint_margin/{i}"] for i in range(1, s.num_policies)]
        figures["constraints_met"] = float(sum(m >= 0 for m in margins)) / len(margins)
        return figures
