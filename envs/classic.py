"""Gymnasium's classic-control tasks, registered under their gymnasium ids."""

from __future__ import annotations

import gymnasium as gym
from pydantic import Field

from armillary.core.entries import EnvEntry, EnvOptions
from armillary.envs.registry import register


class ClassicOptions(EnvOptions):
    max_episode_steps: int | None = Field(default=None, gt=0, description="Override gymnasium's time limit.")


def _maker(gym_id: str):
    def make(options: ClassicOptions) -> gym.Env:
        kwargs = {"max_episode_steps": options.max_episode_steps} if options.max_episode_steps else {}
        return gym.make(gym_id, **kwargs)

    return make


def _return_range(gym_id: str, per_step: tuple[float, float]):
    """Episode returns lie within T times the per-step reward range, T the episode's time limit."""

    def return_range(options: ClassicOptions) -> tuple[float, float]:
        steps = options.max_episode_steps or gym.spec(gym_id).max_episode_steps
        return (min(0.0, per_step[0] * steps), max(0.0, per_step[1] * steps))

    return return_range


# Per-step rewards: CartPole +1 per step; Acrobot and MountainCar -1 per step until the goal; Pendulum
# -(θ² + 0.1 θ̇² + 0.001 u²) with |θ| ≤ π, |θ̇| ≤ 8, |u| ≤ 2, so ≥ -16.2736.
for _gym_id, _about, _per_step in (
    ("CartPole-v1", "Balance a pole on a cart (4-d state, 2 actions).", (0.0, 1.0)),
    ("Acrobot-v1", "Swing a two-link arm up (6-d state, 3 actions).", (-1.0, 0.0)),
    ("MountainCar-v0", "Drive an underpowered car up a hill (2-d state, 3 actions).", (-1.0, 0.0)),
    ("Pendulum-v1", "Swing a pendulum up, continuous torque (3-d state, 1-d action).", (-16.2736044, 0.0)),
):
    register(EnvEntry(name=_gym_id, options=ClassicOptions, make=_maker(_gym_id), description=_about, family="classic",
                      return_range=_return_range(_gym_id, _per_step)))
