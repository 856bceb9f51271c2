"""DOMiNO's robustness experiment on the multi-goal room (Zahavy et al. 2022, the perturbation experiments): after
a change of the world, evaluate every member of the trained set in the changed world and keep the best (few-shot
selection), against the single optimal policy (policy 0). No Ray import: the actors are plain callables.

Perturbations of `multi-goal-room` (its options `walls`, `goal_rewards`; envs/multigoal.py), one per corner k:

    goal-removed/k   corner k's goal pays 0 (the others unchanged)
    corner-walled/k  a wall from corner k's edge cell towards the centre row (for the top-left corner of the 7x7
                     room: the cells x = 2, y = 1..4), so the goal is reached only along the outer column from the far
                     side: 8 steps instead of 6 (the goal rate of a policy that adapts falls from 1/6 to 1/8); a
                     policy that walks into the wall stays put

Selection is honest about noise: the best member is chosen on `selection` episodes and its return is reported on
separate `evaluation` episodes (other seeds), so a lucky selection run does not inflate the figure. With greedy
actions on this deterministic room both are the same single trajectory.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch

from armillary.algorithms.domino.evaluation import rollout_policies


class PerturbationKind(str, enum.Enum):
    GOAL_REMOVED = "goal-removed"
    CORNER_WALLED = "corner-walled"


@dataclass(frozen=True)
class Perturbation:
    kind: PerturbationKind
    corner: int  # 0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right (the order of goal_rewards)

    @property
    def name(self) -> str:
        return f"{self.kind.value}/{self.corner}"

    def apply(self, options: dict) -> dict:
        """The env options of `multi-goal-room` with this perturbation applied (a new dict)."""
        if not 0 <= self.corner < 4:
            raise ValueError(f"corner must be in 0..3, got {self.corner}")
        size = int(options.get("size", 7))
        out = dict(options)
        if self.kind is PerturbationKind.GOAL_REMOVED:
            rewards = list(options.get("goal_rewards", [1.0, 1.0, 1.0, 1.0]))
            rewards[self.corner] = 0.0
            out["goal_rewards"] = rewards
        else:
            out["walls"] = [*options.get("walls", []), *corner_wall(size, self.corner)]
        return out


def corner_wall(size: int, corner: int) -> list[tuple[int, int]]:
    """The detour wall of `corner`: the column next to the corner's outer column, from the corner's edge to the
    centre row inclusive. The corner then opens only along its outer column, from beyond the centre row."""
    centre = (size + 1) // 2
    x_corner = 1 if corner in (0, 2) else size
    y_corner = 1 if corner in (0, 1) else size
    x = x_corner + (1 if x_corner == 1 else -1)
    step = 1 if y_corner == 1 else -1
    return [(x, y) for y in range(y_corner, centre + step, step)]


def all_perturbations() -> list[Perturbation]:
    return [Perturbation(kind, corner) for kind in PerturbationKind for corner in range(4)]


def member_returns(env_config: dict, act: Callable[[torch.Tensor], torch.Tensor], episodes: int, seed: int) -> np.ndarray:
    """[num_policies]: each member's mean episode return in the env of `env_config` (a DominoEnv config)."""
    return np.array([np.mean(r.returns) for r in rollout_policies(env_config, act, episodes, seed=seed)])


def best_member(selection_returns: Sequence[float]) -> int:
    """The member with the highest return on the selection episodes; ties go to the lowest index (policy 0 first,
    so the set never gets credit for a tie with the optimal policy)."""
    returns = np.asarray(selection_returns, dtype=float)
    if returns.ndim != 1 or returns.size == 0:
        raise ValueError(f"expected one return per member, got shape {returns.shape}")
    return int(np.argmax(returns))


@dataclass(frozen=True)
class WorldResult:
    """One trained set in one world: every member's return on selection and on evaluation episodes."""

    world: str  # "none" (unperturbed) or a Perturbation.name
    selection: list[float]
    evaluation: list[float]

    @property
    def chosen(self) -> int:
        return best_member(self.selection)

    @property
    def best_return(self) -> float:
        return self.evaluation[self.chosen]

    @property
    def policy0_return(self) -> float:
        return self.evaluation[0]


def evaluate_set(
    env_config: dict, act: Callable[[torch.Tensor], torch.Tensor], perturbations: Sequence[Perturbation],
    selection_episodes: int, evaluation_episodes: int, seed: int,
) -> list[WorldResult]:
    """The unperturbed world first, then each perturbation: every member's returns, selection and evaluation on
    disjoint episode seeds (rollout_policies seeds episode e of policy i with seed + 1000 i + e)."""
    worlds = [("none", env_config)] + [
        (p.name, {**env_config, "options": p.apply(dict(env_config.get("options") or {}))}) for p in perturbations
    ]
    evaluation_seed = seed + 1_000_000  # far from the selection episodes' seeds
    return [
        WorldResult(name, member_returns(config, act, selection_episodes, seed).tolist(),
                    member_returns(config, act, evaluation_episodes, evaluation_seed).tolist())
        for name, config in worlds
    ]


def fraction_kept(perturbed_return: float, unperturbed_return: float) -> float:
    """Return in the perturbed world relative to the optimal policy's (policy 0's) unperturbed return."""
    if unperturbed_return <= 0:
        raise ValueError(f"the unperturbed return must be positive to take a fraction of it, got {unperturbed_return}")
    return perturbed_return / unperturbed_return
