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


for _gym_id, _about in (
    ("CartPole-v1", "Balance a pole on a cart (4-d state, 2 actions)."),
    ("Acrobot-v1", "Swing a two-link arm up (6-d state, 3 actions)."),
    ("MountainCar-v0", "Drive an underpowered car up a hill (2-d state, 3 actions)."),
    ("Pendulum-v1", "Swing a pendulum up, continuous torque (3-d state, 1-d action)."),
):
    register(EnvEntry(name=_gym_id, options=ClassicOptions, make=_maker(_gym_id), description=_about, family="classic"))
