"""The environment registry: algorithms and experiment specs name environments, never constructors.

Each entry (armillary.core.entries.EnvEntry) carries a typed options model (pydantic, unknown fields
rejected), a factory, and the overrides that `--smoke` applies. RLlib sees every entry as
`armillary/<name>`; the platform registers them with Ray in one place (armillary.platform.rllib_config).
An algorithm that brings its own environments adds its module to this catalog from the layer above
(armillary.algorithms.registry).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from armillary.core.catalog import Catalog
from armillary.core.entries import EnvEntry

if TYPE_CHECKING:
    import gymnasium as gym

# Modules whose import registers environments (imported on first lookup).
CATALOG: Catalog[EnvEntry] = Catalog(
    "environment",
    ("armillary.envs.classic", "armillary.envs.gridworld", "armillary.envs.atari", "armillary.envs.dmc",
     "armillary.envs.skill_options", "armillary.envs.language_goals",
     "armillary.envs.multigoal"),
)


def register(entry: EnvEntry) -> EnvEntry:
    return CATALOG.add(entry.name, entry)


def names() -> list[str]:
    return CATALOG.names()


def get(name: str) -> EnvEntry:
    return CATALOG.get(name)


def make(name: str, options: dict[str, Any] | None = None) -> "gym.Env":
    return get(name).build(options)


def rllib_env_id(name: str) -> str:
    return f"armillary/{name}"
