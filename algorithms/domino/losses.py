"""DOMiNO's math in pure torch (no Ray): successor-feature distances, the diversity reward, the moving
averages, the Lagrange multipliers and the reward mixing. Paper: Zahavy et al. 2022, "Discovering Policies
with DOMiNO: Diversity Optimization Maintaining Near Optimality" (arXiv 2205.13521).

Shapes: N policies, F = dim φ, B rows. ψ [N, F] (successor features: the average of φ(s) under each
policy's state occupancy), v̄ [N] (average extrinsic reward per step), λ [N] (λ_0 is unused: policy 0 has no
constraint and maximises the extrinsic reward only).
"""

from __future__ import annotations

import enum

import torch


class SuccessorFeatureEstimator(str, enum.Enum):
    """How ψ_i is estimated (config field `successor_features`)."""

    MOVING_AVERAGE = "moving_average"  # ψ_i ← β ψ_i + (1 − β) mean of φ(s') over policy i's rows
    NETWORK = "network"  # ψ_i = mean over policy i's rows of ψ_θ(s, i), a head trained by TD on φ


class Mixing(str, enum.Enum):
    """How policy i ≥ 1 mixes the extrinsic and diversity rewards (config field `mixing`); policy 0 is r_e only."""

    LAGRANGE = "lagrange"  # DOMiNO: σ(λ_i) r_e + (1 − σ(λ_i)) r_d, λ_i keeps v_i ≥ α v_0
    NONE = "none"  # baseline without diversity: r_e for every policy
    FIXED = "fixed"  # multi-objective baseline: c_e r_e + c_d r_d


class MultiplierOptimizer(str, enum.Enum):
    """How the multipliers λ take their one step per iteration (config field `multiplier_optimizer`)."""

    ADAM = "adam"  # Adam on Σ σ(λ_i)(v̄_i − α v̄_0) (the paper)
    SGD = "sgd"  # gradient descent on the same loss divided by |v̄_0|
    PI = "pi"  # a proportional-integral update on the normalised violation (pi_multiplier_step)


class DiversityKind(str, enum.Enum):
    """How the diversity reward's coefficient c(d) depends on the distance d = ‖ψ_i − ψ_j*‖ / ℓ0."""

    REPULSION = "repulsion"  # c = 1: push the nearest neighbour away at any distance
    VAN_DER_WAALS = "vdw"  # c = ½(1 − d³): repel when closer than ℓ0, attract when farther


def pairwise_distances(psi: torch.Tensor) -> torch.Tensor:
    """[N, N] Euclidean distances ‖ψ_i − ψ_j‖."""
    diff = psi[:, None, :] - psi[None, :, :]
    return diff.pow(2).sum(-1).sqrt()


