"""What differs between skill-discovery methods, as pure torch: the discriminator(s), the reward, the loss.

The RLlib wrappers in this folder (module, connectors, learner, algorithm) are shared by VIC, DISDAIN and
RVIC; each method folder supplies a `SkillMethod` subclass in its losses.py. No Ray import.
"""

from __future__ import annotations

import abc
import importlib
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from armillary.envs.skill_layout import SkillObservationLayout


@dataclass
class SkillRewards:
    """Per-episode reward terms at the final state, all [B]."""

    skill: torch.Tensor  # the method's skill reward, unclipped (e.g. log q̄(z|s_T) + log N)
    bonus: torch.Tensor  # an exploration bonus (DISDAIN's r_D); zeros for methods without one
    effective_log: torch.Tensor  # log q(z|s_T) + log N: exp of its mean is the effective number of skills


@dataclass(frozen=True)
class RewardSettings:
    bonus_weight: float = 0.0  # λ
    clip_skill_reward_at_zero: bool = False


def combine(rewards: SkillRewards, settings: RewardSettings) -> torch.Tensor:
    """The scalar reward at the final step: max(r_skill, 0) (if clipped) + λ · r_bonus."""
    skill = rewards.skill.clamp_min(0.0) if settings.clip_skill_reward_at_zero else rewards.skill
    return skill + settings.bonus_weight * rewards.bonus


class SkillMethod(abc.ABC):
    """A skill-discovery method: `settings` is the algorithm's hyperparameters as a plain dict."""

    namespace: str = "skills"

    def __init__(self, layout: SkillObservationLayout, settings: dict[str, Any]):
        self.layout = layout
        self.settings = settings
        self.num_skills = layout.num_skills

    @property
    def reward_settings(self) -> RewardSettings:
        return RewardSettings(
            bonus_weight=float(self.settings.get("bonus_weight", 0.0)),
            clip_skill_reward_at_zero=bool(self.settings.get("clip_skill_reward_at_zero", False)),
        )

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


def method_path(cls: type[SkillMethod]) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def load_method(path: str, layout: SkillObservationLayout | dict[str, Any], settings: dict[str, Any]) -> SkillMethod:
    module_name, _, qualname = path.partition(":")
    cls = getattr(importlib.import_module(module_name), qualname)
    if isinstance(layout, dict):
        layout = SkillObservationLayout(**layout)
    return cls(layout, settings)
