"""The environment registry: algorithms and experiment specs name environments, never constructors.

Each entry carries a typed options model (pydantic, unknown fields rejected), a factory, and the
overrides that `--smoke` applies. RLlib sees every entry as `armillary/<name>`; the platform
registers them with Ray in one place (armillary.platform.rllib_config).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import gymnasium as gym
from armillary.platform.catalog import Catalog
from armillary.platform.strict import StrictModel


class EnvOptions(StrictModel):
    """Base class of every environment's options: typed, unknown fields, booleans for numbers and non-finite floats
    rejected."""


@dataclass(frozen=True)
class EnvEntry:
    name: str
    options: type[EnvOptions]
    make: Callable[[Any], gym.Env]
    description: str
    family: str  # "classic", "grid", "atari", "dmc", "language-goal", ...
    smoke: dict[str, Any] = field(default_factory=dict)
    # Suggested RLlib `model_config` for this observation type (e.g. conv filters for pixels).
    model_config: dict[str, Any] = field(default_factory=dict)

    def build(self, options: dict[str, Any] | EnvOptions | None = None) -> gym.Env:
        if not isinstance(options, EnvOptions):
            options = self.options.model_validate(options or {})
        return self.make(options)


# Modules whose import registers environments (imported on first lookup).
_CATALOG: Catalog[EnvEntry] = Catalog(
    "environment",
    ("armillary.envs.classic", "armillary.envs.gridworld", "armillary.envs.atari", "armillary.envs.dmc",
     "armillary.envs.skill_options", "armillary.envs.language_goals",
     "armillary.envs.multigoal",
     "armillary.algorithms.score.task_env"),  # SCoRe's tasks as envs: see that module's docstring
)


def register(entry: EnvEntry) -> EnvEntry:
    return _CATALOG.add(entry.name, entry)


def names() -> list[str]:
    return _CATALOG.names()


def get(name: str) -> EnvEntry:
    return _CATALOG.get(name)


def make(name: str, options: dict[str, Any] | None = None) -> gym.Env:
    return get(name).build(options)


def rllib_env_id(name: str) -> str:
    return f"armillary/{name}"