def nearest_neighbours(psi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For each policy i: j* = argmin_{j ≠ i} ‖ψ_i − ψ_j‖ and that distance. Returns (j* [N] long, d [N])."""
    if psi.shape[0] < 2:
        raise ValueError("nearest neighbours need at least two policies")
    distances = pairwise_distances(psi)
    distances = distances + torch.diag(torch.full((psi.shape[0],), float("inf"), dtype=psi.dtype, device=psi.device))
    nearest_distance, nearest = distances.min(dim=1)
    return nearest, nearest_distance


def min_pairwise_distance(psi: torch.Tensor) -> torch.Tensor:
    """min_{i ≠ j} ‖ψ_i − ψ_j‖: the diversity of the whole set (0 when two policies coincide)."""
    return nearest_neighbours(psi)[1].min()


def repulsion_coefficient(distance: torch.Tensor, target_distance: float) -> torch.Tensor:
    """Pure repulsion: c(d) = 1 for every d."""
    return torch.ones_like(distance)


def van_der_waals_coefficient(distance: torch.Tensor, target_distance: float) -> torch.Tensor:
    """Van der Waals: c(d) = ½ (1 − d³) with d = ‖Δψ‖ / ℓ0. Positive (repel) below ℓ0, zero at ℓ0, negative
    (attract) beyond it, so ℓ0 becomes the target distance to the nearest neighbour."""
    if target_distance <= 0:
        raise ValueError(f"target_distance ℓ0 must be > 0, got {target_distance}")
    d = distance / target_distance
    return 0.5 * (1.0 - d.pow(3))


COEFFICIENTS = {DiversityKind.REPULSION: repulsion_coefficient, DiversityKind.VAN_DER_WAALS: van_der_waals_coefficient}


def diversity_directions(psi: torch.Tensor, kind: DiversityKind, target_distance: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per policy: c(d_i)·Δψ_i with Δψ_i = ψ_i − ψ_j*, so that r_d(s) = φ(s)·direction_i / dim φ.

    Returns (direction [N, F], nearest index j* [N], nearest distance ‖Δψ_i‖ [N])."""
    nearest, distance = nearest_neighbours(psi)
    delta = psi - psi[nearest]
    coefficient = COEFFICIENTS[DiversityKind(kind)](distance, target_distance)
    return coefficient[:, None] * delta, nearest, distance


def diversity_reward(phi: torch.Tensor, policy: torch.Tensor, direction: torch.Tensor) -> torch.Tensor:
    """r_d = c(d)·φ(s)·(ψ_i − ψ_j*) / dim φ for each row. phi [B, F], policy [B] (index i of the row's policy),
    direction [N, F] from diversity_directions. Returns [B]."""
    return (phi * direction[policy]).sum(-1) / phi.shape[-1]


def per_policy_means(values: torch.Tensor, policy: torch.Tensor, num_policies: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean of `values` ([B] or [B, F]) over the rows of each policy: (means [N] or [N, F], row counts [N])."""
    counts = torch.bincount(policy, minlength=num_policies).to(values.dtype)
    flat = values.reshape(values.shape[0], -1)
    sums = torch.zeros(num_policies, flat.shape[1], dtype=values.dtype, device=values.device).index_add_(0, policy, flat)
    means = sums / counts.clamp(min=1)[:, None]
    return means.reshape(num_policies, *values.shape[1:]), counts


def moving_average(average: torch.Tensor, sample: torch.Tensor, decay: float, present: torch.Tensor, initialised: torch.Tensor) -> torch.Tensor:
    """x̄ ← decay·x̄ + (1 − decay)·x for the policies `present` in this batch ([N] bool); a policy seen for the
    first time (`initialised` False) takes the sample as is, so the average does not start biased towards 0."""
    shape = (-1,) + (1,) * (average.dim() - 1)
    updated = torch.where(initialised.reshape(shape), decay * average + (1.0 - decay) * sample, sample)
    return torch.where(present.reshape(shape), updated, average)


def successor_feature_targets(phi_next: torch.Tensor, psi_next: torch.Tensor, terminated: torch.Tensor, discount: float) -> torch.Tensor:
    """The TD target of the normalised successor features ψ̃ = (1 − γ) ψ, ψ(s) = E[Σ_k γ^k φ(s_{t+1+k})]:

        ψ̃(s_t) ← (1 − γ) φ(s_{t+1}) + γ (1 − terminal_{t+1}) ψ̃(s_{t+1})

    i.e. the brief's ψ(s) ← φ(s') + γ ψ(s') times (1 − γ), so that ψ̃ stays on the scale of φ (a discounted
    average of future features) whatever γ is. φ(s') rather than φ(s): the same convention as the moving average
    and r_d (arriving somewhere is credited to the step that arrives). A terminal s' ends the sum (no bootstrap);
    a time-limit truncation is not terminal and bootstraps from the last observation.
    phi_next [B, F], psi_next [B, F] (treated as a constant), terminated [B] (bool or 0/1). Returns [B, F]."""
    if not 0.0 <= discount < 1.0:
        raise ValueError(f"successor-feature discount γ must be in [0, 1), got {discount}")
    alive = 1.0 - terminated.to(psi_next.dtype)
    return (1.0 - discount) * phi_next.to(psi_next.dtype) + discount * alive[:, None] * psi_next.detach()


def successor_feature_td_loss(
    psi: torch.Tensor, psi_next: torch.Tensor, phi_next: torch.Tensor, terminated: torch.Tensor, mask: torch.Tensor, discount: float,
) -> torch.Tensor:
    """Semi-gradient TD loss of the successor-feature head: mean over the rows in `mask` ([B] bool) and over
    the F features of (ψ̃_θ(s) − target)², the target from successor_feature_targets with ψ̃_θ(s') held fixed."""
    target = successor_feature_targets(phi_next, psi_next, terminated, discount)
    errors = (psi - target).pow(2).mean(-1)
    mask = mask.bool()
    if not bool(mask.any()):
        return (psi * 0.0).sum()
    return errors[mask].mean()


def lagrange_loss(lagrange: torch.Tensor, value: torch.Tensor, optimality_ratio: float) -> torch.Tensor:
    """Σ_{i ≥ 1} σ(λ_i)(v̄_i − α v̄_0): minimised in λ. Where policy i is better than α v̄_0 the gradient lowers
    σ(λ_i) (more weight on diversity); where it falls short it raises σ(λ_i) (more weight on reward)."""
    margin = value[1:] - optimality_ratio * value[0]
    return (torch.sigmoid(lagrange[1:]) * margin.detach()).sum()


def lagrange_gradient(lagrange: torch.Tensor, value: torch.Tensor, optimality_ratio: float) -> torch.Tensor:
    """∂ lagrange_loss / ∂λ, [N] (0 for λ_0)."""
    with torch.enable_grad():  # callers may sit inside torch.no_grad()
        leaf = lagrange.detach().clone().requires_grad_(True)
        (gradient,) = torch.autograd.grad(lagrange_loss(leaf, value.detach(), optimality_ratio), leaf)
    return gradient


def sgd_step(param: torch.Tensor, gradient: torch.Tensor, lr: float) -> torch.Tensor:
    """Plain gradient descent: a step proportional to the constraint margin, so λ slows down as v̄_i nears α v̄_0
    (Adam's normalised steps keep their size and make λ swing between the bounds)."""
    return param - lr * gradient


def normalised_violation(value: torch.Tensor, optimality_ratio: float, limit: float = 1.0) -> torch.Tensor:
    """e_i = α − v̄_i / v̄_0 for i ≥ 1 (positive: constraint violated), e_0 = 0, clipped to [−limit, limit].

    Relative to v̄_0 so that the controller's gains do not depend on the scale of r_e. Clipped because early
    in training v̄_0 ≈ 0 (an untrained policy 0 rarely reaches a goal) and the ratio is then meaningless."""
    scale = value[0].abs().clamp(min=1e-8)
    violation = (optimality_ratio - value / scale).clamp(-limit, limit)
    violation[0] = 0.0  # policy 0 has no constraint
    return violation


def pi_multiplier_step(
    integral: torch.Tensor, violation: torch.Tensor, integral_gain: float, proportional_gain: float, bound: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """A proportional-integral update of the multipliers on the normalised violation e (Stooke, Achiam & Abbeel
    2020, "Responsive Safety in RL by PID Lagrangian Methods", applied to DOMiNO's λ):

        I_i ← clip(I_i + K_I e_i, −Λ, Λ)        λ_i = clip(I_i + K_P e_i, −Λ, Λ)

    Why not the paper's gradient step on Σ σ(λ_i)(v̄_i − α v̄_0): that step is a pure integrator of the
    violation, scaled by σ'(λ_i). The policies answer a weight change only after tens of iterations (PPO has to
    relearn, then v̄ has to catch up), and an integrator acting on a delayed response keeps turning λ after the
    violation has been corrected, so λ overshoots and swings. The σ' factor makes it worse: once σ(λ_i) is near
    0 its steps shrink (σ' ≈ σ), so a violated policy waits long for its weight to come back (windup). Here
    the integral moves at K_I e whatever σ(λ_i) is, the bound Λ stops it from winding up, and the
    proportional term gives an immediate, bounded answer to a violation that vanishes as soon as the violation
    does (the damping). In increments, λ_t − λ_{t−1} = K_I e_t + K_P (e_t − e_{t−1}): with K_P = K_I this is the
    optimistic gradient step λ_t = λ_{t−1} + K_I (2 e_t − e_{t−1}), the multiplier half of ReLOAD (Moskovitz et al.
    2023); the presets extrapolate harder (K_P = 20 K_I). Returns (λ, I), new tensors; λ = I + K_P e, so λ_0 stays
    at I_0 (e_0 = 0)."""
    if bound <= 0:
        raise ValueError(f"multiplier bound Λ must be > 0, got {bound}")
    integral = (integral + integral_gain * violation).clamp(-bound, bound)
    lagrange = (integral + proportional_gain * violation).clamp(-bound, bound)
    return lagrange, integral


def adam_step(
    param: torch.Tensor, gradient: torch.Tensor, first: torch.Tensor, second: torch.Tensor, step: torch.Tensor,
    lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """One Adam step (Kingma & Ba) written out, so that its moments can live as module buffers and travel with
    checkpoints. Returns (param, first, second, step), all new tensors."""
    step = step + 1
    first = betas[0] * first + (1 - betas[0]) * gradient
    second = betas[1] * second + (1 - betas[1]) * gradient.pow(2)
    first_hat = first / (1 - betas[0] ** step)
    second_hat = second / (1 - betas[1] ** step)
    return param - lr * first_hat / (second_hat.sqrt() + eps), first, second, step


def lagrange_weights(lagrange: torch.Tensor, extrinsic_weight: float, diversity_weight: float) -> torch.Tensor:
    """DOMiNO: (σ(λ_i), 1 − σ(λ_i)) for every policy (the fixed weights are unused)."""
    sigma = torch.sigmoid(lagrange)
    return torch.stack((sigma, 1.0 - sigma), dim=-1)


def extrinsic_only_weights(lagrange: torch.Tensor, extrinsic_weight: float, diversity_weight: float) -> torch.Tensor:
    """The no-diversity baseline: (1, 0) for every policy."""
    return torch.tensor([[1.0, 0.0]], dtype=lagrange.dtype, device=lagrange.device).expand(lagrange.shape[0], 2).clone()


def fixed_weights(lagrange: torch.Tensor, extrinsic_weight: float, diversity_weight: float) -> torch.Tensor:
    """The multi-objective baseline: (c_e, c_d) for every policy."""
    weights = torch.tensor([[extrinsic_weight, diversity_weight]], dtype=lagrange.dtype, device=lagrange.device)
    return weights.expand(lagrange.shape[0], 2).clone()


MIXING_WEIGHTS = {Mixing.LAGRANGE: lagrange_weights, Mixing.NONE: extrinsic_only_weights, Mixing.FIXED: fixed_weights}


def mixing_weights(lagrange: torch.Tensor, mixing: Mixing, extrinsic_weight: float, diversity_weight: float) -> torch.Tensor:
    """[N, 2]: the weights (w_e, w_d) of the extrinsic and diversity streams for each policy, by `mixing`
    (lagrange_weights, extrinsic_only_weights, fixed_weights); policy 0 is (1, 0) in every mode."""
    weights = MIXING_WEIGHTS[Mixing(mixing)](lagrange, extrinsic_weight, diversity_weight)
    weights[0] = torch.tensor([1.0, 0.0], dtype=lagrange.dtype, device=lagrange.device)
    return weights


def mixed_reward(extrinsic: torch.Tensor, diversity: torch.Tensor, policy: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """r = w_e(i) r_e + w_d(i) r_d per row; with 'lagrange' weights σ(λ_i) r_e + (1 − σ(λ_i)) r_d, and r_e for i = 0."""
    row = weights[policy]
    return row[:, 0] * extrinsic + row[:, 1] * diversity
