"""SCoRe (Kumar et al., 2024, arXiv 2409.12917) learner math: pure torch, no Ray.

One episode is one token sequence  x ⊕ y1 ⊕ p ⊕ y2  (problem, first attempt, the fixed self-correction
instruction, second attempt) with two masks marking the tokens of y1 and of y2. k episodes are sampled
per problem and stored problem-major: rows [i·k, (i+1)·k) belong to problem i.

Per turn t ∈ {1, 2} (paper eq. 3 / 4, PAPERS.md §5):

    R_t      = r_t − β_t · KL_t                      KL_t = Σ_{tokens of y_t} kl_j   (the penalty is SUBTRACTED)
    A_t      = R_t − (1/(k−1)) Σ_{j≠i} R_t[j]        REINFORCE with a leave-one-out baseline over the k samples
    L        = −(1/B) Σ_episodes Σ_t A_t Σ_{tokens of y_t} log π_θ(token)

with discount 0 between turns: the tokens of y1 are credited with A_1 only and the tokens of y2 with A_2 only.

The shaped rewards (r_1, r_2) and coefficients (β_1, β_2 per turn) of each variant:

    stage1            r_1 = 0,       β on y1 = β2 (strong)   r_2 = r̂(y2),                    β on y2 = β1
    stage2 (SCoRe)    r_1 = r̂(y1),   β on y1 = β1            r_2 = r̂(y2) + α (r̂(y2) − r̂(y1)), β on y2 = β1
    naive multi-turn  r_1 = r̂(y1),   β on y1 = β1            r_2 = r̂(y2),                    β on y2 = β1
    single-turn       r_1 = r̂(y1),   β on y1 = β1            y2 not trained (its tokens get no gradient)

KL estimator (per token j, with log-ratio ρ_j = log π_θ(y_j) − log π_ref(y_j) on tokens sampled from π_θ):

    k1 (default)  kl_j = ρ_j                    Σ_j ρ_j is an unbiased estimate of the sequence KL(π_θ ‖ π_ref),
                                                and as a (detached) reward its score-function gradient is the
                                                exact gradient of that KL; it can be negative per sample.
    k3            kl_j = exp(−ρ_j) − 1 + ρ_j    non-negative, lower variance; unbiased for the value of the KL,
                                                but as a detached reward its gradient is biased. Use it for logging.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Sequence

import torch


class Variant(str, enum.Enum):
    """Which rewards and coefficients each turn gets (see the module docstring)."""

    STAGE1 = "stage1"
    STAGE2 = "stage2"
    NAIVE_MULTI_TURN = "naive_multi_turn"
    SINGLE_TURN = "single_turn"
    # Not RL: supervised fine-tuning on the policy's own successful second attempts (STaR-style), see
    # correction_sft_loss. Listed here so one `variant` field chooses among all the baselines.
    SFT_CORRECTION = "sft_correction"
    # Not RL: Pair-SFT (Welleck et al., the paper's §6 baseline): a wrong first attempt in the turn-2 context, a
    # correct attempt at the same problem (a sibling sample) as the target, see correction_pairs / sft_loss.
    PAIR_SFT = "pair_sft"


SFT_VARIANTS = (Variant.SFT_CORRECTION, Variant.PAIR_SFT)


class KLEstimator(str, enum.Enum):
    K1 = "k1"
    K3 = "k3"


@dataclass(frozen=True)
class TurnRewards:
    """Per-episode shaped rewards and KL coefficients of the two turns; `train_turn2` false drops y2's gradient."""

    turn1: torch.Tensor  # [B]
    turn2: torch.Tensor  # [B]
    beta_turn1: float
    beta_turn2: float
    train_turn2: bool = True


# --------------------------------------------------------------------------------------------------------
# Log-probabilities and the KL estimator
# --------------------------------------------------------------------------------------------------------


