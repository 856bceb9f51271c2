"""What differs between skill-discovery methods, as pure torch: the discriminator(s), the reward, the loss.

The RLlib wrappers in this folder (module, connectors, learner, algorithm) are shared by VIC, DISDAIN and
RVIC; each method folder supplies a `SkillMethod` subclass in its losses.py. No Ray import.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass

import torch
from torch import nn

from armillary.algorithms.skills.config import SkillHyperparameters
from armillary.envs.skill_layout import SkillObservationLayout


@dataclass
class SkillRewards:
    """Per-episode reward terms at the final state, all [B]."""

    skill: torch.Tensor  # the method's skill reward, unclipped (e.g. log q̄(z|s_T) + log N)
    bonus: torch.Tensor  # an exploration bonus (DISDAIN's r_D); zeros for methods without one
    effective_log: torch.Tensor  # log q(z|s_T) + log N: exp of its mean is the effective number of skills


@dataclass(frozen=True)
class RewardSettings:
    bonus_weight: float  # λ
    clip_skill_reward_at_zero: bool


def combine(rewards: SkillRewards, settings: RewardSettings) -> torch.Tensor:
    """The scalar reward at the final step: max(r_skill, 0) (if clipped) + λ · r_bonus."""
    skill = rewards.skill.clamp_min(0.0) if settings.clip_skill_reward_at_zero else rewards.skill
    return skill + settings.bonus_weight * rewards.bonus


class SkillMethod(abc.ABC):
    """A skill-discovery method with its algorithm's typed hyperparameters `hp` (a SkillHyperparameters subclass).

    The RLlib config carries the method itself (configure.py: learner_config_dict["skills"] and the discriminator
    module's model_config), so the learner, the connector and the evaluation read typed fields from it."""

    namespace: str = "skills"

    def __init__(self, layout: SkillObservationLayout, hp: SkillHyperparameters):
        self.layout = layout
        self.hp = hp
        self.num_skills = layout.num_skills

    @property
    def bonus_weight(self) -> float:
        """λ, the weight of the exploration bonus r_bonus: methods without a bonus (their `rewards` give zeros) have
        none; DISDAIN's is its hyperparameter."""
        return 0.0

    @property
    def value_streams(self) -> tuple[str, ...]:
        """Names of the policy's value streams when the skill reward and the bonus get separate value estimates
        (the ppo algorithm's MultiValuePPOModule, advantages mixed with weights (1, λ)); () for one value head on the
        combined reward."""
        return ()

    @property
    def reward_settings(self) -> RewardSettings:
        return RewardSettings(bonus_weight=self.bonus_weight,
                              clip_skill_reward_at_zero=self.hp.clip_skill_reward_at_zero)

    @abc.abstractmethod
    def build_discriminator(self) -> nn.Module:
        """All trainable discriminator parameters, in one module (saved and restored with the learner)."""

    @abc.abstractmethod
    def discriminate(self, discriminator: nn.Module, final_state: torch.Tensor, start_state: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """The discriminator outputs (log-probs) for a batch of final (and start) states."""

    @abc.abstractmethod
    def rewards(self, outputs: dict[str, torch.Tensor], skills: torch.Tensor) -> SkillRewards:
        """Reward terms from the outputs of `discriminate` (called without gradient)."""

    @abc.abstractmethod
    def discriminator_loss(self, outputs: dict[str, torch.Tensor], skills: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """Cross-entropy of the discriminator(s) on (final state, z) pairs, and figures to log."""

    def classifier_log_probs(self, outputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """[B, N] log q(z | s_T) used for the effective-skill metric and evaluation."""
        return outputs["log_probs"]
