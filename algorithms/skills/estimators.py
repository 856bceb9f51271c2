"""Skill-discovery estimators: rewards, the DISDAIN bonus, effective skills, plug-in mutual information.

Pure torch, no Ray. Conventions: `log_probs` are log-softmax outputs of a discriminator over the N skills,
shape [B, N] for one classifier or [E, B, N] for an ensemble of E; `skills` are int64 [B]; logarithms are
natural (nats) unless a name says bits.
"""

from __future__ import annotations

import math

import torch


def ensemble_mean_log_probs(member_log_probs: torch.Tensor) -> torch.Tensor:
    """log q̄(· | s) with q̄ = (1/E) Σ_e q_e: log-mean-exp over the ensemble axis. [E, B, N] → [B, N]."""
    if member_log_probs.dim() != 3:
        raise ValueError(f"expected ensemble log-probs [E, B, N], got shape {tuple(member_log_probs.shape)}")
    num_members = member_log_probs.shape[0]
    return torch.logsumexp(member_log_probs, dim=0) - math.log(num_members)


def log_prob_of_skill(log_probs: torch.Tensor, skills: torch.Tensor) -> torch.Tensor:
    """log q(z | ·) picked out of [B, N] log-probs for each row's own skill z. → [B]."""
    return log_probs.gather(-1, skills.long().unsqueeze(-1)).squeeze(-1)


def categorical_entropy(log_probs: torch.Tensor) -> torch.Tensor:
    """H[q] = −Σ_z q(z) log q(z) over the last axis (0·log 0 = 0). [..., N] → [...]."""
    probs = log_probs.exp()
    return -(probs * torch.where(probs > 0, log_probs, torch.zeros_like(log_probs))).sum(-1)


def skill_reward(mean_log_probs: torch.Tensor, skills: torch.Tensor, num_skills: int) -> torch.Tensor:
    """DISDAIN paper eq. (skill reward): r_skill = log q̄(z | s_T) + log N. [B, N], [B] → [B].

    Zero for a discriminator at chance (q̄ = 1/N), log N at certainty; negative when the state points to
    another skill.
    """
    return log_prob_of_skill(mean_log_probs, skills) + math.log(num_skills)


def disagreement_bonus(member_log_probs: torch.Tensor) -> torch.Tensor:
    """DISDAIN bonus r_D(s) = H[q̄(· | s)] − (1/E) Σ_e H[q_e(· | s)]. [E, B, N] → [B].

    The Jensen gap of the entropy: ≥ 0, and 0 exactly when every member predicts the same distribution.
    """
    mean_entropy_of_members = categorical_entropy(member_log_probs).mean(0)
    entropy_of_mean = categorical_entropy(ensemble_mean_log_probs(member_log_probs))
    return entropy_of_mean - mean_entropy_of_members


def vic_reward(log_probs: torch.Tensor, skills: torch.Tensor, num_skills: int) -> torch.Tensor:
    """VIC reward log q(z | s_0, s_T) − log p(z), with the uniform prior p(z) = 1/N. [B, N], [B] → [B]."""
    return log_prob_of_skill(log_probs, skills) + math.log(num_skills)


def rvic_reward(relative_log_probs: torch.Tensor, absolute_log_probs: torch.Tensor, skills: torch.Tensor) -> torch.Tensor:
    """RVIC reward log q_rel(z | s_0, s_f) − log q_abs(z | s_f). [B, N], [B, N], [B] → [B].

    A bound on I(Z; S_f | S_0) − I(Z; S_f): high when the end state identifies the skill only together
    with the start (a displacement), low when the end state alone does (an absolute place).
    """
    return log_prob_of_skill(relative_log_probs, skills) - log_prob_of_skill(absolute_log_probs, skills)


def effective_skills(skill_rewards: torch.Tensor) -> torch.Tensor:
    """exp(E[log q̄(z | s_T) + log N]) from unclipped skill rewards [B]: 2 ** I(Z; S_T) in bits, a
    lower bound estimated through the discriminator. 1 at chance, N at best."""
    return skill_rewards.float().mean().exp()


def _entropy_of_counts(counts: torch.Tensor) -> torch.Tensor:
    """Entropy (nats) of the empirical distribution given by counts over the last axis."""
    total = counts.sum(-1, keepdim=True).clamp_min(1)
    probs = counts / total
    safe_log = torch.where(probs > 0, probs.log(), torch.zeros_like(probs))
    return -(probs * safe_log).sum(-1)


def _as_codes(outcomes: torch.Tensor) -> torch.Tensor:
    """Integer codes 0..K-1 for outcomes given as ints [B] or as rows [B, D] (e.g. (x, y) positions)."""
    if outcomes.dim() == 1:
        outcomes = outcomes.unsqueeze(-1)
    return torch.unique(outcomes, dim=0, return_inverse=True)[1]


def per_skill_entropy(skills: torch.Tensor, outcomes: torch.Tensor, num_skills: int) -> torch.Tensor:
    """H[X | Z = z] for each skill from counts (nats), [N]; NaN for skills with no sample.

    `outcomes` is [B] ints or [B, D] rows (an end position (x, y), or a displacement s_f − s_0).
    """
    codes = _as_codes(outcomes)
    counts = torch.zeros(num_skills, int(codes.max()) + 1, dtype=torch.float64)
    counts.index_put_((skills.long(), codes), torch.ones_like(codes, dtype=torch.float64), accumulate=True)
    entropies = _entropy_of_counts(counts)
    return torch.where(counts.sum(-1) > 0, entropies, torch.full_like(entropies, float("nan")))


def plugin_mutual_information(skills: torch.Tensor, outcomes: torch.Tensor, num_skills: int) -> torch.Tensor:
    """Plug-in estimate of I(Z; X) = H[X] − H[X | Z] (nats) from the empirical joint counts.

    Biased upwards for few samples per (z, x) cell (by about (|Z|−1)(|X|−1) / 2B); evaluate on a large
    batch. `outcomes` as in per_skill_entropy.
    """
    codes = _as_codes(outcomes)
    joint = torch.zeros(num_skills, int(codes.max()) + 1, dtype=torch.float64)
    joint.index_put_((skills.long(), codes), torch.ones_like(codes, dtype=torch.float64), accumulate=True)
    total = joint.sum()
    skill_weights = joint.sum(-1) / total
    conditional = (skill_weights * _entropy_of_counts(joint)).sum()
    return _entropy_of_counts(joint.sum(0)) - conditional


def nats_to_bits(nats: torch.Tensor | float) -> torch.Tensor | float:
    return nats / math.log(2.0)