def response_log_probs(logits: torch.Tensor, input_ids: torch.Tensor, response_mask: torch.Tensor) -> torch.Tensor:
    """log π(input_ids[b, t] | input_ids[b, :t]) at every response position, 0 elsewhere.

    logits: [B, T, V], the model's output on input_ids [B, T] (logits[:, t] predicts token t + 1).
    response_mask: [B, T], 1 where input_ids is a token the policy generated. Position 0 has no prediction,
    so it may not be a response token. Returns [B, T], aligned with input_ids.
    """
    if logits.dim() != 3:
        raise ValueError(f"logits: expected [B, T, V], got shape {tuple(logits.shape)}")
    if input_ids.shape != logits.shape[:2]:
        raise ValueError(f"input_ids: shape {tuple(input_ids.shape)} does not match logits {tuple(logits.shape[:2])}")
    if response_mask.shape != input_ids.shape:
        raise ValueError(f"response_mask: shape {tuple(response_mask.shape)} does not match input_ids {tuple(input_ids.shape)}")
    if bool(response_mask[:, 0].any()):
        raise ValueError("response_mask: position 0 cannot be a response token (nothing predicts it)")
    log_probs = torch.log_softmax(logits[:, :-1].float(), dim=-1)
    picked = log_probs.gather(-1, input_ids[:, 1:].unsqueeze(-1)).squeeze(-1)  # [B, T-1], predicts t = 1..T-1
    out = torch.zeros(input_ids.shape, dtype=picked.dtype, device=picked.device)
    out[:, 1:] = picked
    return out * response_mask.to(out.dtype)


def per_token_kl(
    log_probs: torch.Tensor,
    ref_log_probs: torch.Tensor,
    mask: torch.Tensor,
    estimator: KLEstimator = KLEstimator.K1,
) -> torch.Tensor:
    """Per-token estimate of KL(π_θ ‖ π_ref) on tokens sampled from π_θ, 0 outside `mask`. [B, T]."""
    if log_probs.shape != ref_log_probs.shape or log_probs.shape != mask.shape:
        raise ValueError(
            f"ref_log_probs/mask: shapes {tuple(ref_log_probs.shape)}/{tuple(mask.shape)} must equal log_probs {tuple(log_probs.shape)}"
        )
    rho = log_probs - ref_log_probs
    estimator = KLEstimator(estimator)
    if estimator is KLEstimator.K1:
        kl = rho
    else:
        kl = torch.expm1(-rho) + rho
    return kl * mask.to(kl.dtype)


def sequence_kl(log_probs, ref_log_probs, mask, estimator: KLEstimator = KLEstimator.K1) -> torch.Tensor:
    """Σ over the masked tokens of the per-token KL estimate: one figure per episode. [B]."""
    return per_token_kl(log_probs, ref_log_probs, mask, estimator).sum(-1)


