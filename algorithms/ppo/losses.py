"""PPO's loss with K value streams, as pure functions of tensors (no Ray, no module).

Schulman et al. 2017, "Proximal Policy Optimization Algorithms" (arXiv 1707.06347), eq. 7 (the clipped surrogate)
and eq. 9 (the combined objective), in RLlib's form (its `PPOTorchLearner.compute_loss_for_module`): the value
error is clipped at `vf_clip_param` instead of clipping the value change, and the KL penalty is the learner's.

K value streams: a policy whose critic has one output per reward stream (DISDAIN: the skill reward and the bonus;
DOMiNO: the extrinsic and the diversity reward). Each stream k has its own GAE advantage A_k and value target; the
policy is trained on the mixed advantage A = Σ_k w_k A_k with per-row stream weights w (always explicit: DISDAIN's
are (1, λ) on every row, DOMiNO's (σ(λ_i), 1 − σ(λ_i)) per policy i), and the value term sums every stream's
clipped error against its own target. K = 1 with w = 1 is plain PPO.

Shapes: B rows; `values` and `value_targets` [B] for one stream (RLlib's layout) or [B, K]; weights [B, K].
"""

from __future__ import annotations

import numpy as np
import torch

SMALL_NUMBER = 1e-6  # RLlib's, in the explained variance


def mixed_advantages(value_targets: np.ndarray, values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """A = Σ_k w_k (target_k − V_k) per row, float32 as RLlib's batch holds it: value_targets, values and weights
    [..., K] (float32 numpy arrays), result [...]. The advantage of the mixed reward Σ_k w_k r_k, whose GAE is the
    same weighted sum of the streams' GAEs (GAE is linear in the rewards and the values)."""
    return ((value_targets - values) * weights).sum(-1, dtype=np.float32)


def clipped_surrogate(logp: torch.Tensor, old_logp: torch.Tensor, advantages: torch.Tensor,
                      clip_param: float) -> torch.Tensor:
    """[B] min(A r, A clip(r, 1 − ε, 1 + ε)) with r = π(a|s) / π_old(a|s) = exp(logp − old_logp) (eq. 7)."""
    ratio = torch.exp(logp - old_logp)
    return torch.min(advantages * ratio, advantages * torch.clamp(ratio, 1 - clip_param, 1 + clip_param))


def value_errors(values: torch.Tensor, value_targets: torch.Tensor,
                 vf_clip_param: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(clipped, unclipped) squared errors (V − target)² per row and stream, the clipped ones at vf_clip_param;
    the same shape as `values`."""
    unclipped = torch.pow(values - value_targets, 2.0)
    return torch.clamp(unclipped, 0, vf_clip_param), unclipped


def explained_variance(targets: torch.Tensor, predictions: torch.Tensor) -> torch.Tensor:
    """max(−1, 1 − Var(y − ŷ) / Var(y)), as RLlib's torch_utils.explained_variance computes it."""
    targets = targets.squeeze()
    target_var = torch.var(targets, dim=0)
    residual_var = torch.var(targets - predictions.squeeze(), dim=0)
    return torch.max(torch.tensor([-1.0], device=predictions.device), 1 - residual_var / (target_var + SMALL_NUMBER))[0]


def ppo_loss(logp: torch.Tensor, old_logp: torch.Tensor, advantages: torch.Tensor, entropy: torch.Tensor,
             values: torch.Tensor | None, value_targets: torch.Tensor | None, *, clip_param: float,
             vf_clip_param: float, vf_loss_coeff: float, entropy_coeff: float, stream_names: tuple[str, ...] = (),
             with_stats: bool = False) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """PPO's loss on B rows (all real: padding rows are dropped or masked out by the caller):

        total = mean_rows(−min(A r, A clip(r, 1 − ε, 1 + ε)) + c_vf Σ_k min((V_k − target_k)², vf_clip) − c_H H)

    logp, old_logp, advantages [B]: log π(a|s) now and when sampled, the (mixed, standardised) advantage; entropy
    [B] (or a 0-d zero when its weight is 0 and no figures are wanted: it only weighs in through c_H); values,
    value_targets [B] or [B, K] (None: no critic). stream_names: the K streams' names when values are [B, K],
    for the per-stream figures `vf_loss_<name>`.

    With with_stats, also RLlib's figures: policy_loss, vf_loss (Σ_k clipped), vf_loss_unclipped,
    vf_explained_var (of the first stream), entropy, mean_kl_loss (0: the KL penalty is the caller's)."""
    surrogate = clipped_surrogate(logp, old_logp, advantages, clip_param)
    streams = values is not None and values.dim() == 2
    if streams and len(stream_names) != values.shape[-1]:
        raise ValueError(f"stream_names must name each of the {values.shape[-1]} value streams, got {stream_names}")
    if values is not None:
        vf_loss_clipped, vf_loss = value_errors(values, value_targets, vf_clip_param)
        if streams:
            if with_stats:
                per_stream = vf_loss_clipped.detach().mean(0)
                values, value_targets = values[:, 0], value_targets[:, 0]
                vf_loss = vf_loss.sum(-1)  # the unclipped error enters only the figures
            vf_loss_clipped = vf_loss_clipped.sum(-1)
    else:
        vf_loss = vf_loss_clipped = torch.zeros((), device=surrogate.device)
    total = torch.mean(-surrogate + vf_loss_coeff * vf_loss_clipped - entropy_coeff * entropy)
    if not with_stats:
        return total, {}
    with torch.no_grad():
        zero = torch.zeros((), device=surrogate.device)
        stats = {
            "policy_loss": -torch.mean(surrogate),
            "vf_loss": torch.mean(vf_loss_clipped),
            "vf_loss_unclipped": torch.mean(vf_loss),
            "vf_explained_var": explained_variance(value_targets, values) if values is not None else zero,
            "entropy": torch.mean(entropy),
            "mean_kl_loss": zero,
        }
        if streams:
            stats.update({f"vf_loss_{name}": per_stream[k] for k, name in enumerate(stream_names)})
    return total, stats
