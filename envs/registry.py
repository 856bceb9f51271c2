"""The environment registry: algorithms and experiment specs name environments, never constructors.

Each entry carries a typed options model (pydantic, unknown fields rejected), a factory, and the
overrides that `--smoke` applies. RLlib sees every entry as `armillary/<name>`; the platform
registers them with Ray in one place (armillary.platform.rllib_config).
"""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass, field
from typing import Any, Callable

import gymnasium as gym
from pydantic import BaseModel, ConfigDict


class EnvOptions(BaseModel):
    """Base class of every environment's options: typed, unknown fields rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True)


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


_ENVIRONMENTS: dict[str, EnvEntry] = {}

# Modules whose import registers environments. Imported lazily so that `import armillary.envs.registry`
# stays cheap and no environment library loads before it is needed.
_CATALOG = (
    "armillary.envs.classic",
    "armillary.envs.gridworld",
    "armillary.envs.atari",
    "armillary.envs.dmc",
)
_catalog_loaded = False


def register(entry: EnvEntry) -> EnvEntry:
    if entry.name in _ENVIRONMENTS and _ENVIRONMENTS[entry.name] is not entry:
        raise ValueError(f"environment {entry.name!r} is registered twice")
    _ENVIRONMENTS[entry.name] = entry
    return entry


def _load_catalog() -> None:
    global _catalog_loaded
    if not _catalog_loaded:
        for module in _CATALOG:
            try:
                importlib.import_module(module)
            except ModuleNotFoundError as err:
                # Only tolerate a catalog module that does not exist yet, never a broken import inside one.
                if err.name != module:
                    raise
        _catalog_loaded = True


def names() -> list[str]:
    _load_catalog()
    return sorted(_ENVIRONMENTS)


def get(name: str) -> EnvEntry:
    _load_catalog()
    try:
        return _ENVIRONMENTS[name]
    except KeyError:
        close = difflib.get_close_matches(name, _ENVIRONMENTS, n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise KeyError(f"unknown environment {name!r}{hint}; registered: {', '.join(sorted(_ENVIRONMENTS))}") from None


def make(name: str, options: dict[str, Any] | None = None) -> gym.Env:
    return get(name).build(options)


def rllib_env_id(name: str) -> str:
    return f"armillary/{name}"