def join_turns(
    turn1_values: torch.Tensor, turn1_mask: torch.Tensor, turn2_values: torch.Tensor, turn2_mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Lay two per-turn sequences ([B, T1] and [B, T2], e.g. log-probs of c1 ⊕ y1 and of c2 ⊕ y2) side by side
    as one [B, T1 + T2] row with disjoint turn masks, the layout score_loss takes."""
    if turn1_values.shape != turn1_mask.shape or turn2_values.shape != turn2_mask.shape:
        raise ValueError("turn1_mask/turn2_mask: each mask must have its turn's values' shape")
    if turn1_values.shape[0] != turn2_values.shape[0]:
        raise ValueError(f"turn2_values: {turn2_values.shape[0]} rows but turn1_values has {turn1_values.shape[0]}")
    values = torch.cat([turn1_values, turn2_values], dim=1)
    mask1 = torch.cat([turn1_mask, torch.zeros_like(turn2_mask)], dim=1)
    mask2 = torch.cat([torch.zeros_like(turn1_mask), turn2_mask], dim=1)
    return values, mask1, mask2


# --------------------------------------------------------------------------------------------------------
# Rewards, baseline, credit
# --------------------------------------------------------------------------------------------------------


def _as_float(name: str, values) -> torch.Tensor:
    tensor = torch.as_tensor(values, dtype=torch.float32) if not torch.is_tensor(values) else values.float()
    if tensor.dim() != 1:
        raise ValueError(f"{name}: expected a 1-D tensor of per-episode values, got shape {tuple(tensor.shape)}")
    return tensor


def shaped_rewards(
    variant: Variant,
    correct_turn1,
    correct_turn2,
    *,
    alpha: float,
    beta1: float,
    beta2: float,
) -> TurnRewards:
    """The per-turn rewards and KL coefficients of `variant` from the oracle rewards r̂(y1), r̂(y2) ∈ {0, 1}."""
    r1 = _as_float("correct_turn1", correct_turn1)
    r2 = _as_float("correct_turn2", correct_turn2)
    if r1.shape != r2.shape:
        raise ValueError(f"correct_turn2: shape {tuple(r2.shape)} does not match correct_turn1 {tuple(r1.shape)}")
    for name, value in (("alpha", alpha), ("beta1", beta1), ("beta2", beta2)):
        if value < 0:
            raise ValueError(f"{name}: must be ≥ 0, got {value}")
    variant = Variant(variant)
    if variant in SFT_VARIANTS:
        raise ValueError(f"variant: {variant.value} has no RL rewards; its loss is an SFT loss (sft_loss)")
    if variant is Variant.STAGE1:
        return TurnRewards(torch.zeros_like(r1), r2.clone(), beta_turn1=beta2, beta_turn2=beta1)
    if variant is Variant.STAGE2:
        return TurnRewards(r1.clone(), r2 + alpha * (r2 - r1), beta_turn1=beta1, beta_turn2=beta1)
    if variant is Variant.NAIVE_MULTI_TURN:
        return TurnRewards(r1.clone(), r2.clone(), beta_turn1=beta1, beta_turn2=beta1)
    return TurnRewards(r1.clone(), torch.zeros_like(r2), beta_turn1=beta1, beta_turn2=0.0, train_turn2=False)


def kl_penalised(reward: torch.Tensor, kl: torch.Tensor, beta: float) -> torch.Tensor:
    """R = r − β·KL: the KL to the reference is a cost. Detached: it enters the policy gradient as a reward."""
    if reward.shape != kl.shape:
        raise ValueError(f"kl: shape {tuple(kl.shape)} does not match reward {tuple(reward.shape)}")
    return reward - beta * kl.detach()


def leave_one_out_advantages(returns: torch.Tensor, group_size: int) -> torch.Tensor:
    """A_i = R_i − mean of the other k − 1 returns of the same problem (rows grouped problem-major). [B]."""
    if group_size < 2:
        raise ValueError(f"group_size: the leave-one-out baseline needs k ≥ 2 samples per problem, got {group_size}")
    if returns.dim() != 1 or returns.shape[0] % group_size:
        raise ValueError(f"returns: expected [num_problems × group_size={group_size}], got shape {tuple(returns.shape)}")
    grouped = returns.view(-1, group_size)
    baseline = (grouped.sum(-1, keepdim=True) - grouped) / (group_size - 1)
    return (grouped - baseline).reshape(-1)


def per_turn_token_advantages(
    advantage_turn1: torch.Tensor,
    advantage_turn2: torch.Tensor,
    turn1_mask: torch.Tensor,
    turn2_mask: torch.Tensor,
) -> torch.Tensor:
    """Discount 0 between turns: y1's tokens carry A_1, y2's tokens carry A_2, every other token 0. [B, T]."""
    if turn1_mask.shape != turn2_mask.shape:
        raise ValueError(f"turn2_mask: shape {tuple(turn2_mask.shape)} does not match turn1_mask {tuple(turn1_mask.shape)}")
    if bool((turn1_mask.bool() & turn2_mask.bool()).any()):
        raise ValueError("turn1_mask/turn2_mask: a token cannot belong to both turns")
    m1, m2 = turn1_mask.to(advantage_turn1.dtype), turn2_mask.to(advantage_turn2.dtype)
    return advantage_turn1.unsqueeze(-1) * m1 + advantage_turn2.unsqueeze(-1) * m2


def reinforce_loss(log_probs: torch.Tensor, token_advantages: torch.Tensor) -> torch.Tensor:
    """−(1/B) Σ_b Σ_t A[b, t] log π[b, t]: a sum over each episode's tokens (sequence-level REINFORCE)."""
    if log_probs.shape != token_advantages.shape:
        raise ValueError(f"token_advantages: shape {tuple(token_advantages.shape)} does not match log_probs {tuple(log_probs.shape)}")
    return -(token_advantages.detach() * log_probs).sum(-1).mean()


@dataclass(frozen=True)
class ScoreLossOutput:
    loss: torch.Tensor
    token_advantages: torch.Tensor  # [B, T]
    returns_turn1: torch.Tensor  # [B], r_1 − β·KL_1
    returns_turn2: torch.Tensor  # [B]
    kl_turn1: torch.Tensor  # [B], the estimator used in the reward
    kl_turn2: torch.Tensor  # [B]

    def metrics(self) -> dict[str, float]:
        return {
            "score/loss": float(self.loss.detach()),
            "score/kl_turn1": float(self.kl_turn1.mean()),
            "score/kl_turn2": float(self.kl_turn2.mean()),
            "score/return_turn1": float(self.returns_turn1.mean()),
            "score/return_turn2": float(self.returns_turn2.mean()),
        }


def score_loss(
    log_probs: torch.Tensor,
    ref_log_probs: torch.Tensor,
    turn1_mask: torch.Tensor,
    turn2_mask: torch.Tensor,
    correct_turn1,
    correct_turn2,
    *,
    variant: Variant,
    group_size: int,
    alpha: float = 10.0,
    beta1: float = 0.01,
    beta2: float = 0.1,
    kl_estimator: KLEstimator = KLEstimator.K1,
) -> ScoreLossOutput:
    """The whole learner objective of one batch: shaped rewards → KL-penalised per-turn returns → leave-one-out
    advantages → per-turn credit → REINFORCE loss. log_probs carry the gradient; ref_log_probs are constants."""
    rewards = shaped_rewards(variant, correct_turn1, correct_turn2, alpha=alpha, beta1=beta1, beta2=beta2)
    device = log_probs.device
    ref_log_probs = ref_log_probs.detach()
    kl1 = sequence_kl(log_probs.detach(), ref_log_probs, turn1_mask, kl_estimator)
    kl2 = sequence_kl(log_probs.detach(), ref_log_probs, turn2_mask, kl_estimator)
    if kl1.shape[0] != rewards.turn1.shape[0]:
        raise ValueError(f"correct_turn1: {rewards.turn1.shape[0]} episodes but log_probs has {kl1.shape[0]} rows")
    returns1 = kl_penalised(rewards.turn1.to(device), kl1, rewards.beta_turn1)
    returns2 = kl_penalised(rewards.turn2.to(device), kl2, rewards.beta_turn2)
    adv1 = leave_one_out_advantages(returns1, group_size)
    adv2 = leave_one_out_advantages(returns2, group_size)
    if not rewards.train_turn2:
        adv2 = torch.zeros_like(adv2)
    token_advantages = per_turn_token_advantages(adv1, adv2, turn1_mask, turn2_mask)
    return ScoreLossOutput(
        loss=reinforce_loss(log_probs, token_advantages),
        token_advantages=token_advantages,
        returns_turn1=returns1,
        returns_turn2=returns2,
        kl_turn1=kl1,
        kl_turn2=kl2,
    )


def correction_sft_loss(
    log_probs: torch.Tensor,
    turn2_mask: torch.Tensor,
    correct_turn1,
    correct_turn2,
    *,
    only_corrections: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The SFT-on-correction-traces baseline (STaR-style, the paper's §6 baseline family): maximise the likelihood
    of the policy's own second attempts that the verifier accepts, given their turn-2 context (problem, first
    attempt, instruction). With `only_corrections`, only wrong → right traces are kept (STaR's D_STaR); otherwise
    right → right ones too (the paper's D_STaR+ flavour, which also teaches keeping a right answer).

    Returns (loss, kept): loss = −(1/max(1, n_kept)) Σ_{kept b} Σ_{t ∈ y2} log π(y2_t | ·); kept [B] (float 0/1)."""
    c1 = _as_float("correct_turn1", correct_turn1).to(log_probs.device)
    c2 = _as_float("correct_turn2", correct_turn2).to(log_probs.device)
    if c1.shape != c2.shape or c1.shape[0] != log_probs.shape[0]:
        raise ValueError(f"correct_turn1/correct_turn2: shapes {tuple(c1.shape)}/{tuple(c2.shape)} must be [{log_probs.shape[0]}]")
    kept = c2 * (1.0 - c1) if only_corrections else c2
    return sft_loss(log_probs, turn2_mask, kept), kept


def sft_loss(log_probs: torch.Tensor, turn2_mask: torch.Tensor, kept: torch.Tensor) -> torch.Tensor:
    """−(1/max(1, n_kept)) Σ_{kept b} Σ_{t ∈ y2} log π(y2_t | ·): the likelihood of the kept rows' turn-2 responses.
    kept [B] (float 0/1) chooses the rows; the SFT baselines differ only in which rows and which responses."""
    if turn2_mask.shape != log_probs.shape:
        raise ValueError(f"turn2_mask: shape {tuple(turn2_mask.shape)} does not match log_probs {tuple(log_probs.shape)}")
    kept = kept.to(device=log_probs.device, dtype=log_probs.dtype)
    if kept.shape != (log_probs.shape[0],):
        raise ValueError(f"kept: shape {tuple(kept.shape)} must be [{log_probs.shape[0]}]")
    per_episode = (log_probs * turn2_mask.to(log_probs.dtype)).sum(-1)
    return -(kept * per_episode).sum() / kept.sum().clamp(min=1.0)


def correction_pairs(correct_turn1: Sequence[bool], group_size: int) -> list[int | None]:
    """Pair-SFT's pairs within each problem's group of k first attempts (rows [i·k, (i+1)·k) share a problem):
    for every wrong attempt, the row of a correct sibling whose response becomes its turn-2 target (the correct
    siblings taken in turn, so several wrong attempts spread over them); None for a correct attempt or a group
    with no correct attempt (nothing to pair with)."""
    if group_size < 1 or len(correct_turn1) % group_size:
        raise ValueError(f"group_size: {len(correct_turn1)} rows do not split into groups of {group_size}")
    targets: list[int | None] = []
    for start in range(0, len(correct_turn1), group_size):
        group = range(start, start + group_size)
        right = [i for i in group if correct_turn1[i]]
        wrong_seen = 0
        for i in group:
            if correct_turn1[i] or not right:
                targets.append(None)
            else:
                targets.append(right[wrong_seen % len(right)])
                wrong_seen += 1
    return targets


# --------------------------------------------------------------------------------------------------------
# Self-correction metrics (fractions of all problems)
# --------------------------------------------------------------------------------------------------------


def self_correction_metrics(
    correct_turn1: Sequence[bool],
    correct_turn2: Sequence[bool],
    answers_turn1: Sequence[str | None] | None = None,
    answers_turn2: Sequence[str | None] | None = None,
) -> dict[str, float]:
    """Acc@t1, Acc@t2, Δ = Acc@t2 − Acc@t1, Δi→c (wrong → right), Δc→i (right → wrong), and — when the
    extracted final answers are given — the rate at which turn 2 changes the answer (None ≠ anything)."""
    c1 = [bool(v) for v in torch.as_tensor(correct_turn1).reshape(-1).tolist()]
    c2 = [bool(v) for v in torch.as_tensor(correct_turn2).reshape(-1).tolist()]
    if len(c1) != len(c2):
        raise ValueError(f"correct_turn2: {len(c2)} problems but correct_turn1 has {len(c1)}")
    if not c1:
        raise ValueError("correct_turn1: no problems to score")
    n = len(c1)
    acc1, acc2 = sum(c1) / n, sum(c2) / n
    out = {
        "score/acc_t1": acc1,
        "score/acc_t2": acc2,
        "score/delta_t1_t2": acc2 - acc1,
        "score/delta_i_to_c": sum((not a) and b for a, b in zip(c1, c2)) / n,
        "score/delta_c_to_i": sum(a and (not b) for a, b in zip(c1, c2)) / n,
    }
    if (answers_turn1 is None) != (answers_turn2 is None):
        raise ValueError("answers_turn1/answers_turn2: give both or neither")
    if answers_turn1 is not None:
        if len(answers_turn1) != n or len(answers_turn2) != n:
            raise ValueError(f"answers_turn1/answers_turn2: expected {n} answers each, got {len(answers_turn1)}/{len(answers_turn2)}")
        changed = sum(a is None or b is None or a != b for a, b in zip(answers_turn1, answers_turn2))
        out["score/change_rate"] = changed / n
    return out
