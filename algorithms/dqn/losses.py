"""Double DQN's loss as a pure function of tensors (van Hasselt et al. 2016, arXiv 1509.06461; Mnih et al. 2015)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def double_dqn_loss(q: torch.Tensor, actions: torch.Tensor, rewards: torch.Tensor, discounts: torch.Tensor,
                    q_next_online: torch.Tensor, q_next_target: torch.Tensor,
                    huber_delta: float = 1.0) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """mean_B Huber( r + γ_t · Q_target(s', argmax_a Q_online(s', a)) − Q(s, a) ).

    q, q_next_online, q_next_target: [B, A]; actions: [B] int; rewards: [B]; discounts: [B], γ (or γ^n) times 0 at a
    terminal transition (a truncated one keeps γ: it bootstraps). The target is held fixed (no gradient)."""
    q_taken = q.gather(1, actions.long().unsqueeze(1)).squeeze(1)
    with torch.no_grad():
        best = q_next_online.argmax(dim=1, keepdim=True)
        target = rewards + discounts * q_next_target.gather(1, best).squeeze(1)
    loss = F.huber_loss(q_taken, target, delta=huber_delta)
    return loss, {"td_error_abs_mean": (target - q_taken).abs().mean().detach(), "q_mean": q_taken.mean().detach()}
