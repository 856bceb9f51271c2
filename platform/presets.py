"""Named experiment presets: partial experiment specs registered under `<algorithm>/<setting>`.

A preset is a plain dict in the experiment-spec shape; YAML files and command-line overrides are
layered on top of it, and the result is validated as a whole (armillary.platform.spec). Each algorithm
folder registers its own presets in its `presets.py`; the catalog below imports them on first use.
"""

from __future__ import annotations

import copy
import difflib
import importlib
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Preset:
    name: str
    spec: dict[str, Any]
    description: str
    # Cluster-scale presets still build and run a few iterations locally, but their full run is a cluster job.
    cluster_scale: bool = False


_PRESETS: dict[str, Preset] = {}

_CATALOG = (
    "armillary.algorithms.ppo.presets",
    "armillary.algorithms.dqn.presets",
    "armillary.algorithms.vic.presets",
    "armillary.algorithms.disdain.presets",
    "armillary.algorithms.rvic.presets",
)
_catalog_loaded = False


def register(name: str, spec: dict[str, Any], description: str, *, cluster_scale: bool = False) -> Preset:
    if name in _PRESETS:
        raise ValueError(f"preset {name!r} is registered twice")
    preset = Preset(name=name, spec={"name": name, **spec}, description=description, cluster_scale=cluster_scale)
    _PRESETS[name] = preset
    return preset


def _load_catalog() -> None:
    global _catalog_loaded
    if not _catalog_loaded:
        _catalog_loaded = True
        for module in _CATALOG:
            try:
                importlib.import_module(module)
            except ModuleNotFoundError as err:
                if err.name is None or not module.startswith(err.name):
                    raise


def names() -> list[str]:
    _load_catalog()
    return sorted(_PRESETS)


def get(name: str) -> Preset:
    _load_catalog()
    try:
        return _PRESETS[name]
    except KeyError:
        close = difflib.get_close_matches(name, _PRESETS, n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise KeyError(f"unknown preset {name!r}{hint}; registered: {', '.join(sorted(_PRESETS))}") from None


def spec_dict(name: str) -> dict[str, Any]:
    """A fresh copy of a preset's spec dict, safe to modify."""
    return copy.deepcopy(get(name).spec)
